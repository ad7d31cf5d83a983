"""Hot answers sent by the C plugin (profiles/plugins/glusterfs.c,
uwsgi_gluster/hotanswers.py) embedded in ./uwsgi and loaded by the
``uwsgi-gluster`` launcher into pyuwsgi, against a real volume (2 processes x
4 threads): the answer C sends is byte for byte the one Python
sent (GET and HEAD, keep-alive http11-socket and http-socket); Range,
conditional and Accept-Encoding requests still get Python's answers; a file
rewritten in place (size and mtime kept) or deleted is followed within the
freshness bound; C never sends a hot file that is stale, or was written for
another PATH_INFO (a hash collision), or is reached through a symlink.
Without its C plugin the launcher answers everything in Python and says so."""

from __future__ import annotations

import gzip
import os
import socket
import time
from pathlib import Path

import pytest

from support import UWSGI_GLUSTER, Server, request
from uwsgi_gluster import gfapi, hotanswers
from uwsgi_gluster.cache import DEFAULT_FRESHNESS
from uwsgi_gluster.seeding import write_file

INI = """[uwsgi]
{socket} = 127.0.0.1:{{port}}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit003,server=127.0.0.1:0
processes = 2
master = true
threads = 4
env = GLUSTERFS_LOCAL_CACHE_DIR={base}
"""
BOUND = DEFAULT_FRESHNESS + 0.3
MTIME = 1_500_000_000
PREFIX = "/cfast-hot"
SMALL = b"a small hot file\n"
MID = os.urandom(40_000)  # above the in-memory limit: a local copy
CSS = b"body { color: red; }\n" * 40
FILES = {f"{PREFIX}/small.txt": SMALL, f"{PREFIX}/mid.bin": MID, f"{PREFIX}/site.css": CSS,
         f"{PREFIX}/site.css.gz": gzip.compress(CSS, mtime=0)}


@pytest.fixture(scope="module")
def volume(volumes):
    fs = volumes["unbit003"]
    for path, data in FILES.items():
        write_file(fs, path, data, mtime=MTIME)
    return fs


SERVERS = [(binary, socket) for binary in ("uwsgi", "launcher") for socket in ("http11-socket", "http-socket")]


@pytest.fixture(scope="module", params=SERVERS, ids=["-".join(s) for s in SERVERS])
def hot_server(request, volume, tmp_path_factory):
    binary, socket_option = request.param
    command = str(request.getfixturevalue("uwsgi_bin")) if binary == "uwsgi" else UWSGI_GLUSTER
    base = tmp_path_factory.mktemp("hotbase")
    workdir = tmp_path_factory.mktemp("hot")
    srv = Server([command], INI.format(socket=socket_option, base=base), workdir, "hot")
    srv.keepalive = socket_option == "http11-socket"
    with srv.start():
        srv.hot_dir = Path(hotanswers.BASE) / f"uwsgi-gluster-{os.getuid()}-{srv.proc.pid}" / hotanswers.SUBDIR
        yield srv


class Connection:
    """Raw HTTP/1.1 exchanges on one connection (or one per request when the
    server does not keep connections alive); each answer as the exact bytes."""

    def __init__(self, port: int, keepalive: bool):
        self.port, self.keepalive = port, keepalive
        self.sock = None

    def ask(self, method: str, path: str, headers: dict = None) -> bytes:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.buffer = b""
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if method == "HEAD":
            length = 0
        if not self.keepalive:
            while True:  # http-socket closes after each answer
                try:
                    self._more()
                except EOFError:
                    break
            length = len(self.buffer)
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        if not self.keepalive:
            self.close()
        return head + b"\r\n\r\n" + body

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def hot_file(server, path: str) -> Path:
    return server.hot_dir / hotanswers.name_of(path.encode())


def read_by_c(server, path: str) -> bool:
    """Was the hot answer read since it was written or revalidated? Only the C
    side reads it (Python writes it with atime 0, the refresher opens it
    O_NOATIME and sets atime 0 again): a read sets the atime past the mtime."""
    st = hot_file(server, path).stat()
    return st.st_atime_ns > st.st_mtime_ns


