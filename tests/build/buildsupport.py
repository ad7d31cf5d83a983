"""Helpers for the build tests (a module of its own: `from conftest import` is
ambiguous when several test directories have a conftest.py)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILDER = REPO / "scripts" / "uwsgi_build.py"
TEST_USER = "uwsgi-gluster-test"


def build(output: Path, env=None, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the builder (a cached build only relinks: about a second)."""
    return subprocess.run([sys.executable, str(BUILDER), "build", "--output", str(output)],
                          env=env, capture_output=True, text=True, timeout=timeout)


def free_port(low: int = 0) -> int:
    if low:
        for port in range(low, 1024):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        pytest.skip("no free privileged port")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout}s")


def children(pid: int) -> list:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def wait_worker(tmp_path, proc: subprocess.Popen, number: int = 1, timeout: float = 20) -> int:
    """The PID of uWSGI worker `number`, from the master's "spawned uWSGI worker" line.

    Not the master's first child: before it forks a worker, the master runs short-lived
    children of its own (ctypes.util.find_library forks `ldconfig -p`)."""
    pattern = re.compile(rf"spawned uWSGI worker {number} \(pid: (\d+)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pattern.search(log_text(tmp_path))
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {log_text(tmp_path)}")
        time.sleep(0.1)
    raise AssertionError(f"no worker {number} after {timeout}s: {log_text(tmp_path)}")


def proc_status(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def log_text(tmp_path) -> str:
    path = tmp_path / "server.log"
    return path.read_text(errors="replace") if path.exists() else ""
