"""Graceful reloads with slow downloads in flight (README "Many clients").

With ``lazy-apps`` and 2+ processes, SIGHUP (made a chain reload by
uwsgi_gluster/reload.py) and ``touch-chain-reload`` reload one worker at a time:
new connections are answered while downloads are held in flight; the held
downloads then finish byte-exact (long mercy), or are cut when the mercy ends and
the client can tell (fewer bytes than Content-Length, connection closed, every
byte it got is the file's).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import List

import pytest
from configs import BUILT_UWSGI

from corpus import CORPUS
from netfaults import wait_for
from support import UWSGI_GLUSTER, Server, open_download, read_all
from support import request as http_request

HUGE_DATA = CORPUS["/sizes/10MiB.bin"]
HUGE = "/crowd-10MiB.bin"  # conftest's crowd_file (the corpus is re-seeded by every session)

INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
master = true
processes = 2
gevent = 200
lazy-apps = true
socket-timeout = 120
worker-reload-mercy = %(mercy)d
%(touch_option)s = %(touch)s
"""


def _split(answer: bytes):
    head, _, body = answer.partition(b"\r\n\r\n")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    length = int(lengths[0])
    return head, length, body


def _server(tmp_path: Path, mercy: int, command: str = UWSGI_GLUSTER,
            touch_option: str = "touch-chain-reload") -> Server:
    touch = tmp_path / "chain-reload"
    touch.write_text("")
    return Server([command], INI % {"mercy": mercy, "touch": touch, "touch_option": touch_option}, tmp_path,
                  name="reload")


def _trigger(server: Server, how: str, tmp_path: Path) -> None:
    if how == "SIGHUP":
        os.kill(server.proc.pid, signal.SIGHUP)
    else:
        time.sleep(1.1)  # uWSGI compares mtimes in whole seconds
        (tmp_path / "chain-reload").write_text("x")


def _hold_on_both_workers(server: Server) -> List[socket.socket]:
    held = [open_download(server.port, HUGE, timeout=120) for _ in range(8)]
    for sock in held:
        assert sock.recv(1) == b"H"  # the answer has started on each
    return held


@pytest.mark.parametrize("how,command", [("SIGHUP", UWSGI_GLUSTER), ("touch-chain-reload", UWSGI_GLUSTER),
                                         ("SIGHUP", BUILT_UWSGI), ("touch-reload", BUILT_UWSGI)],
                         ids=["SIGHUP", "touch-chain-reload", "uwsgi-SIGHUP", "uwsgi-touch-reload"])
def test_reload_answers_new_connections_while_downloads_finish(volumes, crowd_file, tmp_path, how, command, report):
    """(uwsgi-touch-reload: touch-reload reloaded every worker of ./uwsgi at once, so no
    worker answered new connections until the held downloads had finished.)"""
    server = _server(tmp_path, mercy=60, command=command, touch_option=how if how.startswith("touch") else
                     "touch-chain-reload")
    with server.start():
        assert "SIGHUP reloads the workers one at a time" in server.log()
        held = _hold_on_both_workers(server)
        try:
            _trigger(server, how, tmp_path)
            assert wait_for(lambda: "Gracefully killing worker" in server.log(), 10)
            waits = []
            for i in range(10):  # new connections, while every download is still held
                started = time.monotonic()
                reply = http_request(server.port, "GET", "/hello.txt", timeout=30)
                waits.append(time.monotonic() - started)
                assert (i, reply.status, reply.body) == (i, 200, CORPUS["/hello.txt"])
            report(f"{how}: 10 new GETs during the reload, longest {max(waits) * 1000:.0f} ms",
                   longest_ms=round(max(waits) * 1000))
            for sock in held:  # the held downloads finish, byte-exact
                head, length, body = _split(b"H" + read_all(sock))
                assert (length, body) == (len(HUGE_DATA), HUGE_DATA)
        finally:
            for sock in held:
                sock.close()
        assert wait_for(lambda: "chain reloading complete" in server.log(), 60)
        assert http_request(server.port, "GET", "/hello.txt").body == CORPUS["/hello.txt"]


def test_reload_mercy_cuts_held_downloads_visibly(volumes, crowd_file, tmp_path):
    server = _server(tmp_path, mercy=2)
    with server.start():
        held = _hold_on_both_workers(server)
        try:
            os.kill(server.proc.pid, signal.SIGHUP)
            reply = http_request(server.port, "GET", "/hello.txt", timeout=30)
            assert (reply.status, reply.body) == (200, CORPUS["/hello.txt"])
            assert wait_for(lambda: "chain reloading complete" in server.log(), 60)
            cut = 0
            for sock in held:
                head, length, body = _split(b"H" + read_all(sock))
                assert length == len(HUGE_DATA)
                assert body == HUGE_DATA[:len(body)]  # every byte it got is the file's
                cut += len(body) < length  # and it can tell it got fewer
            assert cut == len(held)
        finally:
            for sock in held:
                sock.close()
        assert http_request(server.port, "GET", HUGE).body == HUGE_DATA