def until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("path", [f"{PREFIX}/small.txt", f"{PREFIX}/mid.bin"])
def test_c_answer_is_byte_exact_python_answer(hot_server, path):
    conn = Connection(hot_server.port, hot_server.keepalive)
    try:
        assert not hot_file(hot_server, path).exists()
        python_head = conn.ask("HEAD", path)  # HEAD is never published: Python's answer
        python_get = conn.ask("GET", path)  # published by the worker that answered
        assert python_get.startswith(b"HTTP/1.1 200 OK\r\n") and python_get.endswith(FILES[path])
        assert until(lambda: hot_file(hot_server, path).exists())
        for _ in range(6):  # several, on one kept-alive connection: both workers, C's answers
            assert conn.ask("GET", path) == python_get
            assert conn.ask("HEAD", path) == python_head
        assert until(lambda: conn.ask("GET", path) == python_get and read_by_c(hot_server, path))
    finally:
        conn.close()


def test_requests_that_depend_on_more_than_the_path_get_pythons_answer(hot_server):
    path = f"{PREFIX}/site.css"
    conn = Connection(hot_server.port, hot_server.keepalive)
    try:
        plain = conn.ask("GET", path)
        assert until(lambda: hot_file(hot_server, path).exists())
        assert conn.ask("GET", path) == plain
        etag = [line for line in plain.split(b"\r\n") if line.lower().startswith(b"etag:")][0].split(b": ")[1]
        ranged = conn.ask("GET", path, {"Range": "bytes=0-3"})
        assert ranged.startswith(b"HTTP/1.1 206 ") and ranged.endswith(b"body")
        assert conn.ask("GET", path, {"If-None-Match": etag.decode()}).startswith(b"HTTP/1.1 304 ")
        last_modified = [line for line in plain.split(b"\r\n") if line.startswith(b"Last-Modified:")][0]
        assert conn.ask("GET", path, {"If-Modified-Since": last_modified.split(b": ")[1].decode()}) \
            .startswith(b"HTTP/1.1 304 ")
        encoded = conn.ask("GET", path, {"Accept-Encoding": "gzip"})
        assert b"\r\nContent-Encoding: gzip\r\n" in encoded
        assert encoded.endswith(FILES[f"{PREFIX}/site.css.gz"])
        assert conn.ask("GET", path) == plain  # and the hot answer is still the plain one
    finally:
        conn.close()


def test_rewrite_in_place_keeping_size_and_mtime_is_followed(hot_server, volume):
    path = f"{PREFIX}/inplace-{hot_server.keepalive}.txt"
    write_file(volume, path, b"original", mtime=MTIME)
    time.sleep(BOUND)
    assert {hot_server.get(path).body for _ in range(8)} == {b"original"}
    assert until(lambda: hot_file(hot_server, path).exists())
    stop = time.monotonic() + 2.5  # keep it hot (C's answers, the refresher revalidating)
    while time.monotonic() < stop:
        assert hot_server.get(path).body == b"original"
    fd = gfapi.open_file(volume, path, os.O_WRONLY)  # same inode, no truncation
    try:
        gfapi.pwrite_all(fd, b"REPLACED")
    finally:
        gfapi.close(fd)
    gfapi.set_mtime(volume, path, MTIME)
    time.sleep(BOUND)
    assert {hot_server.get(path).body for _ in range(8)} == {b"REPLACED"}
    gfapi.unlink(volume, path)
    time.sleep(BOUND)
    assert {hot_server.get(path).status for _ in range(8)} == {404}


