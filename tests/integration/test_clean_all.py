"""`make clean-all`: what it would remove by default (dry run only: the machine is shared),
and a real run of scripts/clean-machine on throw-away names."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support import ROOT

CLEAN = str(ROOT / "scripts" / "clean-machine")
GLUSTER_ENV = str(ROOT / "scripts" / "gluster-env")
THROW_AWAY_VOLUME = "hygienevol"
THROW_AWAY_USER = "uwsgi-gluster-hygiene"

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="volumes and users need root")


def volume_info(name: str) -> subprocess.CompletedProcess:
    return subprocess.run(["gluster", "--mode=script", "volume", "info", name],
                          capture_output=True, text=True, timeout=60)


def user_exists(name: str) -> bool:
    return subprocess.run(["id", "-u", name], capture_output=True).returncode == 0


def test_clean_all_dry_run_names_everything_run_and_test_set_up_and_changes_nothing(volumes):
    done = subprocess.run(["make", "-s", "-C", str(ROOT), f"VENV={sys.prefix}", "clean-all", "DRY_RUN=1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = done.stderr
    for name in ("demo", "unbit001", "unbit002", "unbit003", "bench"):
        if volume_info(name).returncode == 0:
            assert f"would run: gluster --mode=script volume delete {name}\n" in said
        if Path("/bricks", name).exists():
            assert f"would run: rm -rf -- /bricks/{name}\n" in said
    assert "would run: " + str(ROOT / "scripts" / "gluster-cluster") + " down\n" in said
    if user_exists("uwsgi-gluster-test"):
        assert "would run: userdel uwsgi-gluster-test\n" in said
    cache = os.environ.get("UWSGI_GLUSTER_CACHE", "/var/cache/uwsgi-gluster")
    if Path(cache).exists():
        assert f"would run: rm -rf -- {cache}\n" in said
    debs = "".join(f" {deb.name}" for deb in sorted(ROOT.glob("uwsgi-gluster_*.deb")))  # make deb's
    assert f"would run: rm -rf {sys.prefix} build dist uwsgi bench-results uwsgi_gluster.egg-info{debs}\n" in said
    assert "left running: glusterd" in said
    # nothing happened
    assert "Status: Started" in volume_info("unbit001").stdout
    assert Path(sys.prefix, "bin", "python").exists()


def test_clean_machine_removes_a_throw_away_volume_brick_user_and_cache(tmp_path):
    subprocess.run([GLUSTER_ENV, "volume", THROW_AWAY_VOLUME], check=True, capture_output=True)
    assert Path("/bricks", THROW_AWAY_VOLUME).is_dir()
    if not user_exists(THROW_AWAY_USER):
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        THROW_AWAY_USER], check=True)
    cache = tmp_path / "cache"
    (cache / "0123abcd").mkdir(parents=True)
    (cache / "0123abcd" / "uwsgi").write_bytes(b"x")
    env = {**os.environ, "CLEAN_VOLUMES": THROW_AWAY_VOLUME, "CLEAN_CLUSTER": "no",
           "CLEAN_USER": THROW_AWAY_USER, "UWSGI_GLUSTER_CACHE": str(cache)}
    done = subprocess.run([CLEAN], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert volume_info(THROW_AWAY_VOLUME).returncode != 0
    assert not Path("/bricks", THROW_AWAY_VOLUME).exists()
    assert not user_exists(THROW_AWAY_USER)
    assert not cache.exists()
    assert "Status: Started" in volume_info("unbit001").stdout  # the others' volumes stay

    again = subprocess.run([CLEAN], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and f"volume {THROW_AWAY_VOLUME}: none" in again.stderr


def test_clean_machine_skips_a_volume_it_did_not_make(tmp_path):
    name = THROW_AWAY_VOLUME + "2"
    brick = tmp_path / "elsewhere"
    brick.mkdir()
    host = socket.gethostname()
    subprocess.run([GLUSTER_ENV, "up"], check=True, capture_output=True)
    subprocess.run(["gluster", "--mode=script", "volume", "create", name, f"{host}:{brick}", "force"],
                   check=True, capture_output=True, timeout=60)
    try:
        env = {**os.environ, "CLEAN_VOLUMES": name, "CLEAN_CLUSTER": "no", "CLEAN_USER": "",
               "UWSGI_GLUSTER_CACHE": str(tmp_path / "no-cache")}
        done = subprocess.run([CLEAN], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert f"volume {name}: skipped" in done.stderr
        assert volume_info(name).returncode == 0 and brick.is_dir()
    finally:
        subprocess.run(["gluster", "--mode=script", "volume", "delete", name], capture_output=True, timeout=60)
