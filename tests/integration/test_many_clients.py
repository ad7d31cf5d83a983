"""gevent mode (README "Many clients"): many slow connections per worker, none starving another.

Functional checks only (no timing assertions): in gevent mode, with both launchers,
the corpus is served byte-exact; short GETs are answered while far more slow
downloads and unfinished request heads are open than the worker has threads; a
volume that stops answering gives a 503 before the headers and a body cut short
(and one log line) after them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import List

import pytest
from configs import BUILT_UWSGI

from corpus import CORPUS
from netfaults import Forwarder, wait_for
from support import UWSGI_GLUSTER, Server, free_port, open_download, read_all
from support import request as http_request

# the streamed path read on the pool (aio): the local content cache, which would
# send big files as local copies by sendfile instead, is off here
GEVENT_INI = """[uwsgi]
env = GLUSTERFS_LOCAL_CACHE_SIZE=0
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
master = true
processes = 1
gevent = 400
listen = 1024
; a client held by the test takes no byte for seconds: not dropped (ini/many-clients.ini has 30)
socket-timeout = 60
"""

HUGE_DATA = CORPUS["/sizes/10MiB.bin"]
BIG = "/sizes/3145735.bin"  # 3 MiB + 7: streamed (not cached), several reads
HUGE = "/crowd-10MiB.bin"  # conftest's crowd_file: more than a loopback socket's buffers hold


def launchers():
    return [pytest.param([UWSGI_GLUSTER], id="uwsgi-gluster"), pytest.param([BUILT_UWSGI], id="./uwsgi")]


@pytest.fixture(scope="module", params=launchers())
def gevent_server(request, volumes, crowd_file, tmp_path_factory):
    command = request.param
    if command == [BUILT_UWSGI] and not os.access(BUILT_UWSGI, os.X_OK):
        pytest.fail("./uwsgi is not built: run make")
    server = Server(command, GEVENT_INI, tmp_path_factory.mktemp("gevent"), name="gevent")
    with server.start():
        yield server


def test_gevent_mode_is_announced(gevent_server):
    log = gevent_server.log()
    assert "running gevent loop engine" in log
    assert "[glusterfs] gevent mode: libgfapi calls run on" in log


def test_gevent_serves_corpus_byte_exact(gevent_server):
    for path, data in CORPUS.items():
        if path.startswith("/."):
            continue
        reply = gevent_server.get(path)
        assert (path, reply.status) == (path, 200)
        assert reply.body == data, path
        head = gevent_server.get(path, method="HEAD")
        assert (head.status, head.body, head.header("Content-Length")) == (200, b"", str(len(data)))


@pytest.mark.parametrize("spec,start,end", [("bytes=0-0", 0, 1), ("bytes=1000-1048576", 1000, 1048577),
                                            ("bytes=-7", 3145728, 3145735), ("bytes=3000000-", 3000000, 3145735)])
def test_gevent_range(gevent_server, spec, start, end):
    reply = gevent_server.get(BIG, headers={"Range": spec})
    assert reply.status == 206
    assert reply.body == CORPUS[BIG][start:end]
    assert reply.header("Content-Range") == f"bytes {start}-{end - 1}/{len(CORPUS[BIG])}"


def _body(answer: bytes) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")), head[:100]
    return body


def _assert_file(i: int, got: bytes, expected: bytes, server) -> None:
    """``got`` is ``expected``; else say how it differs (length, first differing
    byte) with the server's last log lines."""
    if got == expected:
        return
    first = next((k for k in range(min(len(got), len(expected))) if got[k] != expected[k]), None)
    tail = "\n".join(server.log().splitlines()[-15:])
    raise AssertionError(f"download {i}: {len(got)} of {len(expected)} bytes, first differing byte at {first}, "
                         f"sha256 {hashlib.sha256(got).hexdigest()[:12]}\n{tail}")


def test_slow_downloads_do_not_starve_short_gets(gevent_server):
    """60 downloads of a file larger than a socket's buffers held mid-body (a
    threaded worker would have every thread pinned) while 20 short GETs are each
    answered; then every download completes byte-exact."""
    _short_gets_while_downloads_are_held(gevent_server)


def _short_gets_while_downloads_are_held(server, while_held=lambda: None) -> None:
    """60 downloads of HUGE held mid-body; ``while_held()``; 20 short GETs, each
    answered; then every download arrives byte-exact."""
    downloads: List[socket.socket] = []
    try:
        for _ in range(60):
            downloads.append(open_download(server.port, HUGE))
        started = {i: downloads[i].recv(1024) for i in range(0, 60, 6)}
        assert all(started.values())  # the server is streaming to them
        while_held()
        for i in range(20):
            reply = http_request(server.port, "GET", "/hello.txt", timeout=30)
            assert (i, reply.status, reply.body) == (i, 200, CORPUS["/hello.txt"])
        for i, sock in enumerate(downloads):
            _assert_file(i, _body(started.get(i, b"") + read_all(sock)), HUGE_DATA, server)
    finally:
        for sock in downloads:
            sock.close()