def test_rewrite_in_place_among_answers_revalidated_by_one_listing(hot_server, volume):
    """Enough hot answers due in one directory are revalidated with one listing
    of it (hotanswers.BATCH_MIN): a rewrite in place and a removal there are
    followed within the freshness bound all the same."""
    directory = f"{PREFIX}/listed-{hot_server.keepalive}"
    paths = [f"{directory}/f{i}.txt" for i in range(hotanswers.BATCH_MIN + 2)]
    for path in paths:
        write_file(volume, path, b"original", mtime=MTIME)
    time.sleep(BOUND)

    def keep_hot(seconds: float, expected: dict) -> None:
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            for path in paths:
                reply = hot_server.get(path)
                assert (reply.status, reply.body) == expected.get(path, (200, b"original")), path

    keep_hot(0.2, {})
    assert until(lambda: all(hot_file(hot_server, path).exists() for path in paths))
    keep_hot(2.5, {})  # C's answers, revalidated in the background
    fd = gfapi.open_file(volume, paths[0], os.O_WRONLY)  # same inode, no truncation
    try:
        gfapi.pwrite_all(fd, b"REPLACED")
    finally:
        gfapi.close(fd)
    gfapi.set_mtime(volume, paths[0], MTIME)
    gfapi.unlink(volume, paths[1])
    time.sleep(BOUND)
    assert {hot_server.get(paths[0]).body for _ in range(8)} == {b"REPLACED"}
    assert {hot_server.get(paths[1]).status for _ in range(8)} == {404}
    gone = hot_server.get(paths[1])
    keep_hot(1.5, {paths[0]: (200, b"REPLACED"), paths[1]: (404, gone.body)})


def _plant(server, path: str, stored_path: bytes, body: bytes, age: float = 0.0) -> Path:
    """A hot answer file as Python would write it, for ``stored_path``, under the name of ``path``."""
    data = hotanswers.encode(stored_path, b"/nowhere", (1, len(body), 0, 0), "200 OK",
                             [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))], body, 0, 1.0)
    target = hot_file(server, path)
    tmp = target.with_name(".tmp-test")
    tmp.write_bytes(data)
    when = time.time_ns() - int(age * 1e9)
    os.utime(tmp, ns=(0, when))
    tmp.rename(target)
    return target


def test_c_sends_only_fresh_answers_written_for_exactly_this_path(hot_server):
    # A path the volume does not have: Python says 404; a planted fresh answer is C's
    assert until(lambda: hot_server.hot_dir.is_dir())
    path = f"{PREFIX}/planted-{hot_server.keepalive}.txt"
    assert request(hot_server.port, "GET", path).status == 404
    _plant(hot_server, path, path.encode(), b"planted")
    reply = request(hot_server.port, "GET", path)
    assert (reply.status, reply.body) == (200, b"planted")
    # stale (validated longer ago than the freshness bound): Python's answer
    _plant(hot_server, path, path.encode(), b"planted", age=DEFAULT_FRESHNESS + 0.1)
    assert request(hot_server.port, "GET", path).status == 404
    # written for another PATH_INFO under this name (a hash collision): Python's
    _plant(hot_server, path, path.encode() + b"/../x", b"planted")
    assert request(hot_server.port, "GET", path).status == 404
    # a symlink in the hot directory is never followed
    target = hot_file(hot_server, path)
    real = target.with_name(".real-test")
    _plant(hot_server, path, path.encode(), b"planted")
    target.rename(real)
    target.symlink_to(real)
    try:
        assert request(hot_server.port, "GET", path).status == 404
    finally:
        target.unlink()
        real.unlink()


