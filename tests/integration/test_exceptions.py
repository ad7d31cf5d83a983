"""Python exceptions raised while serving are logged, and leave nothing behind.

Regression: with ``--remap-modifier 0:27`` alone, uWSGI looks up exception hooks
for modifier1 27, which has none: an exception raised by the response body was
neither logged nor cleared, and the body's close() then ran with it pending
(every C call in it raising SystemError, so glfs_close was skipped). The
launcher now sets modifier1 back to 0 in a first route.
"""

import socket

import pytest

from support import download_while_it_shrinks, log_once_it_says, ours, request
from uwsgi_gluster.seeding import write_file

SIZE = 8 << 20
INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit003,server=127.0.0.1:0
threads = 4
; these tests are about streaming from the volume: no local copies (localcache.py)
env = GLUSTERFS_LOCAL_CACHE_SIZE=0
"""


@pytest.fixture
def server(volumes, tmp_path):
    with ours(INI, tmp_path).start() as srv:
        yield srv


def test_file_shrinking_mid_download_is_cut_and_logged(server, volumes):
    head, body = download_while_it_shrinks(server.port, volumes["unbit003"], "/shrinks.bin", SIZE)
    assert f"Content-Length: {SIZE}".encode() in head
    assert len(body) < SIZE  # the connection was closed early, not padded or hung
    log = log_once_it_says(server, "file shrank while it was being sent")
    assert "file shrank while it was being sent" in log
    assert "SystemError" not in log
    reply = request(server.port, "GET", "/shrinks.bin")
    assert (reply.status, reply.body) == (200, b"tiny")


def test_aborted_downloads_raise_no_python_exception(server, volumes):
    fs = volumes["unbit003"]
    write_file(fs, "/big.bin", b"b" * SIZE)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"GET /big.bin HTTP/1.0\r\n\r\n")
            sock.recv(65536)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert len(request(server.port, "GET", "/big.bin").body) == SIZE
    log = server.log()
    assert "Connection reset by peer" in log or "Broken pipe" in log  # uWSGI's core logs it
    assert "write error" not in log and "SystemError" not in log and "Traceback" not in log
