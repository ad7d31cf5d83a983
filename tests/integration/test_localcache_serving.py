"""Files served from the instance's local content cache (uwsgi_gluster/localcache.py)
by a real uWSGI (2 processes, http11-socket) against a real volume: byte-exact GET,
HEAD, Range, conditional and precompressed answers on both local-copy paths
(read into memory below SENDFILE_MIN, sendfile above), keep-alive, freshness
(in-place rewrites that keep size and mtime included), one copy shared by both
processes, a private directory, the budget, and the start-up cleanup."""

import gzip
import hashlib
import http.client
import os
import stat
import subprocess
import sys
import time

import pytest

from support import ours
from uwsgi_gluster import gfapi
from uwsgi_gluster.cache import DEFAULT_FRESHNESS
from uwsgi_gluster.localcache import DEFAULT_MEMORY_MAX_FILE
from uwsgi_gluster.responder import SENDFILE_MIN
from uwsgi_gluster.seeding import write_file

INI = """[uwsgi]
http11-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit003,server=127.0.0.1:0
processes = 2
master = true
threads = 4
env = GLUSTERFS_LOCAL_CACHE_DIR=%(dir)s
env = GLUSTERFS_LOCAL_CACHE_SIZE=%(size)s
"""
BOUND = DEFAULT_FRESHNESS + 0.3
MTIME = 1_500_000_000
MID = os.urandom(DEFAULT_MEMORY_MAX_FILE * 3 + 11)  # a local copy read into memory
BIG = os.urandom(SENDFILE_MIN * 3 + 7)  # a local copy sent with sendfile
FILES = {"/speed-lc/mid.bin": MID, "/speed-lc/big.bin": BIG,
         "/speed-lc/big.bin.gz": gzip.compress(BIG, mtime=0)}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("lcbase")


@pytest.fixture(scope="module")
def stale(base):
    """A directory a crashed instance left behind: start-up must remove it."""
    path = base / f"uwsgi-gluster-{os.getuid()}-{dead_pid()}"
    path.mkdir(mode=0o700)
    (path / "leftover").write_bytes(b"x" * 1000)
    return path


@pytest.fixture(scope="module")
def server(volumes, base, stale, tmp_path_factory):
    for path, data in FILES.items():
        write_file(volumes["unbit003"], path, data, mtime=MTIME)
    ini = INI % {"dir": base, "size": "64M"}
    with ours(ini, tmp_path_factory.mktemp("lc")).start() as srv:
        yield srv


def instance_dir(base):
    (found,) = [p for p in base.iterdir() if p.name.startswith(f"uwsgi-gluster-{os.getuid()}-")]
    return found


def copies_of(directory, data: bytes):
    digest = hashlib.sha256(data).digest()
    return [p for p in directory.iterdir() if not p.name.startswith(".")
            and hashlib.sha256(p.read_bytes()).digest() == digest]


def rewrite_in_place(fs, path, data: bytes) -> None:
    """Overwrite the file's bytes in place (same inode, same size) and put its mtime back."""
    fd = gfapi.open_file(fs, path, os.O_WRONLY)
    try:
        gfapi.pwrite_all(fd, data)
    finally:
        gfapi.close(fd)
    gfapi.set_mtime(fs, path, MTIME)


def warm(server, path, times=8, headers=None):
    return [server.get(path, headers) for _ in range(times)]