@pytest.mark.parametrize("size", [len(b"planted"), 40_000], ids=["in-memory", "sendfile"])
def test_kept_answer_is_marked_read_after_each_revalidation(hot_server, size):
    """A worker keeps the hot files it sent open (the C side's open answers)
    and sends a small one from memory: it must still read it once after each
    revalidation (atime past mtime), or the refresher never sees it used again
    and the answer expires every second into Python."""
    assert until(lambda: hot_server.hot_dir.is_dir())
    path = f"{PREFIX}/kept-{size}-{hot_server.keepalive}.txt"
    body = (b"planted" * (size // 7 + 1))[:size]
    target = _plant(hot_server, path, path.encode(), body)
    conn = Connection(hot_server.port, hot_server.keepalive)
    try:
        for _ in range(12):  # kept by every worker that answers this connection (or these)
            assert conn.ask("GET", path).endswith(body)
        for _ in range(5):
            os.utime(target, ns=(0, time.time_ns()))  # what a revalidation does to it
            assert not read_by_c(hot_server, path)
            answer = conn.ask("GET", path)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(body)
            assert read_by_c(hot_server, path)
    finally:
        conn.close()
        target.unlink()


def _workers(server) -> list:
    return Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()


def _open_hot_files(server) -> list:
    """What the workers hold open in the hot directory (``(deleted)`` once removed)."""
    held = []
    for worker in _workers(server):
        for fd in Path(f"/proc/{worker}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith(str(server.hot_dir) + "/"):
                held.append(target)
    return held


def test_workers_let_go_of_removed_answers(hot_server):
    """A kept answer whose file was removed (the refresher dropped it) is let
    go within seconds, requests or not: its descriptor would hold its memory
    in /dev/shm for as long as the worker lives."""
    assert until(lambda: hot_server.hot_dir.is_dir())
    paths = [f"{PREFIX}/dropped-{i}-{hot_server.keepalive}.txt" for i in range(4)]
    targets = [_plant(hot_server, path, path.encode(), b"planted") for path in paths]
    for _ in range(6):
        for path in paths:
            assert request(hot_server.port, "GET", path).body == b"planted"
    names = tuple(target.name for target in targets)
    assert any(held.endswith(names) for held in _open_hot_files(hot_server))
    for target in targets:
        target.unlink()

    def let_go() -> bool:
        return not [held for held in _open_hot_files(hot_server) if held.endswith(" (deleted)")]

    assert until(let_go, timeout=15), _open_hot_files(hot_server)


def _pidfd_getfd(pid: int, fd: int) -> int:
    """A copy of process ``pid``'s descriptor ``fd`` (pidfd_getfd(2))."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copy = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd on x86_64
        if copy < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
        return copy
    finally:
        os.close(pidfd)


def test_connections_have_tcp_nodelay_without_tcp_nodelay_option(hot_server):
    """The C side sets TCP_NODELAY on the listening sockets, so every accepted
    connection has it (no per-request setsockopt, and a body's last segment
    never waits for a delayed ACK) though the ini has no ``tcp-nodelay``."""
    assert "tcp-nodelay" not in INI
    with socket.create_connection(("127.0.0.1", hot_server.port), timeout=30) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # unfinished: the worker waits for more
        local = client.getsockname()
        found = []

        def look() -> bool:
            for worker in _workers(hot_server):
                for fd in Path(f"/proc/{worker}/fd").iterdir():
                    try:
                        if not os.readlink(fd).startswith("socket:"):
                            continue
                        copy = _pidfd_getfd(int(worker), int(fd.name))
                    except OSError:
                        continue
                    with socket.socket(fileno=copy) as sock:
                        try:
                            peer = sock.getpeername()
                        except OSError:  # a listening socket
                            continue
                        if sock.family == socket.AF_INET and peer == local:
                            found.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            return bool(found)

        assert until(look)
        assert all(found), found


def test_launcher_without_its_c_plugin_answers_in_python_and_says_so(volume, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    missing = tmp_path / "nowhere" / "glusterfs_plugin.so"
    srv = Server([UWSGI_GLUSTER], INI.format(socket="http11-socket", base=base), tmp_path, "nocplugin",
                 env={"UWSGI_GLUSTER_PYPLUGIN": str(missing)})
    path = f"{PREFIX}/small.txt"
    with srv.start():
        for _ in range(8):
            answer = srv.get(path)
            assert answer.status == 200 and answer.body == SMALL
        assert srv.get(path, headers={"Range": "bytes=0-3"}).body == SMALL[:4]
        hot = Path(hotanswers.BASE) / f"uwsgi-gluster-{os.getuid()}-{srv.proc.pid}" / hotanswers.SUBDIR
        assert not (hot.exists() and any(hot.iterdir()))  # nothing published: no C side reads it
    said = [line for line in srv.log().splitlines() if line.startswith("[glusterfs] ") and "C plugin" in line]
    assert said == [f"[glusterfs] no C plugin at {missing} (make pyplugin builds it): every request is answered in Python"]


@pytest.mark.skipif(not Path("/usr/lib/uwsgi/plugins/glusterfs_plugin.so").exists(),
                    reason="Debian's native plugin (uwsgi-plugin-glusterfs) is not installed")
def test_launcher_c_plugin_keeps_debians_native_plugin_out(volume, tmp_path):
    """A Debian ini's ``plugin-dir`` + ``plugins = glusterfs`` with the launcher:
    our C plugin, loaded first, holds the name, so Debian's 2.0.21 .so (now
    resolvable: pyuwsgi's symbols are global) is unloaded unused, and our hook
    sends the hot answers."""
    base = tmp_path / "base"
    base.mkdir()
    ini = INI.format(socket="http11-socket", base=base) + "plugin-dir = /usr/lib/uwsgi/plugins\nplugins = glusterfs\n"
    srv = Server([UWSGI_GLUSTER], ini, tmp_path, "debianini")
    path = f"{PREFIX}/small.txt"
    with srv.start():
        srv.hot_dir = Path(hotanswers.BASE) / f"uwsgi-gluster-{os.getuid()}-{srv.proc.pid}" / hotanswers.SUBDIR
        first = srv.get(path)
        assert first.status == 200 and first.body == SMALL
        assert until(lambda: hot_file(srv, path).exists())
        assert until(lambda: srv.get(path).body == SMALL and read_by_c(srv, path))
    log = srv.log()
    assert "UNABLE to load" not in log and "every request is answered in Python" not in log
    assert "SIGSEGV" not in log and "Segmentation" not in log and "signal 11" not in log, log[-3000:]


@pytest.fixture(params=["uwsgi", "launcher"])
def hot_command(request) -> str:
    """./uwsgi, then the uwsgi-gluster launcher (its C plugin loaded into pyuwsgi)."""
    return str(request.getfixturevalue("uwsgi_bin")) if request.param == "uwsgi" else UWSGI_GLUSTER


def test_c_answers_missing_from_glusterfs_metrics(hot_command, volume, tmp_path):
    """Answers sent by C were not counted in the glusterfs metrics (requests,
    bytes, cache hits): /_metrics undercounted every hot file."""
    base, workdir = tmp_path / "base", tmp_path / "srv"
    base.mkdir()
    workdir.mkdir()
    ini = INI.format(socket="http-socket", base=base) + "glusterfs-metrics = /_metrics\n"
    srv = Server([hot_command], ini, workdir, "hot-metrics")
    path = f"{PREFIX}/small.txt"

    def counters() -> dict:
        text = request(srv.port, "GET", "/_metrics").body.decode()
        return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith("uwsgi_gluster_") and "{" in line}

    with srv.start():
        srv.hot_dir = Path(hotanswers.BASE) / f"uwsgi-gluster-{os.getuid()}-{srv.proc.pid}" / hotanswers.SUBDIR
        assert until(lambda: request(srv.port, "GET", path).body == SMALL and hot_file(srv, path).exists())
        assert until(lambda: request(srv.port, "GET", path).body == SMALL and read_by_c(srv, path))
        before = counters()
        for _ in range(20):
            assert request(srv.port, "GET", path).body == SMALL
        after = counters()

    labels = '{mount="/",volume="unbit003"'

    def grew(name: str) -> int:
        return after[name] - before.get(name, 0)

    assert grew(f'uwsgi_gluster_requests_total{labels},class="2xx"}}') >= 20
    assert grew(f"uwsgi_gluster_bytes_sent_total{labels}}}") >= 20 * len(SMALL)
    assert grew(f"uwsgi_gluster_cache_hits_total{labels}}}") >= 20
