"""Failed connect attempts release their libgfapi handles (issue 10, item 4).

Regression: every failed attempt (server down, or one that accepts and never
answers) left its ``glfs_t`` behind, +6-7 threads, +2-3 fds and ~0.5 MB each,
never reclaimed; at the fd limit the reconnect thread died with EMFILE and the
worker never served again. Real libgfapi against the local glusterd: a
:class:`Volume` with a short deadline and retry interval goes through 200
failed attempts, then the server appears (a forwarder to glusterd on that port).
"""

from __future__ import annotations

import errno
import os
import re
import time

import pytest

from netfaults import Forwarder, HungServer, wait_for
from support import free_port, ours, processes, threads_and_fds
from uwsgi_gluster import gfapi, volume
from uwsgi_gluster.config import parse_mount
from uwsgi_gluster.volume import Unavailable, Volume

ATTEMPTS = 200
GLUSTERD = ("127.0.0.1", 24007)


def _volume(port: int, lines: list) -> Volume:
    spec = parse_mount(f"mountpoint=/,volume=unbit001,server=127.0.0.1:{port}")
    return Volume(spec, connect_timeout=0.3, log=lines.append, worker_id=lambda: 1, retry_interval=0.01)


def _attempts(lines: list) -> int:
    return sum(1 for line in lines if line.startswith("try connect"))


def _fail(vol: Volume, until, timeout: float = 240) -> None:
    """Keep asking for the handle (each ask may start a round) until ``until()``."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"only {vol.rounds} rounds in {timeout} s"
        with pytest.raises(Unavailable):
            vol.handle()
        time.sleep(0.005)


def _serves(vol: Volume, port: int) -> gfapi.Stat:
    with Forwarder(port, GLUSTERD):
        def connected():
            try:
                return vol.handle()
            except Unavailable:
                return None
        assert wait_for(connected, timeout=60) is not None, "no connect after the server came back"
        return gfapi.stat(vol.handle(), "/hello.txt")


def _settled(start, slack: int, timeout: float = 60):
    """Thread/fd counts once back within ``slack`` of ``start`` (or the last seen)."""
    seen = [threads_and_fds(os.getpid())]

    def back():
        seen.append(threads_and_fds(os.getpid()))
        return seen[-1][0] <= start[0] + slack and seen[-1][1] <= start[1] + slack
    wait_for(back, timeout=timeout)
    return seen[-1]


#: what one connected handle holds at most (libgfapi's threads and sockets for one
#: glfs_t), beyond the baseline; a leak of the failed attempts' handles is
#: +6-7 threads and +2-3 fds per attempt, hundreds here
CONNECTED = (15, 10)


def _released(vol: Volume, baseline):
    """Connected: the loop makes no more attempts, and every handle of the failed
    and hung ones is released; then the thread/fd counts once settled."""
    assert wait_for(lambda: vol.pending_handles == 0, timeout=60) is not None, vol.pending_handles
    return _settled(baseline, slack=max(CONNECTED))


@pytest.fixture
def baseline(volumes):
    """Counts after libgfapi's once-per-process threads exist (one failed init)."""
    fs = gfapi.new("unbit001")
    gfapi.set_volfile_server(fs, "tcp", "127.0.0.1", free_port())
    with pytest.raises(OSError):
        gfapi.init(fs)
    gfapi.fini(fs)
    return threads_and_fds(os.getpid())


def test_failed_connects_to_a_closed_port_leak_nothing_and_serving_resumes(baseline, report):
    port, lines = free_port(), []
    vol = _volume(port, lines)
    _fail(vol, lambda: _attempts(lines) >= ATTEMPTS)
    during = threads_and_fds(os.getpid())
    assert vol.pending_handles <= volume.MAX_PENDING_HANDLES
    st = _serves(vol, port)
    assert st.st_size == len(b"Hello, Gluster")
    assert any("connected to 127.0.0.1" in line for line in lines)
    after = _released(vol, baseline)
    report(f"{_attempts(lines)} failed attempts ({vol.rounds} rounds) against a closed port: threads/fds "
           f"{baseline} at start, {during} during, {after} once connected")
    assert after[0] <= baseline[0] + CONNECTED[0] and after[1] <= baseline[1] + CONNECTED[1], \
        (baseline, during, after)


