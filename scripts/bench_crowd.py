#!/usr/bin/env python3
"""Many clients, side by side: tuned nginx over FUSE, the native plugin, and ours.

    make bench-crowd                                  # or: .venv/bin/python scripts/bench_crowd.py
    make bench-crowd BENCH_ARGS='--scale 0.25 --duration 15'
    .venv/bin/python scripts/bench_crowd.py --only ours --scenario a

Each side runs in its documented best configuration for many clients:

* nginx: scripts/bench_nginx.py's tuned nginx over a FUSE mount of the volume;
* native: /usr/bin/uwsgi --plugins glusterfs behind uWSGI's ``http`` router
  (which holds slow request heads; the plugin's own async mode segfaults), 2 x 30
  threads;
* ours: ``ini/many-clients.ini`` (gevent mode, README "Many clients").

Two scenarios, for each side in turn, with a small asyncio client in this process
(127.0.0.1 only, bounded in count and time; it raises its own ``ulimit -n``):

(a) ``--readers`` (2,000) clients each download the 10 MiB file at ``--rate``
    (50 KB/s) for ``--duration`` (30 s), plus one short GET of the 14 B file every
    100 ms;
(b) ``--heads`` (1,000) connections that send their request head one header line
    every 2 s and never finish it, plus the same short GETs.

The short GETs come from a process of their own (its own event loop): a loop
that also carries 2,000 readers is late to see its own answers on a busy
2-core machine (seconds, measured), and its short-GET latencies measured that
lateness rather than the server's. The crowd's loop lag (how late a 10 ms
sleep wakes) is reported beside, so a starved load client shows.

Per side and scenario: short-GET success rate (200 with the right 14 bytes within
5 s) and p50/p99 latency, bytes/s delivered to the slow readers, how many got any
byte, the longest time a reader waited for a byte while it was ready to take one,
and the largest RSS and fd count of any worker (nginx: a worker; its FUSE client's
RSS is reported beside). ``--scale`` multiplies the client counts (a busy machine).

Writes ``bench-results/bench-crowd.json`` and prints a table (README's "Many
clients" table is copied from it). Exit status 0 when the report was produced
(targets met or not), 1 when a side cannot start or serves wrong bytes, 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import os
import random
import resource
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench
import bench_nginx
from bench import MEDIUM, MEDIUM_SIZE, RESULTS, ROOT, SEED, TINY, TINY_DATA, Broken, log

HOST = "127.0.0.1"
SHORT_INTERVAL = 0.1
SHORT_TIMEOUT = 5.0
HEAD_LINE_INTERVAL = 2.0
READ_CHUNK = 16 << 10
RCVBUF = 64 << 10
MAX_CLIENTS = 20000  # bound on --readers / --heads whatever --scale says
#: a FUSE mount of our own (bench_nginx's directory may be mounted and unmounted by
#: a `make bench-nginx` running meanwhile)
FUSE_DIR = Path("/run/uwsgi-gluster-bench/fuse-crowd")

#: the target the issue sets for ours, per scenario
TARGETS = {"a": {"short_ok": 1.0, "p99_ms": 250, "longest_wait_s": 5.0, "rss_mb": 150},
           "b": {"short_ok": 1.0, "p99_ms": 100, "rss_mb": 150}}

NATIVE_INI = """\
; written by scripts/bench_crowd.py: the native plugin's best for many clients
; (the http router holds slow request heads; its async mode segfaults)
[uwsgi]
; Debian's uwsgi-core has the http router as a plugin (corerouter + http)
plugins = corerouter, http, glusterfs
http = 127.0.0.1:{{port}}
http-modifier1 = 27
socket = 127.0.0.1:{backend}
glusterfs-mount = mountpoint=/,volume={{volume}},server=127.0.0.1:0
master = true
processes = 2
threads = 30
listen = 4096
disable-logging = true
"""


def ours_ini() -> str:
    """ini/many-clients.ini on the bench volume and port (nothing else changed),
    as a template for bench.Server ({port}, {volume})."""
    text = (ROOT / "ini" / "many-clients.ini").read_text().replace("{", "{{").replace("}", "}}")
    text = text.replace("http-socket = :9090", "http-socket = 127.0.0.1:{port}")
    return text.replace("volume=demo", "volume={volume}") + "disable-logging = true\n"


# -- the asyncio client -----------------------------------------------------------------

class Stats:
    def __init__(self) -> None:
        self.lags: List[float] = []  # how late the crowd's loop woke from 10 ms sleeps
        self.short: List[Optional[float]] = []  # latency in s, None = failed
        self.short_errors: Dict[str, int] = {}
        self.bytes = 0
        self.readers_with_bytes = 0
        self.longest_wait = 0.0
        self.reader_errors: Dict[str, int] = {}
        self.heads_open = 0


def _sock() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # no autotuned MBs on loopback
    sock.setblocking(False)
    return sock


async def _connect(port: int) -> socket.socket:
    sock = _sock()
    try:
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
    except BaseException:
        sock.close()
        raise
    return sock


async def short_get(port: int, stats: Stats) -> None:
    started = time.monotonic()
    loop = asyncio.get_running_loop()
    sock = None
    try:
        async with asyncio.timeout(SHORT_TIMEOUT):
            sock = await _connect(port)
            await loop.sock_sendall(sock, f"GET {TINY} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            data = b""
            while True:
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if head.split(b" ", 2)[1:2] == [b"200"] and body == TINY_DATA:
            stats.short.append(time.monotonic() - started)
            return
        why = f"status {head.split(b' ', 2)[1:2]}" if head else "empty answer"
    except TimeoutError:
        why = "timeout"
    except OSError as exc:
        why = type(exc).__name__
    finally:
        if sock is not None:
            sock.close()
    stats.short.append(None)
    stats.short_errors[why] = stats.short_errors.get(why, 0) + 1


async def short_gets(port: int, stats: Stats, until: float) -> None:
    tasks = []
    while time.monotonic() < until:
        tasks.append(asyncio.create_task(short_get(port, stats)))
        await asyncio.sleep(SHORT_INTERVAL)
    await asyncio.gather(*tasks)


def _short_get_process(port: int, until: float, out) -> None:
    """The short GETs, in a process of their own; sends (latencies, errors) on ``out``."""
    stats = Stats()
    asyncio.run(short_gets(port, stats, until))
    out.send((stats.short, stats.short_errors))
    out.close()


class ShortGetProcess:
    """One short GET every 100 ms until ``until`` (CLOCK_MONOTONIC, shared by
    every process), from a forked process with its own event loop. Start it
    before this process runs an event loop."""

    def __init__(self, port: int, until: float) -> None:
        context = multiprocessing.get_context("fork")
        self._results, child_end = context.Pipe(duplex=False)
        self._proc = context.Process(target=_short_get_process, args=(port, until, child_end), daemon=True)
        self._proc.start()
        child_end.close()
        self._until = until

    def collect(self, stats: Stats) -> None:
        """Wait for the process's results (blocking) and put them in ``stats``."""
        try:
            if self._results.poll(max(self._until - time.monotonic(), 0) + SHORT_TIMEOUT + 30):
                stats.short, stats.short_errors = self._results.recv()
            else:
                stats.short_errors["short-GET process gave no result"] = 1
        except EOFError:
            stats.short_errors["short-GET process died"] = 1
        finally:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()


