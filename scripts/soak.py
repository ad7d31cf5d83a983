#!/usr/bin/env python3
"""Soak: mixed load against the 3-node cluster while faults rotate (``make soak``).

Environment:
    DURATION   seconds of load (default 600)
    INTERVAL   seconds per reported row (default 10)
    FAULT_EVERY  seconds between the starts of two faults (default 30)

It brings the cluster up, seeds the files of ``tests/cluster/serving.py``,
starts our server in the client namespace (2 workers x 8 threads, the three
nodes as volfile servers) and runs ``tests/loadgen.py`` there (every body
checked against its sha256). Faults rotate over the nodes: kill + start a
node, cut + heal its link, restart its glusterd. Per interval it reports
requests, failures, corrupt bodies, the slowest request, and each worker's
RSS and open fds, as a table on stdout and a plot (matplotlib) in
``bench-results/soak.png`` and ``docs/soak.png`` (raw rows in
``bench-results/soak.json``). Exit status 1 if any response failed or was
corrupt. The cluster is left up, every node started and healed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "cluster"), str(ROOT / "tests"), str(ROOT)]

from conftest import Cluster  # noqa: E402  (tests/cluster/conftest.py)
from serving import Load, fd_count, rss_kib, seed, start_server, worker_pids  # noqa: E402


def fault_plan():
    """(name, inject, undo, hold seconds) rotating over faults and nodes."""
    n = 0
    while True:
        kind = n % 3
        node = (n + n // 3) % 3 + 1  # every kind of fault visits every node
        if kind == 0:
            yield (f"kill node{node}", lambda c, k=node: c.kill_node(k), lambda c, k=node: c.start_node(k), 8)
        elif kind == 1:
            yield (f"cut node{node}", lambda c, k=node: c.cut_node(k), lambda c, k=node: c.heal_node(k), 10)
        else:
            yield (f"restart glusterd node{node}", lambda c, k=node: c.restart_glusterd(k), None, 0)
        n += 1


def run_faults(cluster: Cluster, stop: threading.Event, every: float, events: list) -> None:
    plan = fault_plan()
    stop.wait(min(every, 10))
    while not stop.is_set():
        t0 = time.monotonic()
        name, inject, undo, hold = next(plan)
        events.append({"t": time.monotonic(), "event": f"{name}"})
        inject(cluster)
        if undo:
            stop.wait(hold)
            undo(cluster)
        events.append({"t": time.monotonic(), "event": f"{name}: undone"})
        stop.wait(max(1.0, every - (time.monotonic() - t0)))


def plot(rows, events, start, paths) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["t"] - start for r in rows]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    axes[0].plot(t, [r["requests"] / r["seconds"] for r in rows], label="requests/s")
    axes[0].plot(t, [r["failed"] + r["corrupt"] for r in rows], "r.-", label="failed + corrupt")
    axes[0].set_ylabel("per interval")
    axes[0].legend(loc="upper right")
    workers = sorted({w for r in rows for w in r["rss_mib"]})
    for w in workers:
        axes[1].plot(t, [r["rss_mib"].get(w) for r in rows], label=f"worker pid {w}")
        axes[2].plot(t, [r["fds"].get(w) for r in rows], label=f"worker pid {w}")
    axes[1].set_ylabel("RSS (MiB)")
    axes[2].set_ylabel("open fds")
    axes[2].set_xlabel("seconds")
    for ax in axes[1:]:
        ax.legend(loc="lower right", fontsize="small")
    for ev in events:
        if not ev["event"].endswith("undone"):
            for ax in axes:
                ax.axvline(ev["t"] - start, color="grey", lw=0.8, ls="--")
            axes[0].annotate(ev["event"], (ev["t"] - start, 0), rotation=90, fontsize=7, va="bottom")
    fig.suptitle("uwsgi-gluster soak: load with rotating node faults (replica 3)")
    fig.tight_layout()
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    duration = float(os.environ.get("DURATION", 600))
    interval = float(os.environ.get("INTERVAL", 10))
    every = float(os.environ.get("FAULT_EVERY", 30))
    cluster = Cluster()
    print(f"[soak] cluster up ({cluster.up().strip().splitlines()[-1]})", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    manifest = seed(cluster, workdir)
    server = start_server(cluster, workdir)
    rows, events = [], []
    stop = threading.Event()
    faults = threading.Thread(target=run_faults, args=(cluster, stop, every, events), daemon=True)
    header = (f"{'t(s)':>6} {'requests':>8} {'req/s':>7} {'failed':>6} {'corrupt':>7} {'max lat':>7}  "
              f"{'RSS MiB (workers)':<18} {'fds (workers)':<14} fault")
    try:
        with Load(cluster, server.port, manifest, threads=8, max_duration=duration + 60,
                  interval=interval) as load:
            start = time.monotonic()
            faults.start()
            print(header, flush=True)
            seen = 0
            while time.monotonic() - start < duration:
                time.sleep(0.2)
                while seen < len(load.intervals):
                    row = dict(load.intervals[seen])
                    seen += 1
                    pids = worker_pids(server.proc.pid)
                    row.update(seconds=interval, rss_mib={p: round(rss_kib(p) / 1024, 1) for p in pids},
                               fds={p: fd_count(p) for p in pids})
                    active = [e["event"] for e in events if row["t"] - interval < e["t"] <= row["t"]]
                    row["events"] = active
                    rows.append(row)
                    print(f"{row['t'] - start:6.0f} {row['requests']:8d} {row['requests'] / interval:7.1f} "
                          f"{row['failed']:6d} {row['corrupt']:7d} {row['max_latency']:7.2f}  "
                          f"{'/'.join(str(v) for v in row['rss_mib'].values()):<18} "
                          f"{'/'.join(str(v) for v in row['fds'].values()):<14} {'; '.join(active)}",
                          flush=True)
            stop.set()
        faults.join(120)
    finally:
        stop.set()
        server.stop()
        cluster.restore()
    res = load.result
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps({"summary": res.summary, "rows": rows, "events": events,
                                               "start": start}, indent=1))
    plot(rows, events, start, [out / "soak.png", ROOT / "docs" / "soak.png"])
    print(f"[soak] {res.line()}")
    print(f"[soak] faults: {', '.join(e['event'] for e in events if not e['event'].endswith('undone'))}")
    if res.failed or res.corrupt:
        print(f"[soak] FAILED: {res.failed} failed, {res.corrupt} corrupt; kinds {res.kinds}; "
              f"first: {res.first_failures[:5]}\n[soak] server log: {server.log_path}", flush=True)
        return 1
    print("[soak] plot: bench-results/soak.png, docs/soak.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
