"""Our server on the 3-node cluster, and a checked load loop against it.

Both run in the client namespace (``ugc-client``): the server with
``ip netns exec`` (:func:`start_server`), the load loop ``tests/loadgen.py``
through the cluster script (:class:`Load`). The test process talks to the
server through sockets made in that namespace (``support.request(netns=)``),
so no traffic ever leaves 127.0.0.0/8 and the namespaces.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from support import Server, ours, processes  # noqa: E402

LOADGEN = TESTS / "loadgen.py"
PREFIX = "/faults-"  # flat names: the gfapi helper makes no directories


def _blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def files() -> Dict[str, bytes]:
    """Small files (cached per worker, <= 256 KiB) and a few MiB ones (streamed)."""
    out = {}
    for i, size in enumerate((1, 100, 1000, 4096, 10_000, 65_536, 100_000, 200_000, 262_144, 30_000)):
        out[f"{PREFIX}small-{i:02d}.bin"] = _blob(size, 1000 + i)
    out[f"{PREFIX}index.html"] = b"<!doctype html><p>faults</p>\n"
    for i, size in enumerate(((2 << 20) + 123, 3 << 20, (5 << 20) - 1)):
        out[f"{PREFIX}big-{i}.bin"] = _blob(size, 2000 + i)
    return out


def manifest_of(tree: Dict[str, bytes]) -> Dict[str, dict]:
    return {path: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for path, data in tree.items()}


def seed(cluster, workdir: Path) -> Path:
    """Write :func:`files` to the volume (idempotent); returns the manifest path."""
    tree = files()
    with cluster.gfapi_client(log=workdir / "seed-gfapi.log") as client:
        for path, data in tree.items():
            try:
                if client.read(path) == data:
                    continue
            except OSError:
                pass
            client.write(path, data)
    manifest = workdir / "manifest.json"
    manifest.write_text(json.dumps(manifest_of(tree), indent=1))
    return manifest


INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=%(volume)s,server=%(servers)s
master = true
processes = 2
threads = 8
die-on-term = true
%(extra)s
"""


def server_ini(cluster, servers: Optional[str] = None, extra: str = "") -> str:
    servers = servers or ";".join(f"{host}:0" for host in cluster.hostnames)
    return INI % {"volume": cluster.volume, "servers": servers, "extra": extra}


def start_server(cluster, workdir: Path, servers: Optional[str] = None, extra: str = "",
                 name: str = "ours", wait: bool = True, timeout: float = 60) -> Server:
    server = ours(server_ini(cluster, servers, extra), workdir, name, netns=cluster.client_ns)
    return server.start(wait=wait, timeout=timeout)


def worker_pids(master_pid: int) -> List[int]:
    """The uWSGI workers: children of the master."""
    return sorted(pid for pid, _state, ppid, _sid in processes() if ppid == master_pid)


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@dataclass
class LoadResult:
    summary: dict
    intervals: List[dict]
    marks: List[tuple]

    def __getattr__(self, name):
        try:
            return self.summary[name]
        except KeyError:
            raise AttributeError(name) from None

    def phases(self) -> Dict[str, dict]:
        """Per marked phase: requests, ok, failed, corrupt, max_latency (by interval end time)."""
        out: Dict[str, dict] = {}
        bounds = self.marks + [("end", float("inf"))]
        for (name, start), (_, end) in zip(bounds, bounds[1:]):
            rows = [r for r in self.intervals if start < r["t"] <= end]
            out[name] = {k: sum(r[k] for r in rows) for k in ("requests", "ok", "failed", "corrupt")}
            out[name]["max_latency"] = max((r["max_latency"] for r in rows), default=0.0)
        return out

    def line(self) -> str:
        s = self.summary
        text = (f"requests {s['requests']}, ok {s['ok']}, failed {s['failed']}, corrupt {s['corrupt']}, "
                f"max stall {s['max_latency']:.2f} s (slowest request), "
                f"{s['max_gap']:.2f} s (longest time without a success), {s['elapsed']:.0f} s")
        phases = "; ".join(f"{name}: {p['requests']} req {p['failed']} failed {p['corrupt']} corrupt "
                           f"max {p['max_latency']:.2f} s" for name, p in self.phases().items())
        return f"{text} | {phases}"


@dataclass
class Load:
    """``tests/loadgen.py`` in the client namespace for the lifetime of a ``with``."""

    cluster: object
    port: int
    manifest: Path
    threads: int = 8
    max_duration: float = 300
    timeout: float = 30
    interval: float = 1.0
    marks: List[tuple] = field(default_factory=list)
    intervals: List[dict] = field(default_factory=list)
    result: Optional[LoadResult] = None

    def __enter__(self) -> Load:
        self.proc = self.cluster.exec_client(
            [sys.executable, LOADGEN, "--port", self.port, "--manifest", self.manifest,
             "--threads", self.threads, "--duration", self.max_duration, "--timeout", self.timeout,
             "--interval", self.interval],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._summary: Optional[dict] = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.mark("start")
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            record = json.loads(line)
            if record["type"] == "interval":
                self.intervals.append(record)
            else:
                self._summary = record

    def mark(self, phase: str) -> None:
        self.marks.append((phase, time.monotonic()))

    def ok_since(self, t: float) -> int:
        return sum(r["ok"] for r in self.intervals if r["t"] > t)

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(self.timeout + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(10)
        self.proc.stdout.close()
        if self._summary is None and exc[0] is None:
            raise AssertionError(f"load generator gave no summary (exit {self.proc.returncode})")
        self.result = LoadResult(self._summary or {}, self.intervals, self.marks)
