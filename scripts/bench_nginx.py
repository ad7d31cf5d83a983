#!/usr/bin/env python3
"""Side-by-side benchmark: uwsgi-gluster against tuned nginx over a FUSE mount.

    make bench-nginx                          # or: .venv/bin/python scripts/bench_nginx.py
    make bench-nginx DURATION=5
    .venv/bin/python scripts/bench_nginx.py --socket http-socket
    .venv/bin/python scripts/bench_nginx.py --profile    # py-spy on our worker 1, each load
    .venv/bin/python scripts/bench_nginx.py --profile --perf   # perf (C and kernel frames) instead

The peer is what a performance-minded operator runs today: Debian's nginx serving
a FUSE mount (``mount -t glusterfs``) of the same volume, with ``sendfile on``,
keep-alive, ``open_file_cache max=20000 inactive=60s`` and ``open_file_cache_valid
1s`` (the same 1 s freshness bound as ours), access log off, one worker per CPU.
Ours runs in README's recommended configuration: 2 processes x 32 threads with a
master, ``http11-socket`` (keep-alive), request logging off, the local copies under
``/var/tmp`` (a disk file system's page cache; hot answers stay in ``/dev/shm``).

In one run, in ``--rounds`` rounds (3 by default) that alternate which side goes
first: start a side, check every file by sha256, run wrk (``-t2``, ``--latency``) on
four loads, stop it; then the other side. Each ratio is the median of the rounds'
ours/nginx ratios (one round's two sides ran back to back, so a change in the
machine's load between rounds moves both); each side's figures are its median
round. The loads:

==========  =====================================  ===========
label       what                                   connections
==========  =====================================  ===========
tiny        the 14 B file                          32
10mib       the 10 MiB file                        8
mixed       300 files of 1-64 KiB (fixed shuffle)  32
crowd       the same 300 files                     1,000
==========  =====================================  ===========

Per side and load it records req/s, MB/s, p99, non-2xx and socket errors, and the
CPU seconds the side used (nginx: its workers plus the FUSE client process; ours:
every uWSGI process), then the workers' RSS after the loads. The native plugin
(``/usr/bin/uwsgi``, the same ini) runs the same loads too, for its workers' RSS: ours
may use at most native's plus 15 MiB per worker (``--no-native`` skips it). It prints ours/nginx
ratios against the targets of the speed issue (10 MiB >= 1.0x, mixed >= 0.6x,
14 B >= 0.5x, 1,000 connections >= 0.6x) and writes ``bench-results/bench-nginx.json``
and ``docs/bench-nginx.png``.

``--profile`` runs only ours (same configuration) and records its first worker
with ``py-spy record --nonblocking`` during each load, writing
``bench-results/profile-nginx-{label}.txt`` (collapsed stacks) and printing the
functions with the most samples (docs/profile.md explains how to read them).
With ``--perf`` it records worker 1 with ``perf record -g`` instead (C and kernel
frames: hot answers never enter Python), writing ``bench-results/perf-nginx-{label}.data``
and a summary ``.txt`` (time per system call and kernel path, then the functions
with the most samples of their own).

Exit status: 0 when the report was produced (targets met or not); 1 when something
is broken (a side does not start, wrong bytes, wrk fails, non-2xx answers); 2 for
bad arguments. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench
from bench import MEDIUM, RESULTS, ROOT, SEED, TINY, VOLUME, Broken, MiB, log

MIXED_SET = 300
FUSE_DIR = Path("/run/uwsgi-gluster-bench/fuse")
NGINX_DIR = RESULTS / "nginx"
OPEN_FILES = 8192  # wrk's 1,000 connections, nginx's and uWSGI's sockets

#: label -> (path or None for the mixed set, connections, metric, target ratio)
LOADS = {
    "tiny": (TINY, 32, "rps", 0.5),
    "10mib": (MEDIUM, 8, "mbps", 1.0),
    "mixed": (None, 32, "rps", 0.6),
    "crowd": (None, 1000, "rps", 0.6),
}

#: ours' worker RSS after the loads may exceed native's by this much (issue 11)
RSS_ALLOWANCE_MIB = 15

OURS_INI = """\
; written by scripts/bench_nginx.py: README's recommended configuration
[uwsgi]
plugins = glusterfs
{socket} = 127.0.0.1:{{port}}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume={{volume}},server=127.0.0.1:0
master = true
processes = {processes}
threads = {threads}
listen = 1024
disable-logging = true
{local_cache}"""

#: README's recommendation: the local copies on a disk file system (its page cache;
#: sendfile reads it faster than tmpfs), hot answers stay in /dev/shm
OURS_LOCAL_CACHE = "glusterfs-local-cache-dir = /var/tmp\n"

NGINX_CONF = """\
# written by scripts/bench_nginx.py: tuned nginx over a FUSE mount of the volume
daemon off;
master_process on;
worker_processes auto;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile {open_files};
events {{
    worker_connections 4096;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=20000 inactive=60s;
    open_file_cache_valid 1s;
    open_file_cache_errors on;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {root};
    }}
}}
"""


# -- process accounting -------------------------------------------------------------

def children(root: int) -> List[int]:
    """``root`` and every live descendant."""
    parents: Dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ppid = bench.ppid_of(int(entry))
            if ppid is not None:
                parents[int(entry)] = ppid
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def cpu_seconds(pids: List[int]) -> float:
    """utime + stime of ``pids`` (threads included), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def fuse_client_pids() -> List[int]:
    """The glusterfs FUSE client process(es) serving FUSE_DIR."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"glusterfs") and os.fsencode(str(FUSE_DIR)) in cmdline:
            pids.append(int(entry))
    return pids


# -- the peer: nginx over FUSE ---------------------------------------------------------

def mount_fuse() -> None:
    FUSE_DIR.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(FUSE_DIR):
        return
    subprocess.run(["mount", "-t", "glusterfs", f"127.0.0.1:/{VOLUME}", str(FUSE_DIR)], check=True)
    deadline = time.monotonic() + 30
    while not (FUSE_DIR / TINY.lstrip("/")).exists():
        if time.monotonic() > deadline:
            raise Broken(f"FUSE mount of {VOLUME} on {FUSE_DIR} shows no {TINY} after 30 s")
        time.sleep(0.2)


def umount_fuse() -> None:
    if os.path.ismount(FUSE_DIR):
        subprocess.run(["umount", "-l", str(FUSE_DIR)], check=False)


class Nginx:
    """nginx from Debian over the FUSE mount; the interface scripts/bench.py's wrk runner uses."""

    def __init__(self) -> None:
        self.name = "nginx"
        self.port = bench.free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.workers: List[int] = []
        self.conf = NGINX_DIR / "nginx.conf"

    def log_text(self) -> str:
        try:
            return (NGINX_DIR / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def fail(self, why: str) -> Broken:
        tail = "\n".join(self.log_text().splitlines()[-30:])
        return Broken(f"nginx: {why}\n--- last lines of {NGINX_DIR / 'error.log'} ---\n{tail}")

    def start(self, timeout: float = 30) -> None:
        (NGINX_DIR / "tmp").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(NGINX_CONF.format(dir=NGINX_DIR, port=self.port, root=FUSE_DIR,
                                               open_files=OPEN_FILES))
        out = open(NGINX_DIR / "stdout.log", "wb")
        self.proc = subprocess.Popen(["nginx", "-c", str(self.conf), "-p", str(NGINX_DIR)], stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise self.fail(f"exited with status {self.proc.returncode} during start-up")
            try:
                if bench.get(self.port, TINY, timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self.fail(f"did not answer 200 for {TINY} within {timeout:.0f} s")
            time.sleep(0.2)
        self.workers = [p for p in children(self.proc.pid) if p != self.proc.pid]
        log(f"nginx: up on 127.0.0.1:{self.port}, pid {self.proc.pid}, workers {self.workers}")

    def cpu_pids(self) -> List[int]:
        return children(self.proc.pid) + fuse_client_pids() if self.proc else []

    def rss(self) -> int:
        return sum(bench.proc_status(p, "VmRSS") or 0 for p in self.workers)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGQUIT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


class Ours(bench.Server):
    def cpu_pids(self) -> List[int]:
        return children(self.proc.pid) if self.proc else []


# -- one side, start to stop ----------------------------------------------------------

def bench_side(server, files: Dict[str, bytes], lua: Path, args) -> dict:
    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1):
        log(f"WARNING: load average {load_before[0]:.1f} on {os.cpu_count()} CPUs before the "
            f"{server.name} run: numbers will be noisy")
    try:
        server.start()
        log(f"{server.name}: workers' RSS at start {server.rss() / MiB:.1f} MiB ({len(server.workers)} workers)")
        bench.verify(server, files)
        loads = {}
        for label, (path, connections, _, _) in LOADS.items():
            pids = server.cpu_pids()
            cpu0, t0 = cpu_seconds(pids), time.monotonic()
            res = bench.run_wrk(server, label, path or "/", args, None if path else lua, connections=connections)
            res["cpu_percent"] = 100 * (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0)
            res["mbps"] = (res["bytes_per_s"] or 0) / 1e6
            log(f"{server.name}: {label}: CPU {res['cpu_percent']:.0f}% of one core, workers' RSS "
                f"{server.rss() / MiB:.1f} MiB")
            loads[label] = res
        rss = server.rss()
        log(f"{server.name}: workers' RSS after the loads {rss / MiB:.1f} MiB ({len(server.workers)} workers)")
        return {"loads": loads, "workers": server.workers, "rss_mib": rss / MiB,
                "rss_per_worker_mib": rss / MiB / max(1, len(server.workers)),
                "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    finally:
        server.stop()


def median(values: List[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def combine(rounds: List[dict]) -> dict:
    """One side's rounds as one result: per load, the round with the median
    figure (req/s or MB/s); the largest RSS; every round kept under "rounds"."""
    loads = {}
    for label, (_, _, metric, _) in LOADS.items():
        ordered = sorted((r["loads"][label] for r in rounds), key=lambda res: res[metric] or 0)
        loads[label] = ordered[(len(ordered) - 1) // 2]
    worst = max(rounds, key=lambda r: r["rss_per_worker_mib"])
    return {"loads": loads, "workers": worst["workers"], "rss_mib": worst["rss_mib"],
            "rss_per_worker_mib": worst["rss_per_worker_mib"], "loadavg_before": rounds[0]["loadavg_before"],
            "loadavg_after": rounds[-1]["loadavg_after"], "rounds": rounds}


def round_ratios(results: dict, label: str, metric: str) -> List[float]:
    """ours/nginx of each round, for one load."""
    pairs = zip(results["ours"]["rounds"], results["nginx"]["rounds"])
    return [o["loads"][label][metric] / n["loads"][label][metric] for o, n in pairs
            if n["loads"][label][metric]]


def report(results: dict) -> List[dict]:
    rows = []
    for label, (_, connections, metric, target) in LOADS.items():
        row = {"load": label, "connections": connections, "metric": metric, "target": target}
        for side in ("nginx", "native", "ours"):
            if side in results:
                res = results[side]["loads"][label]
                row[side] = res[metric]
                row[f"{side}_cpu_percent"] = res["cpu_percent"]
                row[f"{side}_p99_ms"] = res["p99_ms"]
        if "nginx" in row and "ours" in row and row["nginx"]:
            row["round_ratios"] = round_ratios(results, label, metric)
            row["ratio"] = median(row["round_ratios"])
            row["verdict"] = "PASS" if row["ratio"] >= target else "FAIL"
        rows.append(row)
    unit = {"rps": "req/s", "mbps": "MB/s"}
    print(f"\n{'load':<8} {'conns':>5} {'nginx':>12} {'ours':>12} {'ratio':>7} {'target':>7}  verdict"
          f"   CPU% nginx/ours   p99 ms nginx/ours  (median round of each side; ratio: median of the rounds')")
    for r in rows:
        print(f"{r['load']:<8} {r['connections']:>5} {r.get('nginx', 0):>12,.1f} {r.get('ours', 0):>12,.1f} "
              f"{r.get('ratio', 0):>6.2f}x {r['target']:>6.1f}x  {r.get('verdict', '-'):<7}"
              f" {r.get('nginx_cpu_percent', 0):>5.0f} / {r.get('ours_cpu_percent', 0):<5.0f}"
              f"   {r.get('nginx_p99_ms') or 0:>6.2f} / {r.get('ours_p99_ms') or 0:<6.2f}  ({unit[r['metric']]})"
              f"  rounds {' '.join(f'{x:.2f}' for x in r.get('round_ratios', []))}")
    if "native" in results:
        print("native plugin, same ini as ours (for its worker RSS): "
              + ", ".join(f"{r['load']} {r.get('native', 0):,.1f} {unit[r['metric']]}" for r in rows))
    for side, res in results.items():
        print(f"{side}: workers' RSS after the loads {res['rss_mib']:.1f} MiB "
              f"({res['rss_per_worker_mib']:.1f} MiB per worker); load average "
              f"{res['loadavg_before'][0]:.1f} -> {res['loadavg_after'][0]:.1f} on {os.cpu_count()} CPUs")
    if "native" in results and "ours" in results:
        ours, native = results["ours"]["rss_per_worker_mib"], results["native"]["rss_per_worker_mib"]
        limit = native + RSS_ALLOWANCE_MIB
        rows.append({"load": "rss", "metric": "rss_per_worker_mib", "ours": ours, "native": native,
                     "limit": limit, "verdict": "PASS" if ours <= limit else "FAIL"})
        print(f"worker RSS after the loads: ours {ours:.1f} MiB, native {native:.1f} MiB, limit native + "
              f"{RSS_ALLOWANCE_MIB} = {limit:.1f} MiB  {'PASS' if ours <= limit else 'FAIL'}")
    return rows


def chart(rows: List[dict], meta: dict) -> Optional[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: no chart (make bench-nginx installs it)")
        return None
    rows = [r for r in rows if "ratio" in r]
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"{r['load']}\n{r['connections']} conns" for r in rows]
    ax.bar(labels, [r["ratio"] for r in rows], color=["#2a7" if r["verdict"] == "PASS" else "#c44" for r in rows])
    for i, r in enumerate(rows):
        ax.plot([i - 0.4, i + 0.4], [r["target"], r["target"]], "k--", lw=1)
        ax.text(i, r["ratio"], f"{r['ratio']:.2f}x", ha="center", va="bottom")
    ax.axhline(1.0, color="#888", lw=0.8)
    ax.set_ylabel("ours / tuned nginx over FUSE (higher is better)")
    ax.set_title(f"uwsgi-gluster vs nginx+FUSE, {meta['date']} ({meta['commit']}); dashes: targets")
    fig.tight_layout()
    path = ROOT / "docs" / "bench-nginx.png"
    fig.savefig(path, dpi=100)
    return path


def summarize_perf(data: Path, top: int = 25) -> str:
    """What worker 1's threads did, from a ``perf record -g`` file: time inside
    each system call and kernel path (children included), then the functions
    with the most samples of their own. Writes both next to ``data`` (.txt)."""
    def report(*extra: str) -> List[str]:
        out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", "symbol", "-g", "none",
                              "--percent-limit", "1", *extra], capture_output=True, text=True, check=False)
        return [line for line in out.stdout.splitlines() if line.strip() and not line.startswith("#")][:top]
    children = report("--children")
    own = report("--no-children")
    text = "\n".join(["-- children included (where the time goes) --", *children,
                      "-- own samples (who spends it) --", *own])
    data.with_suffix(".txt").write_text(text + "\n")
    return text


def profile_ours(files: Dict[str, bytes], lua: Path, args) -> int:
    """py-spy (or perf, ``--perf``) on our worker 1 during each load (``--profile``)."""
    if args.perf and not shutil.which("perf"):
        raise Broken("perf not found: apt-get install linux-perf")
    if not args.perf and not bench.PYSPY.exists():
        raise Broken(f"{bench.PYSPY} missing: pip install -e '.[bench]' (make bench installs it)")
    server = Ours("ours-profile", [args.ours_bin], ours_ini(args))
    try:
        server.start()
        bench.verify(server, files)
        for label, (path, connections, _, _) in LOADS.items():
            out = RESULTS / f"profile-nginx-{label}.txt"
            if args.perf:
                out = RESULTS / f"perf-nginx-{label}.data"
                cmd = ["perf", "record", "-F", "999", "-g", "-p", str(server.workers[0]), "-o", str(out),
                       "--", "sleep", str(args.duration)]
            else:
                cmd = [str(bench.PYSPY), "record", "--pid", str(server.workers[0]), "--duration",
                       str(args.duration), "--rate", "200", "--format", "raw", "-o", str(out)]
                # C frames too (hot answers never enter Python); py-spy can only take them
                # from a paused process: --native excludes --nonblocking
                cmd += ["--native"] if args.profile_native else ["--nonblocking"]
            spy = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(0.5)  # let the profiler attach before the load starts
            res = bench.run_wrk(server, label, path or "/", args, None if path else lua, connections=connections)
            spy_out, _ = spy.communicate(timeout=args.duration + 60)
            if spy.returncode != 0 or not out.exists():
                raise Broken(f"{cmd[0]} failed ({spy.returncode}): {' '.join(cmd)}\n{spy_out}")
            print(f"\n== {'perf' if args.perf else 'py-spy'}, {label}, {connections} conns ({res['rps']:.0f} "
                  f"req/s, {(res['bytes_per_s'] or 0) / 1e6:.0f} MB/s under profiling), {out} ==")
            print(summarize_perf(out) if args.perf else bench.summarize_collapsed(out))
        rss = server.rss()
        print(f"\nours: workers' RSS after the loads {rss / MiB:.1f} MiB ({len(server.workers)} workers)")
        return 0
    finally:
        server.stop()


def ours_ini(args, native: bool = False) -> str:
    """Our side's ini template (port and volume still to fill in); the native
    plugin's has no glusterfs-local-cache-dir (it has no such option)."""
    return OURS_INI.format(socket=args.socket, processes=args.processes, threads=args.ours_threads,
                           local_cache="" if native else OURS_LOCAL_CACHE)


def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=int(env("DURATION", "10")),
                   help="seconds per wrk run (env DURATION)")
    p.add_argument("--threads", type=int, default=int(env("WRK_THREADS", "2")), help="wrk threads (env WRK_THREADS)")
    p.add_argument("--rounds", type=int, default=int(env("ROUNDS", "3")),
                   help="rounds of both sides, alternating which goes first; ratios are the median "
                        "round's (env ROUNDS)")
    p.add_argument("--socket", choices=("http11-socket", "http-socket"), default=env("SOCKET", "http11-socket"),
                   help="our socket type (env SOCKET)")
    p.add_argument("--processes", type=int, default=int(env("OURS_PROCESSES", "2")),
                   help="our worker processes (env OURS_PROCESSES; README recommends 2 on 2 cores)")
    p.add_argument("--ours-threads", type=int, default=int(env("OURS_THREADS", "32")),
                   help="threads per worker (env OURS_THREADS; README recommends 32: "
                        "a kept-alive connection holds a thread)")
    p.add_argument("--ours-bin", default=env("OURS_BIN") or str(ROOT / "uwsgi"),
                   help="our server: ./uwsgi (default: its glusterfs plugin answers hot hits in C, README's "
                        "recommendation for speed) or the uwsgi-gluster launcher's path (env OURS_BIN)")
    p.add_argument("--only", choices=("ours", "nginx", "native"), default=env("ONLY") or None,
                   help="one side only (env ONLY)")
    p.add_argument("--no-native", action="store_true",
                   help="skip the native plugin (run for its worker RSS, the memory bound of ours)")
    p.add_argument("--reseed", action="store_true", help="rewrite every seeded file")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--profile", action="store_true", help="ours only: py-spy our worker 1 under each load")
    p.add_argument("--perf", action="store_true",
                   help="with --profile: perf record -g of worker 1 (C and kernel frames: the hot answers) "
                        "instead of py-spy")
    p.add_argument("--profile-native", action="store_true",
                   help="with --profile: C frames too (py-spy --native; the worker is paused per sample)")
    args = p.parse_args(argv)
    if args.duration < 1 or args.threads < 1 or args.rounds < 1:
        p.error("duration, threads and rounds must be >= 1")
    args.ours_bin = os.path.abspath(args.ours_bin)  # the server runs in its own directory
    if not os.access(args.ours_bin, os.X_OK):
        p.error(f"--ours-bin {args.ours_bin}: not an executable (build ./uwsgi with `make`)")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    RESULTS.mkdir(exist_ok=True)
    NGINX_DIR.mkdir(parents=True, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(OPEN_FILES, hard)), hard))
    began = time.monotonic()
    files = bench.small_files()
    mixed = bench.mixed_paths(files)[:MIXED_SET]
    files = {p: files[p] for p in (TINY, MEDIUM, *mixed)}
    random.Random(SEED).shuffle(mixed)
    paths_file = RESULTS / "mixed300-paths.txt"
    paths_file.write_text("\n".join(mixed) + "\n")
    lua = RESULTS / "mixed300.lua"
    lua.write_text(bench.MIXED_LUA % {"paths": paths_file})
    results = {}
    try:
        bench.seed(files, args.reseed, huge=False)
        if args.profile:
            return profile_ours(files, lua, args)
        sides = [side for side in ("nginx", "ours") if args.only in (None, side)]
        rounds: Dict[str, List[dict]] = {side: [] for side in sides}
        if "nginx" in sides:
            mount_fuse()
        try:
            for number in range(args.rounds):
                for side in sides if number % 2 == 0 else sides[::-1]:
                    log(f"round {number + 1} of {args.rounds}: {side}")
                    server = Nginx() if side == "nginx" else Ours("ours", [args.ours_bin], ours_ini(args))
                    rounds[side].append(bench_side(server, files, lua, args))
        finally:
            if "nginx" in sides:
                umount_fuse()
        results.update({side: combine(rounds[side]) for side in sides})
        if args.only in (None, "native") and not args.no_native:  # last: its load must not weigh on ours
            native = Ours("native", bench.NATIVE_CMD, ours_ini(args, native=True))
            results["native"] = combine([bench_side(native, files, lua, args)])
    except (Broken, subprocess.CalledProcessError) as exc:
        print(f"[bench-nginx] BROKEN: {exc}", file=sys.stderr)
        return 1
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "commit": bench.git_commit(),
            "duration_s": args.duration, "rounds": args.rounds, "wrk_threads": args.threads, "socket": args.socket,
            "ours": f"{args.ours_bin}: {args.processes} processes x {args.ours_threads} threads, master, "
                    f"disable-logging", "cpus": os.cpu_count(),
            "nginx": "sendfile, keep-alive, open_file_cache max=20000 inactive=60s valid 1s, over FUSE",
            "mb": "10^6 bytes", "elapsed_s": round(time.monotonic() - began, 1)}
    rows = report(results)
    out = RESULTS / "bench-nginx.json"
    out.write_text(json.dumps({"meta": meta, "rows": rows, "results": results}, indent=2, default=str) + "\n")
    log(f"wrote {out}")
    if not args.no_chart and "nginx" in results and "ours" in results:
        path = chart(rows, meta)
        if path:
            log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
