"""Fixtures for tests against a real 3-node GlusterFS cluster (scripts/gluster-cluster).

``cluster`` (session) runs ``scripts/gluster-cluster up`` once and yields a
:class:`Cluster`. The suite is skipped only when network namespaces cannot be
made on this machine (not root, no ``ip``, or ``ip netns add`` refused); any
other failure of ``up`` is an error. The cluster stays up after the session
(the next one starts in ~1 s); ``make cluster-down`` removes it.

Every test using ``cluster`` gets its node faults undone afterwards: all links
healed, all nodes started, all bricks online (``restore``).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gluster-cluster"
CLIENT_HELPER = Path(__file__).resolve().parent / "gfapi_client.py"
_ACTIVE: list[Cluster] = []
STATE_DIR = Path(os.environ.get("UGC_STATE", "/var/lib/uwsgi-gluster-cluster"))


class ClusterError(RuntimeError):
    pass


class Cluster:
    nodes = ("10.77.0.1", "10.77.0.2", "10.77.0.3")
    hostnames = ("node1", "node2", "node3")
    client_ns = "ugc-client"
    client_ip = "10.77.0.10"
    volume = "rep3"
    glusterd_port = 24007
    script = SCRIPT
    state_dir = STATE_DIR

    def __init__(self) -> None:
        self.faulted: set[int] = set()

    # -- the script ----------------------------------------------------------
    def run(self, *args: str, timeout: float = 180) -> str:
        """Run ``scripts/gluster-cluster ARGS``; its log (stderr) on success."""
        proc = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
        if proc.returncode:
            raise ClusterError(f"gluster-cluster {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout}{proc.stderr}")
        return proc.stderr

    def up(self) -> str:
        return self.run("up")

    def status(self) -> str:
        return subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, timeout=60).stdout

    # -- faults --------------------------------------------------------------
    def kill_node(self, n: int) -> None:
        self.faulted.add(n)
        self.run("kill-node", str(n))

    def start_node(self, n: int) -> None:
        self.run("start-node", str(n))

    def cut_node(self, n: int) -> None:
        self.faulted.add(n)
        self.run("cut-node", str(n))

    def heal_node(self, n: int) -> None:
        self.run("heal-node", str(n))

    def restart_glusterd(self, n: int) -> None:
        self.faulted.add(n)
        self.run("restart-glusterd", str(n))

    def restore(self) -> None:
        """Heal every link and start every node (bricks online). ``up`` is exactly that."""
        self.up()
        self.faulted.clear()

    # -- client namespace ----------------------------------------------------
    def exec_client(self, args, **popen_kwargs) -> subprocess.Popen:
        """Start ``args`` in the client namespace; returns the Popen (caller waits)."""
        return subprocess.Popen([str(SCRIPT), "exec-client", *map(str, args)], **popen_kwargs)

    def run_client(self, args, timeout: float = 120, **run_kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPT), "exec-client", *map(str, args)], timeout=timeout, **run_kwargs)

    def gfapi_client(self, servers=None, log: str | os.PathLike = "/dev/null") -> GfapiClient:
        """A libgfapi client process in the client namespace, mounted on the volume."""
        return GfapiClient(self, servers or self.hostnames, str(log))

    def brick_path(self, n: int) -> Path:
        return STATE_DIR / "bricks" / f"node{n}" / self.volume


class GfapiClient:
    """Drives tests/cluster/gfapi_client.py over its JSON line protocol."""

    def __init__(self, cluster: Cluster, servers, log: str, mount_timeout: float = 60) -> None:
        args = [sys.executable, CLIENT_HELPER, "--volume", cluster.volume, "--log", log]
        for host in servers:
            args += ["--server", host]
        self.proc = cluster.exec_client(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            answer = self._answer(mount_timeout)
            if not answer["ok"]:
                raise ClusterError(f"mount failed: {answer}")
        except BaseException:
            self.close()
            raise

    def _answer(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise ClusterError(f"gfapi client gave no answer within {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise ClusterError(f"gfapi client exited ({self.proc.wait(5)})")
        return json.loads(line)

    def request(self, timeout: float = 60, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._answer(timeout)

    def write(self, path: str, data: bytes, timeout: float = 60) -> None:
        answer = self.request(timeout, op="write", path=path, data=base64.b64encode(data).decode())
        if not answer["ok"]:
            raise OSError(answer["errno"], answer["error"])

    def read(self, path: str, timeout: float = 60) -> bytes:
        answer = self.request(timeout, op="read", path=path)
        if not answer["ok"]:
            raise OSError(answer["errno"], answer["error"])
        return base64.b64decode(answer["data"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "exit"}\n')
                self.proc.stdin.flush()
            except OSError:
                pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self) -> GfapiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _netns_refusal() -> str | None:
    """Why network namespaces cannot be used here, or None if they can."""
    if os.geteuid() != 0:
        return "the cluster tests need root (network namespaces)"
    if shutil.which("ip") is None:
        return "the cluster tests need iproute2 ('ip' not found)"
    if os.path.exists(f"/run/netns/{Cluster.client_ns}"):
        entered = subprocess.run(["ip", "netns", "exec", Cluster.client_ns, "true"], capture_output=True, text=True)
        if entered.returncode == 0:
            return None
        if "No such file" not in entered.stderr:  # else: a stale entry, `up` recreates it
            return f"'ip netns exec' is not permitted on this machine: {entered.stderr.strip()}"
    probe = f"ugc-probe-{os.getpid()}"
    added = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if added.returncode:
        return f"'ip netns add' is not permitted on this machine: {added.stderr.strip()}"
    try:
        entered = subprocess.run(["ip", "netns", "exec", probe, "true"], capture_output=True, text=True)
        if entered.returncode:
            return f"'ip netns exec' is not permitted on this machine: {entered.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture(scope="session")
def cluster():
    reason = _netns_refusal()
    if reason:
        pytest.skip(reason)
    c = Cluster()
    _ACTIVE.append(c)
    t0 = time.monotonic()
    c.up()  # raises: a failing `up` is an error, not a skip
    sys.stderr.write(f"\n[cluster] up in {time.monotonic() - t0:.1f} s\n")
    yield c
    _ACTIVE.remove(c)
    c.restore()  # leave it up, every node started and healed


@pytest.fixture(autouse=True)
def _restore_faults():
    """Undo node faults a test left behind (only once a cluster is up)."""
    yield
    if _ACTIVE and _ACTIVE[0].faulted:
        _ACTIVE[0].restore()
