"""Helpers for tests that run real uWSGI processes against real volumes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
UWSGI_GLUSTER = str(BIN / "uwsgi-gluster")
NATIVE_UWSGI = "/usr/bin/uwsgi"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
            timeout: float = 30, host: str = "127.0.0.1") -> Reply:
    """One HTTP/1.0-style request on its own connection; ``target`` is sent as-is."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
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
    port: int = field(default_factory=free_port)
    proc: Optional[subprocess.Popen] = None

    @property
    def ini_path(self) -> Path:
        return self.workdir / f"{self.name}.ini"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, extra_args: Sequence[str] = (), wait: bool = True, timeout: float = 60) -> "Server":
        self.ini_path.write_text(self.ini_text.replace("{port}", str(self.port)))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([*self.command, "--ini", str(self.ini_path), *extra_args],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                request(self.port, "HEAD", "/__ready__", timeout=5)
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{self.name} not ready after {timeout} s:\n{self.log()}")

    def get(self, path: str, headers=None, method: str = "GET") -> Reply:
        return request(self.port, method, url_path(path), headers)

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


def ours(ini_text: str, workdir: Path, name: str = "ours") -> Server:
    return Server([UWSGI_GLUSTER], ini_text, workdir, name)


def native(ini_text: str, workdir: Path, name: str = "native") -> Server:
    return Server([NATIVE_UWSGI], ini_text, workdir, name)
