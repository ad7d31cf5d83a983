"""Debian's own uwsgi (uwsgi-core 2.0.21 + uwsgi-plugin-python3) with our glusterfs plugin.

The inis are the native plugin's, unchanged (`plugins = glusterfs`,
`http-socket-modifier1 = 27`): only the plugin directory differs, so that
Debian's /usr/bin/uwsgi finds our glusterfs_plugin.so instead of the native
one installed on this machine.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from corpus import CORPUS, EXTRA_PATHS
from corpus import CORPUS_INI as INI
from distrosupport import REPO, ini_lines
from support import (
    NATIVE_UWSGI,
    Server,
    debian_ours,
    download_while_it_shrinks,
    free_port,
    log_once_it_says,
    native,
    request,
    summary,
    url_path,
)
from uwsgi_gluster.seeding import write_file


@pytest.fixture(scope="module")
def pair(volumes, plugin_dir, pythonpath, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("debian-differential")
    with native(INI, workdir).start() as theirs, \
            debian_ours(INI, workdir, plugin_dir, pythonpath).start() as mine:
        yield theirs, mine


def test_native_ini_is_served_by_our_plugin(pair):
    _, mine = pair
    reply = mine.get("/hello.txt")
    assert (reply.status, reply.body) == (200, CORPUS["/hello.txt"])
    assert reply.header("ETag"), "no ETag: the native plugin answered, not ours"
    log = mine.log()
    assert "Starting uWSGI 2.0.21-debian" in log
    assert "[glusterfs] worker 1 connected to 127.0.0.1:24007" in log


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", sorted(CORPUS) + EXTRA_PATHS)
def test_same_response_as_native(pair, path, method):
    theirs, mine = pair
    expected = summary(request(theirs.port, method, url_path(path)))
    got = summary(request(mine.port, method, url_path(path)))
    assert got == expected
    if method == "GET" and path in CORPUS:
        assert got[2] == CORPUS[path]


SHRINK_SIZE = 8 << 20
# the streamed path (the local content cache would send a complete copy instead)
UNBIT003_INI = """[uwsgi]
env = GLUSTERFS_LOCAL_CACHE_SIZE=0
plugins = glusterfs
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit003,server=127.0.0.1:0
threads = 4
"""


@pytest.fixture
def unbit003_server(volumes, plugin_dir, pythonpath, tmp_path):
    with debian_ours(UNBIT003_INI, tmp_path, plugin_dir, pythonpath).start() as srv:
        yield srv


def test_python_exception_mid_response_is_logged_and_cleared(unbit003_server, volumes):
    """Our plugin hands requests to the Python plugin as modifier1 0, so uWSGI
    finds the Python exception hooks: an exception raised by the body (the file
    shrank during the download) is logged and cleared, and the body's close()
    runs without a pending exception (no SystemError, glfs_close not skipped)."""
    server = unbit003_server
    head, body = download_while_it_shrinks(server.port, volumes["unbit003"], "/distro-shrinks.bin", SHRINK_SIZE)
    assert f"Content-Length: {SHRINK_SIZE}".encode() in head
    assert len(body) < SHRINK_SIZE
    log = log_once_it_says(server, "file shrank while it was being sent")
    assert "file shrank while it was being sent" in log
    assert "SystemError" not in log
    assert server.get("/distro-shrinks.bin").body == b"tiny"


def test_aborted_downloads_raise_no_python_exception(unbit003_server, volumes):
    """disable-write-exception comes with the plugin: a client that goes away is
    logged by uWSGI's core, not turned into a Python exception."""
    server, fs = unbit003_server, volumes["unbit003"]
    write_file(fs, "/distro-big.bin", b"b" * SHRINK_SIZE)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"GET /distro-big.bin HTTP/1.0\r\n\r\n")
            sock.recv(65536)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert len(server.get("/distro-big.bin").body) == SHRINK_SIZE
    log = server.log()
    assert "Connection reset by peer" in log or "Broken pipe" in log  # uWSGI's core logs it
    assert "write error" not in log and "SystemError" not in log and "Traceback" not in log


