"""cap = net_bind_service with uid/gid: ./uwsgi's own --cap, and uwsgi_gluster.caps for the launcher."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from buildsupport import children, free_port, log_text, proc_status, wait_port

from uwsgi_gluster import caps

NET_BIND_SERVICE = 1 << 10


def _can_read_interpreter(user: str) -> bool:
    probe = os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "os.py")
    return subprocess.run(["runuser", "-u", user, "--", "test", "-r", probe]).returncode == 0


def _switched_workers(master_pid: int, uid: int, count: int, timeout: float = 20) -> list:
    """The master's children once ``count`` of them run as ``uid``.

    A worker forks as root and switches user just after, so a look right after
    the fork can still see uid 0; after ``timeout`` the children are returned
    as they are and the assertions say what is wrong."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(master_pid)
        try:
            if len(kids) >= count and all(proc_status(k)["Uid"].split()[0] == str(uid) for k in kids):
                return kids
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    return children(master_pid)


def _assert_worker(pid: int, uid: int, gid: int) -> dict:
    st = proc_status(pid)
    assert st["Uid"].split() == [str(uid)] * 4, st["Uid"]
    assert st["Gid"].split() == [str(gid)] * 4, st["Gid"]
    assert int(st["CapEff"], 16) == NET_BIND_SERVICE, st["CapEff"]
    assert int(st["CapPrm"], 16) == NET_BIND_SERVICE, st["CapPrm"]
    return st


def test_built_uwsgi_cap(uwsgi_bin, test_user, server, tmp_path):
    user, uid, gid = test_user
    port = free_port()
    ini = (f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmaster = true\nprocesses = 2\n"
           f"uid = {user}\ngid = {user}\ncap = net_bind_service\n")
    if not _can_read_interpreter(user):
        # The embedded Python is initialised after the switch to uid; when the
        # interpreter lives where that user cannot read (pyenv under /root), keep
        # the master as root: workers still switch and take the capability.
        ini += "master-as-root = true\n"
    master = server([uwsgi_bin], ini)
    wait_port(port, master)
    workers = _switched_workers(master.pid, uid, 2)
    assert len(workers) == 2, log_text(tmp_path)
    for pid in workers:
        _assert_worker(pid, uid, gid)
    assert "setting capability net_bind_service [10]" in log_text(tmp_path)


def _get(port: int, path: str) -> bytes:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as reply:
        return reply.read()


def test_launcher_cap_binds_privileged_port_and_serves(volumes, test_user, server, tmp_path, public_dir):
    """The real ``uwsgi-gluster`` console script with ``cap``: master and worker run as
    uid/gid holding only CAP_NET_BIND_SERVICE, on a port below 1024, and serve a file.

    The switch happens at uWSGI's asap hook, after it read the config; the
    plugin's own modules are imported after it, so they must be readable by
    the user."""
    user, uid, gid = test_user
    port = free_port(low=600)  # < 1024: only CAP_NET_BIND_SERVICE lets uid bind it
    ini = (f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nhttp-socket-modifier1 = 27\n"
           "glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0\n"
           f"master = true\nprocesses = 1\nthreads = 4\nuid = {user}\ngid = {user}\ncap = net_bind_service\n")
    launcher = os.path.join(os.path.dirname(sys.executable), "uwsgi-gluster")
    master = server([launcher], ini, ini_dir=public_dir)
    wait_port(port, master)
    st = _assert_worker(master.pid, uid, gid)  # the launcher process is uWSGI's master
    assert int(st["CapAmb"], 16) == NET_BIND_SERVICE
    for pid in _switched_workers(master.pid, uid, 1):
        _assert_worker(pid, uid, gid)
    assert _get(port, "/hello.txt") == b"Hello, Gluster"
    assert "[glusterfs] cap #1: running as uid" in log_text(tmp_path)


# -- refusing, naming the option -------------------------------------------

def _options(text):
    """uWSGI's resolved (key, value) pairs for ``key = value`` lines."""
    return [tuple(part.strip() for part in line.split("=", 1)) for line in text.strip().splitlines()]


def test_no_cap_no_change():
    options = _options("uid = nobody")
    assert caps.cap_request(options) is None
    assert caps.apply_caps(options) is None


def test_cap_request_reads_the_resolved_options_last_value_wins():
    options = _options("uid = 0\ngid = 0\ncap = net_bind_service,sys_nice")
    req = caps.cap_request(options)
    assert req.caps == (10, 23) and req.uid == 0 and req.gid == 0
    assert req.where == "cap #1"
    req = caps.cap_request(options + [("cap", "12")])  # e.g. --cap on the command line, after the ini
    assert req.caps == (12,) and req.where == "cap #2"


def test_unknown_capability_names_the_option():
    with pytest.raises(caps.CapError) as err:
        caps.cap_request(_options("cap = net_bind_servce"))
    assert "cap #1: unknown capability 'net_bind_servce'" in str(err.value)


def test_cap_with_chroot_is_refused():
    with pytest.raises(caps.CapError) as err:
        caps.cap_request(_options("chroot = /srv\ncap = net_bind_service"))
    assert "cap #1: " in str(err.value) and "chroot (chroot #1)" in str(err.value)


def test_cap_needs_root(monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    with pytest.raises(caps.CapError, match="cap #1: needs uwsgi-gluster started as root"):
        caps.apply_caps(_options("cap = net_bind_service"))


def test_check_cap_supported_alias():
    assert caps.check_cap_supported is caps.cap_request
