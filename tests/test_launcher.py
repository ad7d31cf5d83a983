"""The console script: argv handling and refusing bad configurations."""

import subprocess

import pytest

from support import UWSGI_GLUSTER
from uwsgi_gluster.launcher import DEFAULT_ARGS, PLUGIN_ARGS, uwsgi_argv


def test_uwsgi_argv_drops_our_options_and_adds_the_plugin():
    argv = ["--ini", "a.ini", "--glusterfs-mount", "mountpoint=/,volume=v,server=h:0",
            "--glusterfs-timeout=5", "--threads", "4"]
    assert uwsgi_argv(argv) == [*DEFAULT_ARGS, "--ini", "a.ini", "--threads", "4", *PLUGIN_ARGS]


@pytest.mark.parametrize("line,problem", [
    ("glusterfs-mount = mountpoint=/,server=127.0.0.1:0", "missing volume"),
    ("glusterfs-mount = mountpoint=/,volume=v,server=127.0.0.1:0,typo=1", "unknown key 'typo'"),
    ("glusterfs-mount = mountpoint=/,volume=v,server=127.0.0.1:x", "bad port 'x'"),
    ("glusterfs-mount = volume=v,server=127.0.0.1:0", "missing mountpoint"),
    ("glusterfs-mount = mountpoint=/,volume=v", "missing server (or volfile)"),
])
def test_bad_ini_stops_start_up_with_file_line_and_problem(tmp_path, line, problem):
    ini = tmp_path / "bad.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:0\nhttp-socket-modifier1 = 27\n{line}\n")
    done = subprocess.run([UWSGI_GLUSTER, "--ini", str(ini)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{ini} line 4: glusterfs-mount:" in done.stderr
    assert problem in done.stderr
    assert "spawned uWSGI" not in done.stdout + done.stderr


def test_no_mount_at_all_is_refused(tmp_path):
    ini = tmp_path / "none.ini"
    ini.write_text("[uwsgi]\nhttp-socket = 127.0.0.1:0\n")
    done = subprocess.run([UWSGI_GLUSTER, "--ini", str(ini)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no glusterfs-mount given" in done.stderr


def test_bad_command_line_mount_names_the_argument():
    done = subprocess.run([UWSGI_GLUSTER, "--glusterfs-mount", "mountpoint=/"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "command line argument 2 (--glusterfs-mount): glusterfs-mount:" in done.stderr


def test_log_finds_uwsgi_created_after_import(monkeypatch, capsys):
    """Regression: the launcher imports log.py before pyuwsgi creates `uwsgi`;
    worker ids and uWSGI's logger must still be used once it exists."""
    import sys
    import types

    from uwsgi_gluster import log

    assert log.worker_id() == 0
    lines = []
    fake = types.SimpleNamespace(worker_id=lambda: 3, log=lines.append)
    monkeypatch.setitem(sys.modules, "uwsgi", fake)
    log.log(f"worker {log.worker_id()} connected")
    assert lines == ["[glusterfs] worker 3 connected"]
