"""Fixtures for the build tests: ./uwsgi from the cached build, servers, the test user."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from buildsupport import REPO, TEST_USER, build, stop


@pytest.fixture(scope="session")
def uwsgi_bin() -> Path:
    out = REPO / "uwsgi"
    proc = build(out)
    assert proc.returncode == 0, proc.stderr
    return out


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