def test_emperor_vassals_saying_plugins_glusterfs(volumes, plugin_dir, pythonpath, tmp_path):
    """`uwsgi --emperor DIR` (Debian's binary): each vassal is a native ini with
    `plugins = glusterfs`, served by ours, each with its own mounts."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    ports = {}
    for name, volume in (("one", "unbit001"), ("two", "unbit002")):
        ports[name] = free_port()
        (vassals / f"{name}.ini").write_text(ini_lines(
            "plugins = glusterfs", f"http-socket = 127.0.0.1:{ports[name]}", "http-socket-modifier1 = 27",
            f"glusterfs-mount = mountpoint=/,volume={volume},server=127.0.0.1:0", "threads = 4"))
    emperor = Server([NATIVE_UWSGI], ini_lines(f"emperor = {vassals}", "emperor-stats-server = 127.0.0.1:0"),
                     tmp_path, "emperor", port=ports["one"],
                     env={"UWSGI_PLUGIN_DIR": str(plugin_dir), "PYTHONPATH": ":".join(map(str, pythonpath))})
    with emperor.start(timeout=90):
        for name, volume in (("one", "unbit001"), ("two", "unbit002")):
            reply = _wait_get(ports[name], "/whoami.txt", emperor)
            assert (reply.status, reply.body) == (200, volume.encode())
            assert reply.header("ETag")
        assert _wait_get(ports["one"], "/hello.txt", emperor).body == CORPUS["/hello.txt"]


def _wait_get(port: int, path: str, server: Server, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return request(port, "GET", path, timeout=10)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing answers on {port}:\n{server.log()}") from exc
            time.sleep(0.3)


GEVENT_INI = """[uwsgi]
plugins = glusterfs,gevent_python3
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
gevent = 50
"""


def test_gevent_loop_engine_serves_the_corpus(volumes, plugin_dir, pythonpath, tmp_path):
    """Debian's gevent plugin (uwsgi-plugin-gevent-python3) as the loop engine:
    every corpus file is served with its bytes, also with 20 downloads of the
    10 MiB file at once (libgfapi calls run on uwsgi_gluster.aio's thread pool:
    tests/integration/test_many_clients.py checks the concurrency)."""
    with debian_ours(GEVENT_INI, tmp_path, plugin_dir, pythonpath).start() as server:
        assert "running gevent loop engine" in server.log()
        for path, body in CORPUS.items():
            reply = server.get(path)
            assert (reply.status, reply.body) == (200, body), path
        with ThreadPoolExecutor(20) as pool:
            bodies = list(pool.map(lambda _: server.get("/sizes/10MiB.bin").body, range(20)))
        assert all(body == CORPUS["/sizes/10MiB.bin"] for body in bodies)
        assert "Traceback" not in server.log()


@pytest.mark.parametrize("name,expect", [
    ("single-server.ini", {"/whoami.txt": b"unbit001"}),
    ("server-list.ini", {"/whoami.txt": b"unbit001"}),  # its first server is dead
    ("three-mountpoints.ini", {"/whoami.txt": b"unbit001"}),
    ("routing.ini", {"/whoami.txt": b"unbit001", "/foo/whoami.txt": b"unbit002", "/bar/whoami.txt": b"unbit003"}),
])
def test_documentation_inis_with_plugins_glusterfs(volumes, plugin_dir, pythonpath, tmp_path, name, expect):
    """The documentation's inis of ini/ as a Debian user has them: with a
    `plugins = glusterfs` line (only the port changed)."""
    text = (REPO / "ini" / name).read_text()
    assert "http-socket = :9090" in text
    text = text.replace("[uwsgi]\n", "[uwsgi]\nplugins = glusterfs\n", 1).replace(
        "http-socket = :9090", "http-socket = 127.0.0.1:{port}")
    with debian_ours(text, tmp_path, plugin_dir, pythonpath).start() as server:
        for path, body in expect.items():
            reply = server.get(path)
            assert (reply.status, reply.body) == (200, body), path
            assert reply.header("ETag")


@pytest.mark.parametrize("plugins", ["python3,glusterfs", "glusterfs,python3", "python3\nplugins = glusterfs"])
def test_python3_plugin_named_too(volumes, plugin_dir, pythonpath, tmp_path, plugins):
    """An ini that also loads python3 itself, before or after glusterfs: one
    Python plugin, the same service."""
    ini = INI.replace("plugins = glusterfs", f"plugins = {plugins}")
    with debian_ours(ini, tmp_path, plugin_dir, pythonpath).start() as server:
        reply = server.get("/hello.txt")
        assert (reply.status, reply.body) == (200, CORPUS["/hello.txt"])
        assert reply.header("ETag")
        assert server.log().count("Python version:") == 1


def test_plugin_loaded_before_the_option_table_exists_does_not_crash(volumes, plugin_dir, pythonpath, tmp_path):
    """Regression: uWSGI loads the plugins named by UWSGI_PLUGINS (and by an
    executable named uwsgi_glusterfs) before it builds its option table; adding
    our options from on_load then crashed the process (SIGSEGV in uwsgi_opt_get).
    Here the ini has no `plugins` line at all."""
    ini = INI.replace("plugins = glusterfs\n", "")
    server = debian_ours(ini, tmp_path, plugin_dir, pythonpath)
    server.env = {**(server.env or {}), "UWSGI_PLUGINS": str(plugin_dir / "glusterfs_plugin.so")}
    with server.start():
        reply = server.get("/hello.txt")
        assert (reply.status, reply.body) == (200, CORPUS["/hello.txt"])
        assert reply.header("ETag")


@pytest.mark.parametrize("master", [False, True])
def test_bad_mount_line_stops_start_up_naming_option_and_key(volumes, plugin_dir, pythonpath, tmp_path, master):
    """A glusterfs-mount the native plugin would half-ignore stops Debian's uwsgi
    with exit status 1 and one line naming the option, the key and the config;
    no traceback (the start-up check runs in the master: shared-import)."""
    ini = INI.replace("volume=unbit001,", "volume=unbit001,bogus=1,") + ("master = true\n" if master else "")
    server = debian_ours(ini, tmp_path, plugin_dir, pythonpath)
    server.start(wait=False)
    assert server.proc.wait(60) == 1
    log = server.log()
    line = next(line for line in log.splitlines() if line.startswith("[glusterfs] glusterfs-mount #1 = "))
    assert "unknown key 'bogus'" in line and f"(config: {server.ini_path})" in line
    assert "Traceback" not in log