def test_unfinished_request_heads_do_not_starve_short_gets(gevent_server):
    heads: List[socket.socket] = []
    try:
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", gevent_server.port), timeout=60)
            sock.sendall(f"GET /hello.txt HTTP/1.0\r\nX-Slow: {i}\r\n".encode())
            heads.append(sock)
        for i in range(20):
            reply = http_request(gevent_server.port, "GET", "/index.html", timeout=30)
            assert (i, reply.status, reply.body) == (i, 200, CORPUS["/index.html"])
        for sock in heads:  # each head completed: each gets its own answer
            sock.sendall(b"\r\n")
        for sock in heads:
            assert _body(read_all(sock)) == CORPUS["/hello.txt"]
    finally:
        for sock in heads:
            sock.close()


# -- a volume that stops answering: glusterfs-timeout ---------------------------------

class HoldingForwarder(Forwarder):
    """A :class:`Forwarder` that can stop passing bytes on (connections stay open)."""

    def __init__(self, port, target) -> None:
        self.flowing = threading.Event()
        self.flowing.set()
        super().__init__(port, target)

    def _pump(self, src, dst) -> None:  # type: ignore[override]
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _spawn(self, target, *args) -> None:
        if target is Forwarder._pump:  # the base class passes the staticmethod
            target = self._pump
        super()._spawn(target, *args)


