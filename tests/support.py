"""Helpers for tests that run real uWSGI processes against real volumes."""

from __future__ import annotations

import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
UWSGI_GLUSTER = str(BIN / "uwsgi-gluster")
NATIVE_UWSGI = "/usr/bin/uwsgi"


CLONE_NEWNET = 0x40000000


def netns_socket(netns: Optional[str] = None) -> socket.socket:
    """A TCP socket of network namespace ``netns`` (the root one when None).

    A socket belongs to the namespace of the thread that created it, and
    ``setns`` switches only the calling thread: a short-lived helper thread
    enters the namespace and makes the socket, the caller's threads stay where
    they are. Raises if the namespace cannot be entered (never falls back to
    the root namespace).
    """
    if netns is None:
        return socket.socket()
    box: dict = {}

    def enter() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({netns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = socket.socket()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=enter, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


def processes():
    """Yield ``(pid, state, ppid, session_id)`` of every live process in /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry), fields[0], int(fields[1]), int(fields[3])


def threads_and_fds(pid: int) -> Tuple[int, int]:
    """``(threads, open fds)`` of process ``pid``, from /proc."""
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def free_port(netns: Optional[str] = None) -> int:
    with netns_socket(netns) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NetnsHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection whose socket lives in network namespace ``netns``."""

    def __init__(self, host, port, netns: Optional[str] = None, timeout: float = 30):
        super().__init__(host, port, timeout=timeout)
        self.netns = netns

    def connect(self):
        sock = netns_socket(self.netns)
        try:
            sock.settimeout(self.timeout)
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


@dataclass
class Reply:
    status: int
    headers: List[tuple]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> List[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def request(port: int, method: str, target: str, headers: Optional[Dict[str, str]] = None,
            timeout: float = 30, host: str = "127.0.0.1", netns: Optional[str] = None) -> Reply:
    """One HTTP/1.0-style request on its own connection; ``target`` is sent as-is.
    With ``netns`` the connection is made from that network namespace."""
    conn = NetnsHTTPConnection(host, port, netns=netns, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"{host}:{port}")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return Reply(resp.status, resp.getheaders(), body)
    finally:
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 30) -> bytes:
    """Send raw bytes, return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def url_path(path: str) -> str:
    return quote(path, safe="/")


@dataclass
class Server:
    """A uWSGI process (ours or native) started from ini text."""

    command: Sequence[str]
    ini_text: str
    workdir: Path
    name: str = "server"
    port: int = 0
    proc: Optional[subprocess.Popen] = None
    #: run the server inside this network namespace (``ip netns exec``; it
    #: execs, so ``proc`` is still the uWSGI master) and talk to it from there
    netns: Optional[str] = None
    #: variables added to (or, with value None, removed from) this process's
    #: environment for the server
    env: Optional[Dict[str, Optional[str]]] = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port(self.netns)

    @property
    def ini_path(self) -> Path:
        return self.workdir / f"{self.name}.ini"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, extra_args: Sequence[str] = (), wait: bool = True, timeout: float = 60) -> Server:
        self.ini_path.write_text(self.ini_text.replace("{port}", str(self.port)))
        with open(self.log_path, "wb") as log:
            prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
            self.proc = subprocess.Popen([*prefix, *self.command, "--ini", str(self.ini_path), *extra_args],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         env=self.environment(), start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def environment(self) -> Optional[Dict[str, str]]:
        if not self.env:
            return None
        env = dict(os.environ)
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                request(self.port, "HEAD", "/__ready__", timeout=5, netns=self.netns)
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.log()}")

    def get(self, path: str, headers=None, method: str = "GET") -> Reply:
        return request(self.port, method, url_path(path), headers, netns=self.netns)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def ours(ini_text: str, workdir: Path, name: str = "ours", netns: Optional[str] = None) -> Server:
    return Server([UWSGI_GLUSTER], ini_text, workdir, name, netns=netns)


def native(ini_text: str, workdir: Path, name: str = "native") -> Server:
    return Server([NATIVE_UWSGI], ini_text, workdir, name)


def debian_ours(ini_text: str, workdir: Path, plugin_dir: Path, pythonpath: Sequence[Path],
                name: str = "debian-ours") -> Server:
    """Debian's own /usr/bin/uwsgi running the ini, with our glusterfs_plugin.so
    found first (in ``plugin_dir``) and ``uwsgi_gluster`` importable from
    ``pythonpath`` by Debian's python3 plugin."""
    env = {"UWSGI_PLUGIN_DIR": str(plugin_dir), "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    return Server([NATIVE_UWSGI], ini_text, workdir, name, env=env)


# -- comparing a response with the native plugin's ------------------------------

#: headers that must be the same as the native plugin's
COMPARED = ("Content-Type", "Content-Length", "Last-Modified")


def summary(reply: Reply):
    """What must be the same as the native plugin's: status, COMPARED headers, body.
    An error page's Content-Length is left out: native sends none (on http11-socket
    a client reading to the end then waits for the socket timeout), ours do
    (tests/integration/test_error_framing.py)."""
    compared = COMPARED if reply.status < 400 else tuple(n for n in COMPARED if n != "Content-Length")
    return reply.status, {name: reply.header(name) for name in compared}, reply.body


def without_error_length(raw: bytes) -> bytes:
    """A raw answer without the Content-Length line of an error page (see :func:`summary`)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if head[9:10] not in (b"4", b"5"):
        return raw
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length:")]
    return b"\r\n".join(lines) + sep + body


def open_download(port: int, path: str, timeout: float = 60) -> socket.socket:
    """A GET whose client takes nothing yet (small receive buffer: the server stays
    mid-body); the caller reads it (:func:`read_all`) and closes it."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    except BaseException:
        sock.close()
        raise
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until the server closes the connection."""
    chunks = []
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def download_while_it_shrinks(port: int, fs, path: str, size: int) -> Tuple[bytes, bytes]:
    """Write ``size`` bytes to ``path`` on the volume ``fs``, GET it with a small
    receive buffer and, once its 200 has started, truncate the file to ``b"tiny"``;
    returns the answer's head and body as received until the server closed."""
    from uwsgi_gluster.seeding import write_file

    write_file(fs, path, b"s" * size)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        received = sock.recv(4096)
        assert received.split(b" ", 2)[1] == b"200", received[:200]
        write_file(fs, path, b"tiny")  # truncated while we are not reading
        time.sleep(0.5)
        received += read_all(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def log_once_it_says(server: Server, text: str, timeout: float = 10) -> str:
    """The server's log once it contains ``text`` (or when ``timeout`` s have passed)."""
    deadline = time.monotonic() + timeout
    while text not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.log()
