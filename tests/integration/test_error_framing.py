"""Error pages on a kept-alive socket (``http11-socket``, README's recommendation)."""

from __future__ import annotations

import socket

import pytest

from support import ours

INI = """[uwsgi]
http11-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
master = true
processes = 1
threads = 4
"""


@pytest.fixture(scope="module")
def server(volumes, tmp_path_factory):
    with ours(INI, tmp_path_factory.mktemp("framing")).start() as srv:
        yield srv


def read_reply(sock: socket.socket) -> tuple:
    """One reply framed by its Content-Length (None: no Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed inside the head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = headers.get("Content-Length")
    if length is None:
        return lines[0], headers, None
    while len(body) < int(length):
        chunk = sock.recv(4096)
        assert chunk, "connection closed inside the body"
        body += chunk
    return lines[0], headers, body


@pytest.mark.parametrize("method, target, code, text", [
    ("GET", "/no-such-file.txt", "404", b"Not Found"),
    ("GET", "/%00", "400", b"Bad Request"),
    ("DELETE", "/no-such-file.txt", "405", b"Method Not Allowed"),
])
def test_not_found_on_http11_socket_without_content_length(server, method, target, code, text):
    """A 404 (like every error page) had no Content-Length: on http11-socket uWSGI
    keeps the connection open, so a client reading to the end of the body waited
    for the socket timeout (4 s) on each one. Each error page is framed now."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body = read_reply(sock)
    assert status.split(" ", 2)[1] == code, status
    assert body == text, f"not framed by Content-Length: {headers}"
