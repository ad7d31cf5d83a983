"""Fixtures for the build tests: ./uwsgi from the cached build, free ports, processes."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def uwsgi_bin() -> Path:
    out = REPO / "uwsgi"
    proc = build(out)
    assert proc.returncode == 0, proc.stderr
    return out


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


def wait_children(pid: int, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(pid)
        if kids:
            return kids
        time.sleep(0.1)
    raise AssertionError(f"process {pid} has no children after {timeout}s")


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


@pytest.fixture
def server(tmp_path):
    """Start a command with an ini; stopped (by its pid) at teardown."""
    started = []

    def start(cmd, ini_text: str, ini_dir=None, **kw):
        ini = (ini_dir or tmp_path) / "test.ini"
        ini.write_text(ini_text)
        ini.chmod(0o644)
        log = open(tmp_path / "server.log", "w")
        proc = subprocess.Popen([*map(str, cmd), "--ini", str(ini)], stdout=log, stderr=subprocess.STDOUT,
                                cwd=ini_dir or tmp_path, **kw)
        log.close()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop(proc)


def log_text(tmp_path) -> str:
    path = tmp_path / "server.log"
    return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def public_dir():
    """A directory any user can read (pytest's tmp_path is root-only)."""
    import shutil
    import tempfile
    path = Path(tempfile.mkdtemp(prefix="uwsgi-gluster-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def test_user():
    """A system user for the cap tests, created once (idempotent)."""
    if os.getuid() != 0:
        pytest.skip("needs root to create a user and switch to it")
    if subprocess.run(["id", "-u", TEST_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
                       check=False, capture_output=True)
    proc = subprocess.run(["id", "-u", TEST_USER], capture_output=True, text=True, check=True)
    gid = subprocess.run(["id", "-g", TEST_USER], capture_output=True, text=True, check=True)
    return TEST_USER, int(proc.stdout), int(gid.stdout)
