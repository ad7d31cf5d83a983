"""The files the integration tests serve: sizes, nesting, names and extensions."""

from __future__ import annotations

import random

MTIME = 1_700_000_000

# One ini for the corpus volume, served the same way by ours and the native plugin
# (a Debian-style ini: it still says `plugins = glusterfs`).
CORPUS_INI = """[uwsgi]
plugins = glusterfs
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
threads = 8
"""

#: paths not in the corpus, asked of both plugins: missing files, dot segments, case
EXTRA_PATHS = ["/missing.txt", "/missing/deeper/x.html", "/a/../hello.txt", "/../hello.txt", "/hello.txt/",
               "/HELLO.TXT", "/sizes/../one.bin"]


def _blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def build() -> dict:
    files = {
        "/empty.txt": b"",
        "/hello.txt": b"Hello, Gluster",
        "/one.bin": b"x",
        "/index.html": b"<!doctype html><title>corpus</title><p>index</p>\n",
        "/style.css": b"p { color: teal; }\n",
        "/app.js": b"console.log('corpus');\n",
        "/data.json": b'{"corpus": true}\n',
        "/feed.xml": b"<?xml version='1.0'?><feed/>\n",
        "/image.png": _blob(3000, 1),
        "/photo.jpg": _blob(5000, 2),
        "/anim.gif": _blob(700, 3),
        "/icon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
        "/doc.pdf": _blob(9000, 4),
        "/archive.tar.gz": _blob(4000, 5),
        "/font.woff2": _blob(2000, 6),
        "/movie.mp4": _blob(70000, 7),
        "/README": b"no extension\n",
        "/Makefile": b"all:\n",
        "/.hidden": b"dotfile\n",
        "/UPPER.TXT": b"upper-case extension\n",
        "/dir.d/file": b"dot in the directory name\n",
        "/trailing.": b"empty extension\n",
        "/weird.tar-gz": b"dash in extension\n",
        "/a/b/c/deep.txt": b"three levels down\n",
        "/with space/file name.txt": b"spaces in names\n",
        "/\u00fcn\u00efc\u00f6d\u00e9/\u0444\u0430\u0439\u043b.txt": "unicode names \u2713\n".encode(),
        "/\u65e5\u672c\u8a9e.html": "<p>\u65e5\u672c\u8a9e</p>\n".encode(),
        "/percent%41.txt": b"a literal percent sign in the name\n",
    }
    for size in (8191, 8192, 8193, 65536, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 7):
        files[f"/sizes/{size}.bin"] = _blob(size, size)
    files["/sizes/10MiB.bin"] = _blob(10 << 20, 10)
    return files


CORPUS = build()
