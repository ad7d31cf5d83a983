"""Emperor vassals of both launchers serve, and `touch` reloads them with the new
config; pyuwsgi's `uwsgi` script name runs our launcher (issue 9)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from configs import BASE, BUILT_UWSGI, mount

from support import BIN, UWSGI_GLUSTER, free_port, request


def wait_body(port: int, path: str, want: bytes, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"emperor exited {proc.returncode}:\n{log.read_text()}"
        try:
            reply = request(port, "GET", path, timeout=5)
            last = (reply.status, reply.body)
            if last == (200, want):
                return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{path} never answered {want!r} (last: {last!r}):\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("launcher", [UWSGI_GLUSTER, BUILT_UWSGI], ids=["uwsgi-gluster", "./uwsgi"])
def test_emperor_vassals_serve_and_touch_reloads_them(volumes, tmp_path, launcher):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    vassal = vassals / "v1.ini"
    text = BASE.replace("{port}", str(port)) + "master = true\nglusterfs-mount = %s\n"
    vassal.write_text(text % mount("/", "unbit002"))
    log = tmp_path / "emperor.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([launcher, "--emperor", str(vassals)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_body(port, "/whoami.txt", b"unbit002", proc, log)
        vassal.write_text(text % mount("/", "unbit003"))
        stamp = time.time() + 2
        os.utime(vassal, (stamp, stamp))  # touch: the emperor reloads the vassal
        wait_body(port, "/whoami.txt", b"unbit003", proc, log)
        assert "reload the uwsgi instance v1.ini" in log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_uwsgi_script_after_pip_install_is_our_launcher(volumes, tmp_path):
    """pyuwsgi installs a `uwsgi` script that knows nothing of glusterfs (it
    answered every request with an empty reply); ours replaces it."""
    script = BIN / "uwsgi"
    assert "uwsgi_gluster.launcher" in script.read_text()
    port = free_port()
    ini = tmp_path / "gluster.ini"
    ini.write_text(BASE.replace("{port}", str(port)) + f"glusterfs-mount = {mount('/', 'unbit001')}\n")
    log = tmp_path / "uwsgi.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(script), "--ini", str(ini)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_body(port, "/whoami.txt", b"unbit001", proc, log)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
