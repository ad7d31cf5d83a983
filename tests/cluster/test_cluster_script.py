"""The cluster script itself: restarting nodes from the state a killed node leaves."""

from __future__ import annotations

import subprocess


def test_brick_pidfile_naming_a_reused_pid(cluster):
    """A killed brick's pidfile names a PID that another process has since taken.

    glusterd trusts any live PID there ("discovered already-running brick") and never
    starts the brick; ``start-node`` (and ``up``) must still bring it online.
    """
    cluster.kill_node(3)
    pidfiles = sorted((cluster.state_dir / "node3" / "run" / "vols").rglob("*.pid"))
    assert pidfiles, "node3 left no brick pidfile to reuse"
    squatter = subprocess.Popen(["sleep", "600"])
    try:
        for pidfile in pidfiles:
            pidfile.write_text(f"{squatter.pid}\n")
        log = cluster.run("start-node", "3")  # raises unless node3's brick is online
        assert "removing stale pidfile" in log
        assert squatter.poll() is None, "the process holding the reused PID was killed"
    finally:
        squatter.kill()
        squatter.wait()