def brick_port(volume: str) -> int:
    out = subprocess.run(["gluster", "volume", "status", volume], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    match = re.search(r"^Brick \S+\s+(\d+)", out, re.M)
    assert match, out
    return int(match.group(1))


@pytest.fixture
def held_volume(volumes, crowd_file, tmp_path):
    """unbit001 through a client volfile whose brick connection passes a HoldingForwarder."""
    forwarder = HoldingForwarder(free_port(), ("127.0.0.1", brick_port("unbit001")))
    spec = subprocess.run(["gluster", "system::", "getspec", "unbit001"], capture_output=True, text=True,
                          timeout=60)
    text = spec.stdout if spec.returncode == 0 and "protocol/client" in spec.stdout else \
        open("/var/lib/glusterd/vols/unbit001/unbit001.tcp-fuse.vol").read()
    text = re.sub(r"option remote-host \S+", f"option remote-host 127.0.0.1\n    option remote-port {forwarder.port}",
                  text)
    volfile = tmp_path / "held.vol"
    volfile.write_text(text)
    yield forwarder, volfile
    forwarder.flowing.set()
    forwarder.close()


def _held_server(volfile, tmp_path) -> Server:
    ini = GEVENT_INI.replace("server=127.0.0.1:0", f"volfile={volfile}") + "glusterfs-timeout = 2\n"
    return Server([UWSGI_GLUSTER], ini, tmp_path, name="held")


def test_timeout_before_headers_answers_503(held_volume, tmp_path):
    forwarder, volfile = held_volume
    with _held_server(volfile, tmp_path).start() as server:
        assert server.get("/movie.mp4").body == CORPUS["/movie.mp4"]
        forwarder.flowing.clear()
        reply = http_request(server.port, "GET", "/a/b/c/deep.txt", timeout=60)
        assert reply.status == 503 and reply.header("Retry-After") == "1"
        assert wait_for(lambda: "no answer from the volume within 2 s; answering 503" in server.log(), 10)
        forwarder.flowing.set()


def test_timeout_mid_body_cuts_the_response(held_volume, tmp_path):
    forwarder, volfile = held_volume
    with _held_server(volfile, tmp_path).start() as server:
        sock = open_download(server.port, HUGE)
        try:
            first = sock.recv(65536)
            head = first.partition(b"\r\n\r\n")[0]
            assert b"Content-Length: 10485760" in head
            forwarder.flowing.clear()
            answer = first + read_all(sock)  # ends: the server closes the connection
        finally:
            sock.close()
        forwarder.flowing.set()
        body = answer.partition(b"\r\n\r\n")[2]
        assert len(body) < 10 << 20
        assert body == HUGE_DATA[:len(body)]  # what came is the file's
        assert wait_for(lambda: "response cut after" in server.log(), 10)
        lines = [line for line in server.log().splitlines() if HUGE in line and "no answer" in line]
        assert len(lines) == 1 and lines[0].startswith(f"[glusterfs] worker 1: GET {HUGE}: no answer "
                                                       "from the volume within 2 s; response cut after"), lines


def test_documented_many_clients_ini_serves(volumes, crowd_file, tmp_path):
    """ini/many-clients.ini (README "Many clients"), on the corpus volume and a free port."""
    text = (Path(__file__).resolve().parents[2] / "ini" / "many-clients.ini").read_text()
    assert "http-socket = :9090" in text and "volume=demo" in text
    ini = text.replace("http-socket = :9090", "http-socket = 127.0.0.1:{port}")
    ini = ini.replace("volume=demo", "volume=unbit001")
    with Server([UWSGI_GLUSTER], ini, tmp_path, name="many-clients").start() as server:
        log = server.log()
        assert "[glusterfs] gevent mode: libgfapi calls run on 16 threads per worker, each wait bounded to 10 s" in log
        assert "[glusterfs] SIGHUP reloads the workers one at a time" in log
        assert server.get(HUGE).body == HUGE_DATA


@pytest.mark.parametrize("user_metrics", [False, True], ids=["metrics-ours-only", "enable-metrics-by-user"])
def test_gevent_cores_get_no_uwsgi_per_core_metrics_unless_asked(volumes, tmp_path, user_metrics):
    """The launcher turns uWSGI's metrics on for ours, and uWSGI then made seven
    metrics for every core of every worker, in the master: with ``gevent = 1000``
    x 4 processes that was 120 MB of every worker's RSS (bench-crowd: 174 MB per
    worker). A configuration that turns uWSGI's metrics on itself keeps them."""
    stats_port = free_port()
    ini = GEVENT_INI.replace("processes = 1", "processes = 2").replace("gevent = 400", "gevent = 50")
    ini += f"stats = 127.0.0.1:{stats_port}\nstats-http = true\n"
    if user_metrics:
        ini += "enable-metrics = true\n"
    with Server([UWSGI_GLUSTER], ini, tmp_path, name="gevent-metrics").start() as server:
        assert server.get("/index.html").status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/", timeout=10) as reply:
            names = set(json.load(reply)["metrics"])
    assert {"worker.1.requests", "worker.2.requests", "glusterfs.root.requests_2xx"} <= names
    per_core = {name for name in names if re.fullmatch(r"worker\.\d+\.core\.\d+\.\w+", name)}
    if user_metrics:
        assert len(per_core) == 2 * 50 * 7, sorted(per_core)[:10]
    else:
        assert per_core == set(), sorted(per_core)[:10]


@pytest.mark.parametrize("command", launchers())
def test_gevent_with_http11_socket_is_refused_at_start_up(volumes, tmp_path, command):
    """uWSGI's gevent loop with an http11-socket answered a few requests a second
    and its worker died on libev's assertion (``epoll_modify: I/O watcher with
    invalid fd``), respawned for ever: start-up refuses the pair with one line."""
    if command == [BUILT_UWSGI] and not os.access(BUILT_UWSGI, os.X_OK):
        pytest.fail("./uwsgi is not built: run make")
    ini = GEVENT_INI.replace("http-socket = ", "http11-socket = ")
    server = Server(command, ini, tmp_path, name="gevent-http11")
    server.start(wait=False)
    try:
        assert server.proc.wait(timeout=60) == 1, server.log()
    finally:
        server.stop()
    ours = [line for line in server.log().splitlines() if line.startswith("[glusterfs]")]
    assert len(ours) == 1, server.log()
    assert ours[0].startswith(f"[glusterfs] gevent = '400' with http11-socket = '127.0.0.1:{server.port}': "
                              "uWSGI's gevent loop cannot serve HTTP/1.1 keep-alive sockets"), ours
    assert "use http-socket, or uWSGI's http router in front" in ours[0]
    assert "Traceback" not in server.log() and "spawned uWSGI worker" not in server.log()


def test_gevent_with_the_local_cache_sends_held_downloads_from_copies(volumes, crowd_file, tmp_path):
    """README "Many clients", Bodies: with the local content cache on (the default),
    gevent mode sends a big file from its local copy (uWSGI's sendfile waits on the
    loop): 60 held downloads, short GETs answered meanwhile, every download
    byte-exact, and the copy is in the instance's cache directory."""
    base = tmp_path / "shm"
    base.mkdir(mode=0o700)
    ini = GEVENT_INI.replace("env = GLUSTERFS_LOCAL_CACHE_SIZE=0\n", f"env = GLUSTERFS_LOCAL_CACHE_DIR={base}\n")
    assert ini != GEVENT_INI

    def one_copy_in_the_cache() -> None:
        copies = [p for p in base.glob("uwsgi-gluster-*/*") if p.is_file() and p.stat().st_size == len(HUGE_DATA)]
        assert len(copies) == 1 and copies[0].read_bytes() == HUGE_DATA, sorted(base.rglob("*"))

    with Server([UWSGI_GLUSTER], ini, tmp_path, name="gevent-local").start() as server:
        _short_gets_while_downloads_are_held(server, one_copy_in_the_cache)
        assert "Traceback" not in server.log()
