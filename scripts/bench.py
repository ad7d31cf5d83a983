#!/usr/bin/env python3
"""Side-by-side benchmark: uwsgi-gluster against uWSGI's native glusterfs plugin.

    make bench                               # or: .venv/bin/python scripts/bench.py
    make bench DURATION=5 CONNECTIONS=50
    .venv/bin/python scripts/bench.py --only ours
    .venv/bin/python scripts/bench.py --profile [--native]   # py-spy on our worker

What it does, in order:

1. ``scripts/gluster-env volume bench``, then seeds the volume through libgfapi
   (deterministic content; a file already there with the right size is kept):
   a 14-byte file, a 10 MiB file, a 1 GiB file (written in 4 MiB chunks) and
   1,000 files of 1-64 KiB under ``/mixed``.
2. For each server in turn (native ``/usr/bin/uwsgi`` with ``plugins = glusterfs``,
   then ours, ``uwsgi-gluster``), from the very same ini (1 process, 30 threads,
   request logging off): start it, find its worker PIDs (uWSGI's own
   "spawned uWSGI worker N (pid: P" lines, checked against the process tree),
   GET every seeded file once and compare sha256 with what was seeded (the
   1 GiB one while sampling the worker's VmRSS: the streaming-memory check),
   then load it with wrk (14 B, 10 MiB, mixed set through a Lua script that walks
   a fixed-seed shuffle of the 1,000 paths), then read VmHWM of the workers.
3. Prints ours / native / ratio / target / PASS-FAIL, writes
   ``bench-results/bench.json`` and ``docs/bench.png``.

uWSGI's http-socket closes the connection after each answer without saying so,
so wrk counts a socket "read" error per request (for both servers alike) and
reconnects; those are reported, not treated as failures. Non-2xx answers are.

Exit status: 0 when the report was produced (whether or not targets are met);
1 when something is broken (a server does not start, wrong bytes, wrk fails,
non-2xx answers); 2 for bad arguments.

``--profile`` runs only ours and records our worker with ``py-spy record
--format raw`` while wrk runs the 14 B and the mixed tests, writes
``bench-results/profile-{tiny,mixed}.txt`` (collapsed stacks) and prints the
top 15 functions by self time. Extra py-spy options: ``PYSPY_ARGS`` (e.g.
``--gil``, ``--idle``) or ``--native``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench-results"
CHART = ROOT / "docs" / "bench.png"
BIN = Path(sys.executable).parent
OURS_CMD = [str(BIN / "uwsgi-gluster")]
NATIVE_CMD = ["/usr/bin/uwsgi"]  # never the `uwsgi` on PATH: in a venv that is pyuwsgi's script
PYSPY = BIN / "py-spy"

VOLUME = "bench"
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
TINY, MEDIUM, HUGE = "/tiny.txt", "/10m.bin", "/1g.bin"
TINY_DATA = b"Hello, Gluster"  # 14 bytes
MEDIUM_SIZE, HUGE_SIZE, HUGE_CHUNK = 10 * MiB, GiB, 4 * MiB
MIXED_COUNT, MIXED_MIN, MIXED_MAX = 1000, 1 * KiB, 64 * KiB
MIXED_EXTS = (".html", ".css", ".js", ".json", ".txt", ".png", ".jpg", ".bin")
SEED = 20240601

#: name -> (metric label, unit, higher is better, target ratio or None)
TARGETS = {
    "tiny_rps": ("14 B req/s", "req/s", True, 3.0),
    "medium_mbps": ("10 MiB MB/s", "MB/s", True, 5.0),
    "mixed_rps": ("mixed req/s", "req/s", True, 2.0),
    "mixed_p99_ms": ("mixed p99 latency", "ms", False, None),
    "peak_rss_mib": ("peak RSS / worker", "MiB", False, None),
    "stream_rss_growth_mib": ("1 GiB stream RSS growth", "MiB", False, None),
}

INI = """\
; written by scripts/bench.py: the same ini for the native plugin and uwsgi-gluster
[uwsgi]
plugins = glusterfs
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume={volume},server=127.0.0.1:0
processes = 1
threads = 30
disable-logging = true
"""


class Broken(Exception):
    """Something that makes the numbers meaningless: exit status 1."""


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


# -- the seeded files ------------------------------------------------------------

_HUGE_BASE: List[bytes] = []


def huge_chunk(index: int) -> bytes:
    """Chunk ``index`` of the 1 GiB file: a fixed random block stamped with its index."""
    if not _HUGE_BASE:
        _HUGE_BASE.append(random.Random(f"{SEED}-huge").randbytes(HUGE_CHUNK))
    return struct.pack(">Q", index) + _HUGE_BASE[0][8:]


def huge_chunks():
    for i in range(HUGE_SIZE // HUGE_CHUNK):
        yield huge_chunk(i)


def small_files() -> Dict[str, bytes]:
    """Every seeded file but the 1 GiB one: path -> content."""
    files = {TINY: TINY_DATA, MEDIUM: random.Random(f"{SEED}-medium").randbytes(MEDIUM_SIZE)}
    sizes = random.Random(SEED)
    for i in range(MIXED_COUNT):
        size = sizes.randint(MIXED_MIN, MIXED_MAX)
        path = f"/mixed/d{i % 10}/f{i:04d}{MIXED_EXTS[i % len(MIXED_EXTS)]}"
        files[path] = random.Random(f"{SEED}-mixed-{i}").randbytes(size)
    return files


def mixed_paths(files: Dict[str, bytes]) -> List[str]:
    return [p for p in files if p.startswith("/mixed/")]


def huge_sha256() -> str:
    h = hashlib.sha256()
    for chunk in huge_chunks():
        h.update(chunk)
    return h.hexdigest()


def seed(files: Dict[str, bytes], reseed: bool, huge: bool = True) -> None:
    """Create the bench volume and write ``files`` (and, with ``huge``, the 1 GiB file)."""
    subprocess.run([str(ROOT / "scripts" / "gluster-env"), "volume", VOLUME], check=True)
    sys.path.insert(0, str(ROOT))
    from uwsgi_gluster import gfapi
    from uwsgi_gluster.seeding import connect, write_file

    fs = connect(VOLUME)

    def size_of(path: str) -> Optional[int]:
        try:
            return gfapi.stat(fs, path).st_size
        except OSError:
            return None

    started = time.monotonic()
    written = 0
    for path, data in files.items():
        if reseed or size_of(path) != len(data):
            write_file(fs, path, data)  # creat + O_TRUNC: a leftover is overwritten
            written += 1
    log(f"seed: {written} of {len(files)} small files written ({time.monotonic() - started:.1f} s)")

    if not huge:
        return
    if reseed or size_of(HUGE) != HUGE_SIZE:
        started = time.monotonic()
        partial = HUGE + ".partial"  # renamed into place only when complete
        fd = gfapi.create_file(fs, partial)
        try:
            for i, chunk in enumerate(huge_chunks()):
                gfapi.pwrite_all(fd, chunk, i * HUGE_CHUNK)
        finally:
            gfapi.close(fd)
        gfapi.rename(fs, partial, HUGE)
        log(f"seed: wrote {HUGE} (1 GiB) in {time.monotonic() - started:.1f} s")
    else:
        log(f"seed: {HUGE} already there with the right size")


# -- servers -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid: int, key: str) -> Optional[int]:
    """A ``kB`` field of /proc/PID/status, in bytes (None if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def ppid_of(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def in_tree(pid: int, root: int) -> bool:
    while pid and pid > 1:
        if pid == root:
            return True
        pid = ppid_of(pid) or 0
    return False


class Server:
    """One uWSGI server under test, started from ``ini`` (a template with {port}, {volume})."""

    def __init__(self, name: str, command: List[str], ini: str = INI):
        self.name = name
        self.command = command
        self.ini_template = ini
        self.port = free_port()
        self.ini = RESULTS / f"{name}.ini"
        self.logfile = RESULTS / f"{name}.log"
        self.proc: Optional[subprocess.Popen] = None
        self.workers: List[int] = []

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def fail(self, why: str) -> Broken:
        tail = "\n".join(self.log_text().splitlines()[-30:])
        return Broken(f"{self.name}: {why}\n--- last lines of {self.logfile} ---\n{tail}")

    def start(self, timeout: float = 60) -> None:
        self.ini.write_text(self.ini_template.format(port=self.port, volume=VOLUME))
        with open(self.logfile, "wb") as out:
            self.proc = subprocess.Popen([*self.command, "--ini", str(self.ini)], stdout=out,
                                         stderr=subprocess.STDOUT, cwd=RESULTS, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise self.fail(f"exited with status {self.proc.returncode} during start-up")
            try:
                status, _, _ = get(self.port, TINY, timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self.fail(f"did not answer 200 for {TINY} within {timeout:.0f} s")
            time.sleep(0.2)
        self.workers = self.find_workers()
        log(f"{self.name}: up on 127.0.0.1:{self.port}, pid {self.proc.pid}, workers {self.workers}")

    def find_workers(self) -> List[int]:
        """Worker PIDs as uWSGI announces them; with no master the first process is
        worker 1 itself. Every PID must be alive and in this server's process tree."""
        root = self.proc.pid
        pids = [int(p) for p in re.findall(r"spawned uWSGI worker \d+ .*?\(pid: (\d+)", self.log_text())]
        pids = [p for p in dict.fromkeys(pids) if in_tree(p, root) and proc_status(p, "VmRSS")]
        if not pids:
            raise self.fail("cannot find its worker processes (no 'spawned uWSGI worker' line for a live pid)")
        return pids

    def rss(self) -> int:
        return sum(proc_status(p, "VmRSS") or 0 for p in self.workers)

    def peak_rss(self) -> int:
        """VmHWM of the largest worker."""
        return max(proc_status(p, "VmHWM") or 0 for p in self.workers)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# -- HTTP clients ----------------------------------------------------------------

def get(port: int, path: str, timeout: float = 60) -> Tuple[int, int, str]:
    """GET on its own connection: (status, body length, body sha256)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, len(body), hashlib.sha256(body).hexdigest()
    finally:
        conn.close()


def verify(server: Server, files: Dict[str, bytes]) -> None:
    started = time.monotonic()
    for path, data in files.items():
        status, length, digest = get(server.port, path)
        if status != 200 or length != len(data) or digest != hashlib.sha256(data).hexdigest():
            raise server.fail(f"wrong answer for {path}: status {status}, {length} bytes "
                              f"(expected 200, {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}..., "
                              f"got {digest[:16]}...); run with --reseed if the volume was changed")
    log(f"{server.name}: {len(files)} files verified by sha256 ({time.monotonic() - started:.1f} s)")


def stream_huge(server: Server, expected_sha: str, rate_mb: float) -> dict:
    """Download the 1 GiB file (hashing it, at most ``rate_mb`` MB/s) while sampling
    the workers' VmRSS every 20 ms; returns the growth over the pre-request RSS."""
    result: dict = {}

    def reader():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            conn.request("GET", HUGE)
            resp = conn.getresponse()
            h, got, t0 = hashlib.sha256(), 0, time.monotonic()
            while True:
                chunk = resp.read(256 * KiB)
                if not chunk:
                    break
                h.update(chunk)
                got += len(chunk)
                if rate_mb > 0:
                    ahead = got / (rate_mb * 1e6) - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            conn.close()
            result.update(status=resp.status, length=got, sha256=h.hexdigest(), seconds=time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - any failure of the reader is reported below
            result["error"] = repr(exc)

    baseline = server.rss()
    peak = baseline
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    while thread.is_alive():
        peak = max(peak, server.rss())
        thread.join(0.02)
    if "error" in result:
        raise server.fail(f"download of {HUGE} failed: {result['error']}")
    if result["status"] != 200 or result["length"] != HUGE_SIZE or result["sha256"] != expected_sha:
        raise server.fail(f"wrong answer for {HUGE}: status {result['status']}, {result['length']} bytes, "
                          f"sha256 {result['sha256'][:16]}... (expected {expected_sha[:16]}...)")
    growth = max(0, peak - baseline)
    log(f"{server.name}: {HUGE} verified; {HUGE_SIZE / result['seconds'] / 1e6:.0f} MB/s, "
        f"worker RSS {baseline / MiB:.1f} -> peak {peak / MiB:.1f} MiB (+{growth / MiB:.1f})")
    return {"rss_before_mib": baseline / MiB, "rss_peak_mib": peak / MiB, "growth_mib": growth / MiB,
            "mbps": HUGE_SIZE / result["seconds"] / 1e6}


# -- wrk -------------------------------------------------------------------------

MIXED_LUA = """\
-- written by scripts/bench.py: each wrk thread walks the same fixed-seed shuffle
-- of the mixed set round-robin, starting at its own offset.
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local counter = 0
local threads = 0
function setup(thread)
  thread:set("offset", threads * 997)
  threads = threads + 1
end
function init(args)
  counter = tonumber(offset) or 0
end
function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(text: str) -> dict:
    out: dict = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else None
    m = re.search(r"^\s*99(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    out["p99_ms"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"^\s*50(?:\.000)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    out["p50_ms"] = float(m.group(1)) * UNITS[m.group(2)] if m else None
    m = re.search(r"Transfer/sec:\s*([\d.]+)([KMGT]?B)", text)
    scale = {"B": 1, "KB": KiB, "MB": MiB, "GB": GiB, "TB": GiB * KiB}  # wrk prints binary units
    out["bytes_per_s"] = float(m.group(1)) * scale[m.group(2)] if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    out["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    out["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    return out


def run_wrk(server: Server, label: str, path: str, args, script: Optional[Path] = None,
            connections: Optional[int] = None) -> dict:
    cmd = ["wrk", f"-t{args.threads}", f"-c{connections or args.connections}", f"-d{args.duration}s", "--latency",
           "--timeout", "10s"]
    if script:
        cmd += ["-s", str(script)]
    cmd.append(f"http://127.0.0.1:{server.port}{path}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        raise server.fail(f"wrk {label} did not finish") from None
    (RESULTS / f"wrk-{server.name}-{label}.txt").write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    res = parse_wrk(proc.stdout)
    if proc.returncode != 0 or res["rps"] is None:
        raise server.fail(f"wrk {label} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    if res["non_2xx"]:
        raise server.fail(f"wrk {label}: {res['non_2xx']} non-2xx answers")
    if server.proc.poll() is not None:
        raise server.fail(f"died during wrk {label}")
    errors = {k: v for k, v in res["socket_errors"].items() if v}
    log(f"{server.name}: {label}: {res['rps']:.1f} req/s, {(res['bytes_per_s'] or 0) / 1e6:.1f} MB/s, "
        f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms"
        + (f", socket errors {errors}" if errors else ""))
    return res


# -- one server, start to stop ------------------------------------------------------

def bench_server(name: str, command: List[str], files, huge_sha: str, mixed_lua: Path, args) -> dict:
    server = Server(name, command)
    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1):
        log(f"WARNING: load average {load_before[0]:.1f} on {os.cpu_count()} CPUs before the {name} run: "
            "other processes compete for CPU, numbers will be noisy")
    try:
        server.start()
        verify(server, files)
        stream = stream_huge(server, huge_sha, args.stream_rate)
        tiny = run_wrk(server, "tiny", TINY, args)
        medium = run_wrk(server, "10mib", MEDIUM, args)
        mixed = run_wrk(server, "mixed", "/", args, mixed_lua)
        peak = server.peak_rss()
        log(f"{name}: peak RSS (VmHWM) of the largest worker {peak / MiB:.1f} MiB")
        return {
            "tiny_rps": tiny["rps"],
            # bytes actually received per second (wrk's Transfer/sec): with 30 connections
            # on 10 MiB bodies few requests complete in a short run, so req/s x size is
            # quantised (even 0 for a slow server) while bytes read are not.
            "medium_mbps": medium["bytes_per_s"] / 1e6,
            "mixed_rps": mixed["rps"],
            "mixed_p99_ms": mixed["p99_ms"],
            "peak_rss_mib": peak / MiB,
            "stream_rss_growth_mib": stream["growth_mib"],
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "detail": {"workers": server.workers, "tiny": tiny, "medium": medium, "mixed": mixed,
                       "stream": stream},
        }
    finally:
        server.stop()


# -- profiling ------------------------------------------------------------------

def summarize_collapsed(path: Path, top: int = 15) -> str:
    """Top functions by self time from py-spy's raw (collapsed stacks) output."""
    self_time: Counter = Counter()
    total_time: Counter = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        samples += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]  # per function, not per line
        self_time[frames[-1]] += n
        for f in set(frames):
            total_time[f] += n
    if not samples:
        return f"(no samples in {path})"
    lines = [f"{'self%':>6} {'total%':>6}  function ({samples} samples)"]
    for func, n in self_time.most_common(top):
        lines.append(f"{100 * n / samples:6.1f} {100 * total_time[func] / samples:6.1f}  {func}")
    return "\n".join(lines)


def profile(files, mixed_lua: Path, args) -> int:
    if not PYSPY.exists():
        raise Broken(f"{PYSPY} missing: pip install -e '.[bench]' (make bench installs it)")
    server = Server("ours-profile", OURS_CMD)
    try:
        server.start()
        verify(server, {p: d for p, d in files.items() if p != MEDIUM})
        for label, path, script in (("tiny", TINY, None), ("mixed", "/", mixed_lua)):
            out = RESULTS / f"profile-{label}.txt"
            cmd = [str(PYSPY), "record", "--pid", str(server.workers[0]), "--duration", str(args.duration),
                   "--rate", "200", "--format", "raw", "-o", str(out)]
            # --nonblocking (no pausing of the worker per sample) cannot unwind C frames
            cmd += ["--native"] if args.native else ["--nonblocking"]
            cmd += shlex.split(os.environ.get("PYSPY_ARGS", ""))
            spy = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(0.5)  # let py-spy attach before the load starts
            res = run_wrk(server, label, path, args, script)
            spy_out, _ = spy.communicate(timeout=args.duration + 60)
            if spy.returncode != 0 or not out.exists():
                raise Broken(f"py-spy failed ({spy.returncode}): {' '.join(cmd)}\n{spy_out}")
            print(f"\n== py-spy, {label} ({res['rps']:.0f} req/s under profiling), {out} ==")
            print(summarize_collapsed(out))
        print()
        return 0
    finally:
        server.stop()


# -- report -------------------------------------------------------------------------

def fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def verdicts(results: dict, args) -> Dict[str, dict]:
    ours, native = results.get("ours"), results.get("native")
    rows = {}
    for key, (label, unit, higher, target) in TARGETS.items():
        o = ours.get(key) if ours else None
        n = native.get(key) if native else None
        ratio = o / n if o is not None and n else None
        if key == "stream_rss_growth_mib":
            ratio = None  # an absolute bound; a ratio against native's ~0 MiB means nothing
            target_text = f"<= {args.rss_limit:g} MiB"
            verdict = None if o is None else ("PASS" if o <= args.rss_limit else "FAIL")
        elif target is not None:
            target_text = f">= {target:g}x"
            verdict = None if ratio is None else ("PASS" if ratio >= target else "FAIL")
        else:
            target_text = "(lower is better)" if not higher else ""
            verdict = None
        rows[key] = {"label": label, "unit": unit, "ours": o, "native": n, "ratio": ratio,
                     "target": target, "target_text": target_text, "verdict": verdict}
    return rows


def print_table(rows: Dict[str, dict]) -> None:
    head = f"{'metric':<26}{'unit':>7}{'ours':>12}{'native':>12}{'ours/native':>13}  {'target':<18}{'verdict'}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows.values():
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        print(f"{r['label']:<26}{r['unit']:>7}{fmt(r['ours']):>12}{fmt(r['native']):>12}{ratio:>13}  "
              f"{r['target_text']:<18}{r['verdict'] or ''}")
    print()


def chart(rows: Dict[str, dict], meta: dict, args) -> Optional[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (pip install -e '.[bench]'): no chart")
        return None
    keys = ["tiny_rps", "medium_mbps", "mixed_rps"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    ratios = [rows[k]["ratio"] or 0 for k in keys]
    colors = ["#2e7d32" if rows[k]["verdict"] == "PASS" else "#c62828" for k in keys]
    bars = ax1.bar(range(len(keys)), ratios, color=colors, width=0.6)
    for i, k in enumerate(keys):
        t = rows[k]["target"]
        ax1.hlines(t, i - 0.4, i + 0.4, colors="black", linestyles="--")
        ax1.annotate(f"target {t:g}x", (i + 0.42, t), va="center", fontsize=8)
        ax1.annotate(f"{ratios[i]:.2f}x", (bars[i].get_x() + bars[i].get_width() / 2, ratios[i]),
                     ha="center", va="bottom", fontsize=9)
    ax1.axhline(1.0, color="grey", lw=0.8)
    ax1.set_xticks(range(len(keys)), [rows[k]["label"] for k in keys])
    ax1.set_ylabel("ours / native (higher is better)")
    ax1.set_ylim(0, max(ratios + [5.0]) * 1.15)
    ax1.set_title("throughput ratio vs target")
    g = rows["stream_rss_growth_mib"]
    vals = [g["ours"] or 0, g["native"] or 0]
    ax2.bar([0, 1], vals, color=["#c62828" if g["verdict"] == "FAIL" else "#2e7d32", "#9e9e9e"], width=0.6)
    ax2.axhline(args.rss_limit, color="black", ls="--")
    ax2.annotate(f"limit {args.rss_limit:g} MiB", (1.3, args.rss_limit), va="bottom", ha="right", fontsize=8)
    for i, v in enumerate(vals):
        ax2.annotate(f"{v:.1f}", (i, v), ha="center", va="bottom", fontsize=9)
    ax2.set_xticks([0, 1], ["ours", "native"])
    ax2.set_ylabel("MiB")
    ax2.set_ylim(0, max(vals + [args.rss_limit]) * 1.2)
    ax2.set_title("worker RSS growth streaming 1 GiB")
    fig.suptitle(f"uwsgi-gluster vs native glusterfs plugin: wrk {meta['duration_s']} s, "
                 f"{meta['connections']} conns, 1 process x 30 threads ({meta['date']}, {meta['commit']})",
                 fontsize=10)
    fig.tight_layout()
    CHART.parent.mkdir(exist_ok=True)
    fig.savefig(CHART, dpi=100)
    plt.close(fig)
    return CHART


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "uwsgi_gluster"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except OSError:
        return "?"


# -- main ---------------------------------------------------------------------------

def parse_args(argv):
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=int(env("DURATION", "10")),
                   help="seconds per wrk run (env DURATION)")
    p.add_argument("--connections", type=int, default=int(env("CONNECTIONS", "30")),
                   help="wrk connections (env CONNECTIONS)")
    p.add_argument("--threads", type=int, default=int(env("WRK_THREADS", "2")), help="wrk threads (env WRK_THREADS)")
    p.add_argument("--only", choices=("ours", "native"), default=env("ONLY") or None,
                   help="bench one server (env ONLY)")
    p.add_argument("--profile", action="store_true", help="py-spy our worker under the 14 B and mixed loads")
    p.add_argument("--native", action="store_true", help="with --profile: py-spy --native (C frames too)")
    p.add_argument("--reseed", action="store_true", help="rewrite every seeded file")
    p.add_argument("--stream-rate", type=float, default=float(env("STREAM_RATE", "400")),
                   help="MB/s cap of the 1 GiB reader, 0 = none (env STREAM_RATE)")
    p.add_argument("--rss-limit", type=float, default=float(env("RSS_LIMIT", "64")),
                   help="MiB of worker RSS growth while streaming 1 GiB that still counts as bounded")
    p.add_argument("--no-chart", action="store_true")
    args = p.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.threads < 1 or args.connections < args.threads:
        p.error("duration, connections, threads must be >= 1 and connections >= threads")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    RESULTS.mkdir(exist_ok=True)
    began = time.monotonic()
    try:
        files = small_files()
        seed(files, args.reseed)
        paths = mixed_paths(files)
        random.Random(SEED).shuffle(paths)
        (RESULTS / "mixed-paths.txt").write_text("\n".join(paths) + "\n")
        mixed_lua = RESULTS / "mixed.lua"
        mixed_lua.write_text(MIXED_LUA % {"paths": RESULTS / "mixed-paths.txt"})
        if args.profile:
            return profile(files, mixed_lua, args)
        t = time.monotonic()
        huge_sha = huge_sha256()
        log(f"sha256 of {HUGE} computed ({time.monotonic() - t:.1f} s)")
        results = {}
        for name, command in (("native", NATIVE_CMD), ("ours", OURS_CMD)):
            if args.only in (None, name):
                results[name] = bench_server(name, command, files, huge_sha, mixed_lua, args)
    except Broken as exc:
        print(f"[bench] BROKEN: {exc}", file=sys.stderr)
        return 1

    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "commit": git_commit(),
            "duration_s": args.duration, "connections": args.connections, "wrk_threads": args.threads,
            "server": "1 process, 30 threads, disable-logging", "cpus": os.cpu_count(),
            "stream_rate_cap_mbps": args.stream_rate, "rss_limit_mib": args.rss_limit,
            "mb": "10^6 bytes", "elapsed_s": round(time.monotonic() - began, 1)}
    rows = verdicts(results, args)
    print_table(rows)
    for name, res in results.items():
        print(f"load average (1 min) around the {name} run: {res['loadavg_before'][0]:.1f} -> "
              f"{res['loadavg_after'][0]:.1f} on {os.cpu_count()} CPUs")
    out = RESULTS / "bench.json"
    out.write_text(json.dumps({"meta": meta, "metrics": rows, "results": results}, indent=2) + "\n")
    log(f"wrote {out}")
    if not args.no_chart and "ours" in results and "native" in results:
        path = chart(rows, meta, args)
        if path:
            log(f"wrote {path}")
    log(f"done in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
