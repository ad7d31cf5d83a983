"""Threaded mode with uWSGI's offload threads (README "Many clients",
ini/many-clients-threaded.ini): a body sent from the local content cache is handed
to an offload thread, so slow readers do not pin the worker's threads.

Functional checks only: with 2 threads and 6 downloads held open by clients that
read nothing, short GETs are still answered, and every held download then arrives
byte-exact."""

from __future__ import annotations

import pytest

from support import open_download, ours, read_all, request

INI = """[uwsgi]
http-socket = 127.0.0.1:{{port}}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
master = true
processes = 1
threads = 2
socket-timeout = 60
glusterfs-local-cache-dir = {cache}
{offload}
"""
HELD = 6


def serve(tmp_path, offload: str):
    cache = tmp_path / "cache"
    cache.mkdir()
    (tmp_path / "srv").mkdir()
    return ours(INI.format(cache=cache, offload=offload), tmp_path / "srv").start()


@pytest.mark.parametrize("offload", ["offload-threads = 2"])
def test_held_downloads_do_not_pin_threads_with_offload_threads(volumes, crowd_file, tmp_path, offload):
    path, data = crowd_file
    with serve(tmp_path, offload) as srv:
        assert request(srv.port, "GET", path).body == data  # the local copy is made
        held = [open_download(srv.port, path) for _ in range(HELD)]
        try:
            for _ in range(5):
                reply = request(srv.port, "GET", "/hello.txt", timeout=15)
                assert (reply.status, reply.body) == (200, b"Hello, Gluster")
            for sock in held:
                head, _, body = read_all(sock).partition(b"\r\n\r\n")
                assert head.split(b" ", 2)[1] == b"200" and body == data
        finally:
            for sock in held:
                sock.close()