async def lag_meter(stats: Stats, until: float) -> None:
    """How late this loop wakes from 10 ms sleeps (the load client's own lag)."""
    while time.monotonic() < until:
        asked = time.monotonic()
        await asyncio.sleep(0.01)
        stats.lags.append(time.monotonic() - asked - 0.01)


async def slow_reader(port: int, rate: float, until: float, stats: Stats) -> None:
    """GET the 10 MiB file and take it at ``rate`` bytes/s until ``until``."""
    loop = asyncio.get_running_loop()
    sock = None
    got = 0
    try:
        sock = await _connect(port)
        await loop.sock_sendall(sock, f"GET {MEDIUM} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
        started = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= until:
                break
            ahead = got - rate * (now - started)
            if ahead > 0:  # paced: not ready for bytes, so this is no waiting for the server
                await asyncio.sleep(min(ahead / rate, until - now))
                continue
            asked = time.monotonic()
            try:
                async with asyncio.timeout(max(until - asked, 0.001)):
                    chunk = await loop.sock_recv(sock, READ_CHUNK)
            except TimeoutError:
                stats.longest_wait = max(stats.longest_wait, time.monotonic() - asked)
                break
            stats.longest_wait = max(stats.longest_wait, time.monotonic() - asked)
            if not chunk:
                if got < MEDIUM_SIZE:  # headers + body: ended early
                    stats.reader_errors["closed early"] = stats.reader_errors.get("closed early", 0) + 1
                break
            got += len(chunk)
            stats.bytes += len(chunk)
    except OSError as exc:
        stats.reader_errors[type(exc).__name__] = stats.reader_errors.get(type(exc).__name__, 0) + 1
    finally:
        if sock is not None:
            sock.close()
        if got:
            stats.readers_with_bytes += 1


async def slow_head(port: int, until: float, stats: Stats, index: int) -> None:
    """Open a request head and add one header line every 2 s, never ending it."""
    loop = asyncio.get_running_loop()
    sock = None
    try:
        sock = await _connect(port)
        await loop.sock_sendall(sock, f"GET {TINY} HTTP/1.1\r\nHost: {HOST}\r\n".encode())
        stats.heads_open += 1
        line = 0
        while time.monotonic() + HEAD_LINE_INTERVAL < until:
            await asyncio.sleep(HEAD_LINE_INTERVAL)
            line += 1
            await loop.sock_sendall(sock, f"X-Slow-{index}-{line}: y\r\n".encode())
        await asyncio.sleep(max(until - time.monotonic(), 0))
    except OSError:
        pass  # the server may close a slow head: that is its right, not a failure here
    finally:
        if sock is not None:
            sock.close()


async def _ramp(coros, seconds: float) -> List[asyncio.Task]:
    """Start the coroutines spread over ``seconds`` (no SYN burst past the backlog)."""
    coros = list(coros)
    tasks = []
    step = seconds / max(len(coros), 1)
    for coro in coros:
        tasks.append(asyncio.create_task(coro))
        await asyncio.sleep(step)
    return tasks


def ramp_seconds(args) -> float:
    return min(5.0, args.duration / 4)


async def scenario(kind: str, port: int, args, sampler, until: float) -> Stats:
    """The crowd of scenario ``kind`` until ``until`` (the short GETs run in a
    :class:`ShortGetProcess` meanwhile)."""
    stats = Stats()
    ramp = ramp_seconds(args)
    sampling = asyncio.create_task(sampler.run(until))
    lagging = asyncio.create_task(lag_meter(stats, until))
    if kind == "a":
        crowd = _ramp((slow_reader(port, args.rate, until, stats) for _ in range(args.readers)), ramp)
    else:
        crowd = _ramp((slow_head(port, until, stats, i) for i in range(args.heads)), ramp)
    started = time.monotonic()
    tasks = await crowd
    await asyncio.gather(*tasks, sampling, lagging)
    stats.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return stats


# -- process sampling ------------------------------------------------------------------

def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


class Sampler:
    """Largest RSS and fd count of any of ``pids()`` (and RSS of ``extra()``), each second."""

    def __init__(self, pids, extra=lambda: []) -> None:
        self.pids = pids
        self.extra = extra
        self.rss = 0
        self.fds = 0
        self.extra_rss = 0

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            for pid in self.pids():
                self.rss = max(self.rss, bench.proc_status(pid, "VmRSS") or 0)
                self.fds = max(self.fds, fd_count(pid))
            self.extra_rss = max(self.extra_rss, sum(bench.proc_status(p, "VmRSS") or 0 for p in self.extra()))
            await asyncio.sleep(1.0)


def uwsgi_workers(server) -> List[int]:
    """The live worker processes (a worker respawned by the master is found again)."""
    return [p for p in bench_nginx.children(server.proc.pid) if p != server.proc.pid]


# -- one side ------------------------------------------------------------------------

def percentile(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def summarize(kind: str, stats: Stats, sampler: Sampler) -> dict:
    ok = [v for v in stats.short if v is not None]
    row = {
        "short_total": len(stats.short),
        "short_ok": len(ok) / len(stats.short) if stats.short else 0.0,
        "short_errors": stats.short_errors,
        "p50_ms": None if not ok else round(statistics.median(ok) * 1000, 1),
        "p99_ms": None if not ok else round(percentile(ok, 0.99) * 1000, 1),
        "worker_rss_mb": round(sampler.rss / 1e6, 1),
        "worker_fds": sampler.fds,
        "client_lag_p99_ms": None if not stats.lags else round(percentile(stats.lags, 0.99) * 1000, 1),
    }
    if sampler.extra_rss:
        row["fuse_client_rss_mb"] = round(sampler.extra_rss / 1e6, 1)
    if kind == "a":
        row.update({
            "slow_bytes_per_s": round(stats.bytes / stats.elapsed),  # type: ignore[attr-defined]
            "readers_with_bytes": stats.readers_with_bytes,
            "longest_wait_s": round(stats.longest_wait, 2),
            "reader_errors": stats.reader_errors,
        })
    else:
        row["heads_opened"] = stats.heads_open
    return row


def check_bytes(port: int) -> None:
    for path, data in ((TINY, TINY_DATA), (MEDIUM, medium_data())):
        status, size, sha = bench.get(port, path, timeout=60)
        import hashlib

        if status != 200 or sha != hashlib.sha256(data).hexdigest():
            raise Broken(f"GET {path} on port {port}: status {status}, {size} bytes, not the file's")


_MEDIUM: List[bytes] = []


def medium_data() -> bytes:
    """The bench volume's 10 MiB file, as scripts/bench.py seeds it."""
    if not _MEDIUM:
        _MEDIUM.append(random.Random(f"{SEED}-medium").randbytes(MEDIUM_SIZE))
    return _MEDIUM[0]


def run_side(name: str, args) -> dict:
    if name == "nginx":
        bench_nginx.FUSE_DIR = FUSE_DIR  # read at call time by mount_fuse, Nginx, fuse_client_pids
        bench_nginx.mount_fuse()
        server = bench_nginx.Nginx()
        pids = lambda: server.workers  # noqa: E731
        extra = bench_nginx.fuse_client_pids
    else:
        command = bench.OURS_CMD if name == "ours" else ["/usr/bin/uwsgi"]
        ini = ours_ini() if name == "ours" else NATIVE_INI.format(backend=bench.free_port())
        server = bench.Server(name, command, ini)
        pids = lambda: uwsgi_workers(server)  # noqa: E731
        extra = lambda: []  # noqa: E731
    results = {}
    for kind in args.scenario:  # a fresh server per scenario: RSS is not carried over
        try:
            server.start()
            check_bytes(server.port)
            if os.getloadavg()[0] > (os.cpu_count() or 1):
                log(f"WARNING: load average {os.getloadavg()[0]:.1f} before {name} ({kind}): noisy numbers")
            sampler = Sampler(pids, extra)
            until = time.monotonic() + ramp_seconds(args) + args.duration
            short = ShortGetProcess(server.port, until)
            stats = asyncio.run(scenario(kind, server.port, args, sampler, until))
            short.collect(stats)
            results[kind] = summarize(kind, stats, sampler)
            log(f"{name} ({kind}): {json.dumps(results[kind])}")
        finally:
            server.stop()
        time.sleep(1)
    return results


def verdicts(ours: dict) -> Dict[str, bool]:
    out = {}
    for kind, targets in TARGETS.items():
        row = ours.get(kind)
        if not row:
            continue
        out[f"{kind}: short GETs 100%"] = row["short_ok"] >= targets["short_ok"]
        out[f"{kind}: p99 < {targets['p99_ms']} ms"] = row["p99_ms"] is not None and row["p99_ms"] < targets["p99_ms"]
        out[f"{kind}: worker RSS < {targets['rss_mb']} MB"] = row["worker_rss_mb"] < targets["rss_mb"]
        if "longest_wait_s" in targets:
            out[f"{kind}: no reader waits > 5 s"] = row["longest_wait_s"] <= targets["longest_wait_s"]
    return out


def print_table(results: dict) -> None:
    keys = ["short_ok", "p50_ms", "p99_ms", "slow_bytes_per_s", "readers_with_bytes", "longest_wait_s",
            "heads_opened", "worker_rss_mb", "worker_fds", "fuse_client_rss_mb", "client_lag_p99_ms"]
    for kind in ("a", "b"):
        sides = [s for s in results if kind in results[s]]
        if not sides:
            continue
        print(f"\nscenario ({kind})")
        print(f"{'':22}" + "".join(f"{s:>14}" for s in sides))
        for key in keys:
            if not any(key in results[s][kind] for s in sides):
                continue
            print(f"{key:22}" + "".join(f"{str(results[s][kind].get(key, '-')):>14}" for s in sides))


def raise_nofile(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="nginx,native,ours", help="sides, comma-separated (default all three)")
    p.add_argument("--scenario", default="ab", help="a, b or ab (default ab)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply the client counts (default 1)")
    p.add_argument("--readers", type=int, default=2000)
    p.add_argument("--heads", type=int, default=1000)
    p.add_argument("--rate", type=float, default=50_000, help="bytes/s per slow reader (default 50,000)")
    p.add_argument("--duration", type=float, default=float(os.environ.get("DURATION") or 30))
    args = p.parse_args(argv)
    args.only = [s for s in args.only.split(",") if s]
    if set(args.only) - {"nginx", "native", "ours"} or set(args.scenario) - {"a", "b"} or not args.scenario:
        p.error("--only takes nginx, native, ours; --scenario a, b or ab")
    args.readers = min(MAX_CLIENTS, max(1, int(args.readers * args.scale)))
    args.heads = min(MAX_CLIENTS, max(1, int(args.heads * args.scale)))
    if not 1 <= args.duration <= 600 or args.rate <= 0:
        p.error("--duration must be 1-600 s, --rate positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    limit = raise_nofile(max(args.readers, args.heads) * 2 + 1024)
    if limit < max(args.readers, args.heads) + 256:
        log(f"ulimit -n is {limit}: too low for {max(args.readers, args.heads)} clients")
        return 2
    RESULTS.mkdir(exist_ok=True)
    bench.seed({TINY: TINY_DATA, MEDIUM: medium_data()}, reseed=False, huge=False)
    results: Dict[str, dict] = {}
    try:
        for side in args.only:
            log(f"--- {side}: {args.readers} readers at {args.rate:g} B/s, {args.heads} slow heads, "
                f"{args.duration:g} s each")
            results[side] = run_side(side, args)
    except Broken as exc:
        log(f"BROKEN: {exc}")
        return 1
    finally:
        bench_nginx.FUSE_DIR = FUSE_DIR
        bench_nginx.umount_fuse()
    print_table(results)
    ok = verdicts(results.get("ours", {}))
    for what, passed in ok.items():
        print(f"ours, {what}: {'PASS' if passed else 'FAIL'}")
    out = RESULTS / "bench-crowd.json"
    out.write_text(json.dumps({
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": bench.git_commit(), "cpus": os.cpu_count(), "loadavg_end": os.getloadavg(),
        "args": {k: v for k, v in vars(args).items()}, "results": results, "targets": ok,
    }, indent=2))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
