"""uWSGI's response cache and transformations in front of us (issue 10, item 3).

Regression: with the recipe ``cache2`` + ``route = .* cache:key=${REQUEST_URI}``
+ ``route = .* cachestore:key=${REQUEST_URI}`` and ``precompressed`` on (the
default), one client sending ``Accept-Encoding: gzip`` made uWSGI store the gzip
bytes, and every later client got them without ``Content-Encoding``.
``cachestore`` keeps any ``200`` body, whatever its headers say, and the
``cache`` action serves it back with none of them. A client must never get an
encoding it did not ask for, nor encoded bytes without ``Content-Encoding``,
whatever routes store or transform our responses: both launchers, both orders,
and ranges.
"""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

from support import ROOT, UWSGI_GLUSTER, Server, raw_request, request
from uwsgi_gluster.seeding import write_file

GZIP = {"Accept-Encoding": "gzip"}

CSS = b"body { color: #123456; }\n" * 40
FILES = {
    "/respcache/site.css": CSS,
    "/respcache/site.css.gz": gzip.compress(CSS, mtime=0),
    "/respcache/other.css": CSS[::-1],
    "/respcache/other.css.gz": gzip.compress(CSS[::-1], mtime=0),
}

RECIPE = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit003,server=127.0.0.1:0
threads = 4
cache2 = name=files,items=100,blocksize=65536
route = .* cache:key=${REQUEST_URI},name=files
route = .* cachestore:key=${REQUEST_URI},name=files
"""


@pytest.fixture(scope="module")
def seeded(volumes):
    for path, data in FILES.items():
        write_file(volumes["unbit003"], path, data)


@pytest.fixture(scope="module")
def built_uwsgi() -> str:
    out = ROOT / "uwsgi"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "uwsgi_build.py"), "build", "--output", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return str(out)


@pytest.fixture(params=["uwsgi-gluster", "./uwsgi"])
def launcher(request, built_uwsgi):
    return UWSGI_GLUSTER if request.param == "uwsgi-gluster" else built_uwsgi


def check(reply, path: str, accept: str = "", start: int = 0, end=None) -> str:
    """Assert ``reply`` is a correct representation of file ``path`` (or of the
    byte range ``start:end`` of it, for a 206) for a client that sent
    ``accept``; return its coding ("" for identity)."""
    coding = reply.header("Content-Encoding") or ""
    assert coding in ("", "gzip"), reply.headers
    if coding:
        assert "gzip" in accept, f"gzip bytes for a client that accepts {accept!r}"
    stored = FILES[path + ".gz"] if coding else FILES[path]
    if reply.status == 206:
        assert reply.body == stored[start:end]
    else:
        assert reply.status == 200, reply.status
        assert reply.body == stored, f"{len(reply.body)} bytes, Content-Encoding {coding!r}: not the file"
    return coding


def test_gzip_client_first_does_not_poison_the_response_cache(launcher, seeded, tmp_path):
    with Server([launcher], RECIPE, tmp_path).start() as srv:
        first = request(srv.port, "GET", "/respcache/site.css", {"Accept-Encoding": "gzip"})
        check(first, "/respcache/site.css", "gzip")
        for _ in range(3):
            check(request(srv.port, "GET", "/respcache/site.css"), "/respcache/site.css")
            check(request(srv.port, "GET", "/respcache/site.css", GZIP), "/respcache/site.css", "gzip")
        log = srv.log()
    assert "Traceback" not in log
    assert "precompressed variants are not served: route = .* cachestore:key=${REQUEST_URI},name=files" in log


def test_plain_client_first_then_gzip_clients_get_a_correct_body(launcher, seeded, tmp_path):
    with Server([launcher], RECIPE, tmp_path).start() as srv:
        check(request(srv.port, "GET", "/respcache/other.css"), "/respcache/other.css")
        for _ in range(3):
            check(request(srv.port, "GET", "/respcache/other.css", {"Accept-Encoding": "gzip, br"}),
                  "/respcache/other.css", "gzip, br")
            check(request(srv.port, "GET", "/respcache/other.css"), "/respcache/other.css")


def test_ranges_through_the_response_cache(launcher, seeded, tmp_path):
    with Server([launcher], RECIPE, tmp_path).start() as srv:
        ranged = {"Range": "bytes=10-99", "Accept-Encoding": "gzip"}
        check(request(srv.port, "GET", "/respcache/site.css", ranged), "/respcache/site.css", "gzip", 10, 100)
        check(request(srv.port, "GET", "/respcache/site.css"), "/respcache/site.css")
        check(request(srv.port, "GET", "/respcache/site.css", ranged), "/respcache/site.css", "gzip", 10, 100)
        check(request(srv.port, "GET", "/respcache/site.css", GZIP), "/respcache/site.css", "gzip")


def test_without_storing_routes_gzip_variants_are_still_served(seeded, tmp_path):
    plain = RECIPE.replace("route = .* cachestore:key=${REQUEST_URI},name=files\n", "")
    with Server([UWSGI_GLUSTER], plain, tmp_path).start() as srv:
        reply = request(srv.port, "GET", "/respcache/site.css", {"Accept-Encoding": "gzip"})
        assert check(reply, "/respcache/site.css", "gzip") == "gzip"


def test_gzip_transformation_in_front_never_double_encodes(seeded, tmp_path):
    """uWSGI's own gzip transformation compresses what we send: it must get the
    file itself, not our .gz variant (that was gzip inside gzip, with two
    Content-Encoding headers). That transformation compresses whatever the
    client accepts and leaves our Content-Length as it was (uWSGI documents
    both), so only the layering is checked, on the raw reply."""
    ini = RECIPE.split("cache2")[0] + "route-run = gzip:\n"
    with Server([UWSGI_GLUSTER], ini, tmp_path).start() as srv:
        for accept in ("gzip", "", "br"):
            extra = f"Accept-Encoding: {accept}\r\n" if accept else ""
            raw = raw_request(srv.port, f"GET /respcache/site.css HTTP/1.0\r\n{extra}\r\n".encode())
            head, _, body = raw.partition(b"\r\n\r\n")
            codings = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-encoding:")]
            assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200"), head
            assert codings in ([], [b"gzip"]), head
            if codings:
                body = gzip.decompress(body)
            assert body == CSS, head
