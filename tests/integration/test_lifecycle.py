"""Stop and reload with three mounts: quick, and nothing left behind.

``glfs_fini`` takes about 10 s per handle; uwsgi-gluster never calls it. These
tests bound stop (SIGINT to the master) and reload (SIGHUP to the master, which
re-execs the launcher through pyuwsgi) well under that: a functional check that
the known 10 s hang (times 3 mounts, times 2 workers) is not on these paths, not
a speed benchmark. After stop, no process of the server's session survives.
"""

from __future__ import annotations

import os
import signal
import time

from netfaults import wait_for
from support import ours, processes

INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
glusterfs-mount = mountpoint=/foo,volume=unbit002,server=127.0.0.1:0
glusterfs-mount = mountpoint=/bar,volume=unbit003,server=127.0.0.1:0
route = ^/(foo|bar)(/.*)$ setscriptname:/$1
route = ^/(foo|bar)(/.*)$ setpathinfo:$2
master = true
processes = 2
threads = 4
"""

STOP_BOUND = 5.0
RELOAD_BOUND = 8.0


def session_pids(sid: int):
    """PIDs of live (non-zombie) processes whose session id is ``sid``."""
    return [pid for pid, state, _ppid, session in processes() if state != "Z" and session == sid]


def children(pid: int):
    return [p for p in session_pids(pid) if p != pid]


def all_mounts_serve(server) -> bool:
    try:
        return [server.get(f"{m}/whoami.txt").body for m in ("", "/foo", "/bar")] == [
            b"unbit001", b"unbit002", b"unbit003"]
    except OSError:
        return False


def test_reload_and_stop_are_quick_and_leave_nothing(volumes, tmp_path, report):
    server = ours(INI, tmp_path).start()
    try:
        master = server.proc.pid
        assert all_mounts_serve(server), server.log()
        old_workers = children(master)
        assert len(old_workers) == 2, (old_workers, server.log())
        # both workers past their start-up (every mount connected): a SIGHUP that met
        # worker 2 still connecting once left the reload waiting for 30 s (CI, one run in
        # many; see the session note), which this test is not about
        assert wait_for(lambda: server.log().count(" connected to 127.0.0.1:24007") >= 6, timeout=30)

        t0 = time.monotonic()
        os.kill(master, signal.SIGHUP)
        reload_time = wait_for(lambda: (set(children(master)).isdisjoint(old_workers)
                                        and len(children(master)) == 2 and all_mounts_serve(server)),
                               timeout=30, interval=0.05)
        assert reload_time is not None, f"no reload within 30 s:\n{server.log()}"
        assert server.proc.poll() is None and "gracefully (RE)spawned uWSGI master process" in server.log()
        new_workers = children(master)

        t0 = time.monotonic()
        os.kill(master, signal.SIGINT)
        code = server.proc.wait(30)
        stop_time = time.monotonic() - t0
        left = session_pids(master)
        time.sleep(0.5)
        left_later = session_pids(master)
    finally:
        server.stop()
    report(f"3 mounts, 2 workers: reload (SIGHUP) {reload_time:.2f} s, stop (SIGINT) {stop_time:.2f} s, "
           f"exit {code}, left behind {left_later}", reload_s=round(reload_time, 2), stop_s=round(stop_time, 2))
    assert reload_time < RELOAD_BOUND, server.log()
    assert stop_time < STOP_BOUND, server.log()
    assert left == [] and left_later == [], (left, left_later, old_workers, new_workers)