def test_failed_connects_to_a_hung_server_leak_nothing_and_serving_resumes(baseline, report):
    with HungServer() as hung:
        port, lines = hung.port, []
        vol = _volume(port, lines)
        _fail(vol, lambda: vol.rounds >= ATTEMPTS)
        during = threads_and_fds(os.getpid())
        attempts = _attempts(lines)
        # the hung attempts are bounded: a few handles alive, not one per round
        assert attempts <= volume.MAX_PENDING_HANDLES, lines[-5:]
        assert during[0] <= baseline[0] + 15 * volume.MAX_PENDING_HANDLES, (baseline, during)
    # the server went away: its connections closed, the hung glfs_init calls return;
    # the reconnect loop, running by itself, keeps trying the closed port meanwhile
    st = _serves(vol, port)
    assert st.st_size == len(b"Hello, Gluster")
    after = _released(vol, baseline)
    report(f"{vol.rounds} rounds against a server that never answers: threads/fds {baseline} at start, "
           f"{during} during ({attempts} handles made), {after} once connected")
    assert after[0] <= baseline[0] + CONNECTED[0] and after[1] <= baseline[1] + CONNECTED[1], \
        (baseline, during, after)


def test_reconnect_loop_survives_emfile_and_serving_resumes(volumes, monkeypatch):
    """Any exception in a round (here glfs_new failing with EMFILE, as at the fd
    limit) is logged in one line and retried; the loop never dies."""
    real_new, failures = gfapi.new, []

    def new(name):
        if len(failures) < 5:
            failures.append(name)
            raise gfapi.GlusterError(errno.EMFILE, "glfs_new: Too many open files")
        return real_new(name)

    monkeypatch.setattr(gfapi, "new", new)
    lines: list = []
    spec = parse_mount("mountpoint=/,volume=unbit001,server=127.0.0.1:0")
    vol = Volume(spec, connect_timeout=5, log=lines.append, worker_id=lambda: 1, retry_interval=0.01)

    def connected():
        try:
            return vol.handle()
        except Unavailable:
            return None
    assert wait_for(connected, timeout=60) is not None, lines
    assert len(failures) == 5
    errors = [line for line in lines if "Too many open files" in line]
    assert len(errors) == 5 and all("retrying in" in line for line in errors), lines
    assert gfapi.stat(vol.handle(), "/hello.txt").st_size == len(b"Hello, Gluster")


def test_handle_reaper_releases_each_handle_once_in_order():
    released, done = [], []
    reaper = volume.HandleReaper(fini=released.append, log=lambda _m: None)
    for fs in (11, 12, 13):
        reaper.release(fs, lambda fs=fs: done.append(fs))
    assert wait_for(lambda: len(done) == 3 and reaper.pending == 0, timeout=10) is not None
    assert released == done == [11, 12, 13]



UWSGI_INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:%(port)d
glusterfs-timeout = 2
master = true
processes = 1
threads = 4
"""


def test_uwsgi_worker_keeps_its_threads_and_fds_through_failed_rounds(volumes, tmp_path, report):
    """The same in a real uWSGI worker (its rounds are 2 s apart, so fewer of
    them): threads and fds stay put while no server answers, and it serves
    as soon as one does."""
    port = free_port()
    with ours(UWSGI_INI % {"port": port}, tmp_path).start(timeout=30) as server:
        worker = worker_pid(server.proc.pid)

        def rounds() -> int:
            return len(re.findall(r"worker 1: no server answered", server.log()))
        assert server.get("/hello.txt").status == 503
        start = threads_and_fds(worker)
        target = rounds() + 10
        while rounds() < target:  # the worker's reconnect loop runs a round every 2 s
            assert server.get("/hello.txt").status == 503
            time.sleep(0.2)
        during = _settled_pid(worker, start, slack=3)
        with Forwarder(port, GLUSTERD):
            assert wait_for(lambda: server.get("/hello.txt").status == 200, timeout=60) is not None, server.log()
        report(f"uWSGI worker, {rounds()} failed rounds: threads/fds {start} -> {during}, then served")
    assert during[0] <= start[0] + 3 and during[1] <= start[1] + 3, (start, during)


def worker_pid(master: int) -> int:
    pids = [pid for pid, _state, ppid, _sid in processes() if ppid == master]
    assert len(pids) == 1, pids
    return pids[0]


def _settled_pid(pid: int, start, slack: int, timeout: float = 30):
    seen = [threads_and_fds(pid)]

    def back():
        seen.append(threads_and_fds(pid))
        return seen[-1][0] <= start[0] + slack and seen[-1][1] <= start[1] + slack
    wait_for(back, timeout=timeout)
    return seen[-1]