@pytest.mark.parametrize("path", ["/speed-lc/mid.bin", "/speed-lc/big.bin"])
def test_local_copy_get_head_range_conditional_byte_exact(server, base, path):
    data = FILES[path]
    replies = warm(server, path)
    assert {(r.status, r.body) for r in replies} == {(200, data)}
    assert copies_of(instance_dir(base), data), "served without a local copy"
    get = replies[-1]
    assert get.header("Content-Length") == str(len(data)) and get.header("Accept-Ranges") == "bytes"
    head = server.get(path, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert head.headers == get.headers
    etag, size = get.header("ETag"), len(data)
    for spec, (start, end) in {"bytes=0-0": (0, 1), "bytes=10-99": (10, 100), "bytes=-5": (size - 5, size),
                               f"bytes={size - 3}-": (size - 3, size),
                               f"bytes=1-{size + 10}": (1, size)}.items():
        r = server.get(path, {"Range": spec})
        assert (r.status, r.body) == (206, data[start:end]), spec
        assert r.header("Content-Range") == f"bytes {start}-{end - 1}/{size}"
    big_range = server.get(path, {"Range": f"bytes=1-{SENDFILE_MIN + 1}"})
    assert big_range.body == data[1:SENDFILE_MIN + 2]
    assert server.get(path, {"Range": f"bytes={size}-"}).status == 416
    assert server.get(path, {"If-None-Match": etag}).status == 304
    assert server.get(path, {"If-Match": '"other"'}).status == 412
    r = server.get(path, {"Range": "bytes=0-9", "If-Range": etag})
    assert (r.status, r.body) == (206, data[:10])
    r = server.get(path, {"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (r.status, r.body) == (200, data)


def test_precompressed_variant_from_local_copy(server):
    gz = FILES["/speed-lc/big.bin.gz"]
    for _ in range(4):
        r = server.get("/speed-lc/big.bin", {"Accept-Encoding": "gzip"})
        assert (r.status, r.header("Content-Encoding"), r.body) == (200, "gzip", gz)
        plain = server.get("/speed-lc/big.bin", {"Accept-Encoding": "identity"})
        assert (plain.header("Content-Encoding"), plain.body) == (None, BIG)
    r = server.get("/speed-lc/big.bin", {"Accept-Encoding": "gzip", "Range": "bytes=5-14"})
    assert (r.status, r.body, r.header("Content-Encoding")) == (206, gz[5:15], "gzip")


def test_keep_alive_across_local_copy_answers(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.connect()
        sock = conn.sock
        for path in ["/speed-lc/big.bin", "/speed-lc/mid.bin", "/speed-lc/big.bin", "/speed-lc/mid.bin"] * 3:
            conn.request("GET", path)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, FILES[path])
            assert conn.sock is sock, "the connection was not kept alive"
        conn.request("HEAD", "/speed-lc/big.bin")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"")
        conn.request("GET", "/speed-lc/mid.bin", headers={"Range": "bytes=3-5"})
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (206, MID[3:6])
        assert conn.sock is sock
    finally:
        conn.close()


def test_two_processes_share_one_copy_in_a_private_directory(server, base):
    warm(server, "/speed-lc/big.bin", times=16)
    directory = instance_dir(base)
    st = directory.lstat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    found = copies_of(directory, BIG)
    assert len(found) == 1
    assert stat.S_IMODE(found[0].stat().st_mode) == 0o600
    assert "local cache" in server.log() and server.log().count(f"local cache {directory}:") == 1


def test_start_up_removed_a_dead_instance_directory(server, stale):
    assert not stale.exists()


@pytest.mark.parametrize("size", [len(MID), len(BIG)])
def test_stale_local_copy_after_in_place_rewrite_keeping_size_and_mtime(server, volumes, size):
    """``cp -p`` / ``rsync --inplace -t`` onto a file served from a local copy: same
    inode, size and mtime; the new bytes must be served within the bound."""
    fs = volumes["unbit003"]
    path = f"/speed-lc/inplace-{size}.bin"
    old, new = os.urandom(size), os.urandom(size)
    write_file(fs, path, old, mtime=MTIME)
    time.sleep(BOUND)
    before = warm(server, path)
    assert {r.body for r in before} == {old}
    (etag,) = {r.header("ETag") for r in before}
    rewrite_in_place(fs, path, new)
    st = gfapi.stat(fs, path)
    assert (st.st_size, st.st_mtime) == (size, MTIME)
    time.sleep(BOUND)
    after = warm(server, path)
    assert {r.body for r in after} == {new}
    assert len({r.header("ETag") for r in after} | {etag}) == 2
    r = server.get(path, {"Range": "bytes=0-99"})
    assert r.body == new[:100]


def test_replaced_and_deleted_local_copies_follow(server, volumes):
    fs = volumes["unbit003"]
    path = "/speed-lc/replaced.bin"
    one, two = os.urandom(SENDFILE_MIN + 1), os.urandom(2 * SENDFILE_MIN)
    write_file(fs, path, one)
    time.sleep(BOUND)
    assert {r.body for r in warm(server, path)} == {one}
    write_file(fs, path + ".tmp", two)
    gfapi.rename(fs, path + ".tmp", path)
    time.sleep(BOUND)
    assert {r.body for r in warm(server, path)} == {two}
    gfapi.unlink(fs, path)
    time.sleep(BOUND)
    assert {r.status for r in warm(server, path)} == {404}


def test_budget_bounds_the_directory_and_evicted_copies_are_refilled(volumes, tmp_path):
    fs = volumes["unbit003"]
    files = {f"/speed-lc/budget-{i}.bin": os.urandom(300 << 10) for i in range(6)}
    for path, data in files.items():
        write_file(fs, path, data)
    base = tmp_path / "base"
    base.mkdir()
    with ours(INI % {"dir": base, "size": "1M"}, tmp_path).start() as srv:
        for _ in range(3):
            for path, data in files.items():
                r = srv.get(path)
                assert (r.status, r.body) == (200, data)
                used = sum(p.stat().st_size for p in instance_dir(base).iterdir() if not p.name.startswith("."))
                assert used <= 1 << 20
        # evicted while validated in a worker's memory: refilled or streamed, never wrong
        for path, data in files.items():
            assert {(r.status, r.body) for r in warm(srv, path, times=4)} == {(200, data)}


@pytest.mark.parametrize("size", [100, len(BIG)])
def test_hot_file_rewritten_in_place_under_steady_requests(server, volumes, size):
    """Requests never stop, so the background refresher keeps the entry validated
    (uwsgi_gluster/refresher.py): an in-place rewrite keeping size and mtime must
    still be served in its new form within the bound, by every worker."""
    fs = volumes["unbit003"]
    path = f"/speed-lc/hot-{size}.bin"
    old, new = os.urandom(size), os.urandom(size)
    write_file(fs, path, old, mtime=MTIME)
    time.sleep(BOUND)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:  # hot: served continuously, across refresher passes
        assert server.get(path).body == old
    rewrite_in_place(fs, path, new)
    changed_at = time.monotonic()
    late = []
    while time.monotonic() < changed_at + BOUND + 1.5:
        started = time.monotonic()
        body = server.get(path).body
        assert body in (old, new)
        if started - changed_at > BOUND:
            late.append(body == new)
    assert late and all(late)


def test_local_cache_options_win_over_the_environment(volumes, tmp_path):
    """``glusterfs-local-cache-dir`` / ``glusterfs-local-cache`` configure the cache from
    the ini; where both are given, the option wins over ``GLUSTERFS_LOCAL_CACHE_*``."""
    ignored, chosen = tmp_path / "from-env", tmp_path / "from-option"
    for directory in (ignored, chosen, tmp_path / "srv"):
        directory.mkdir()
    write_file(volumes["unbit003"], "/speed-lc/opt.bin", MID, mtime=MTIME)
    ini = (INI % {"dir": ignored, "size": "0"}
           + f"glusterfs-local-cache-dir = {chosen}\nglusterfs-local-cache = 32M\n")
    with ours(ini, tmp_path / "srv").start() as srv:
        assert {(r.status, r.body) for r in warm(srv, "/speed-lc/opt.bin")} == {(200, MID)}
        assert copies_of(instance_dir(chosen), MID), "the option's directory holds no copy"
        assert list(ignored.iterdir()) == []
        assert "local cache " + str(chosen) in srv.log() and "32 MiB for the instance" in srv.log()
