#!/usr/bin/env python3
"""A bounded HTTP load loop that checks every body: the reliability tests' client.

    python3 tests/loadgen.py --port P --manifest files.json [--host 127.0.0.1]
        [--threads 8] [--duration 60] [--interval 1] [--timeout 30]

Stdlib only, so it runs anywhere (the cluster tests start it inside the client
network namespace). ``files.json`` maps URL paths to ``{"sha256": HEX, "size": N}``.
Each thread loops: pick a file at random, ``GET`` it on a fresh connection
(HTTP/1.0), and classify the answer:

* ``ok``       200 with exactly the manifest's size and sha256
* ``corrupt``  200 whose body differs (size or digest) from the manifest
* ``failed``   any other status, a connection error, or no complete answer
               within ``--timeout`` seconds

It stops at ``--duration`` seconds or when stdin reaches end of file (the
caller closes it), whichever is first. Every ``--interval`` seconds it prints
one JSON line ``{"type": "interval", "t": MONOTONIC, "requests", "ok",
"failed", "corrupt", "max_latency"}`` and at the end one ``{"type": "summary",
...}`` line with the totals, ``max_latency`` (the slowest request, seconds),
``max_gap`` (the longest time no request completed at all), the failure kinds
and the first failures (``t`` is ``time.monotonic()``, shared with the caller on
the same machine).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import http.client
import json
import random
import sys
import threading
import time

FIRST_FAILURES = 20


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = collections.Counter()
        self.window = collections.Counter()
        self.window_max_latency = 0.0
        self.max_latency = 0.0
        self.kinds = collections.Counter()
        self.first_failures: list = []
        self.start = time.monotonic()
        self.last_done = self.start
        self.max_gap = 0.0

    def record(self, outcome: str, latency: float, detail: str = "", path: str = "") -> None:
        now = time.monotonic()
        with self.lock:
            for counter in (self.total, self.window):
                counter["requests"] += 1
                counter[outcome] += 1
            self.max_latency = max(self.max_latency, latency)
            self.window_max_latency = max(self.window_max_latency, latency)
            if outcome == "ok":
                # a gap is time during which no request succeeded
                self.max_gap = max(self.max_gap, now - self.last_done)
                self.last_done = now
            else:
                self.kinds[detail.split(":")[0]] += 1
                if len(self.first_failures) < FIRST_FAILURES:
                    self.first_failures.append({"t": round(now, 3), "outcome": outcome, "path": path,
                                                "detail": detail, "latency": round(latency, 3)})

    def interval(self) -> dict:
        with self.lock:
            line = {"type": "interval", "t": round(time.monotonic(), 3),
                    **{k: self.window[k] for k in ("requests", "ok", "failed", "corrupt")},
                    "max_latency": round(self.window_max_latency, 3)}
            self.window.clear()
            self.window_max_latency = 0.0
        return line

    def summary(self) -> dict:
        with self.lock:
            now = time.monotonic()
            return {"type": "summary", "t": round(now, 3), "elapsed": round(now - self.start, 3),
                    **{k: self.total[k] for k in ("requests", "ok", "failed", "corrupt")},
                    "max_latency": round(self.max_latency, 3),
                    "max_gap": round(max(self.max_gap, now - self.last_done), 3),
                    "kinds": dict(self.kinds), "first_failures": self.first_failures}


def fetch(host: str, port: int, path: str, timeout: float):
    """(status, sha256 hex, size) of one GET; raises on connection errors."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        digest, size = hashlib.sha256(), 0
        while True:
            chunk = resp.read(1 << 16)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
        return resp.status, digest.hexdigest(), size, resp.getheader("Retry-After")
    finally:
        conn.close()


def worker(args, manifest, paths, stats: Stats, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        path = rng.choice(paths)
        t0 = time.monotonic()
        try:
            status, digest, size, retry_after = fetch(args.host, args.port, path, args.timeout)
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            stats.record("failed", time.monotonic() - t0, f"{type(exc).__name__}: {exc}", path)
            continue
        latency = time.monotonic() - t0
        want = manifest[path]
        if status != 200:
            stats.record("failed", latency, f"HTTP {status}" + (f" Retry-After {retry_after}" if retry_after else ""),
                         path)
        elif size != want["size"] or digest != want["sha256"]:
            stats.record("corrupt", latency, f"body: {size} bytes sha256 {digest[:16]}", path)
        else:
            stats.record("ok", latency)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--no-stdin", action="store_true", help="do not stop at end of stdin")
    args = ap.parse_args(argv)
    with open(args.manifest) as handle:
        manifest = json.load(handle)
    paths = sorted(manifest)
    stats, stop = Stats(), threading.Event()
    if not args.no_stdin:
        def watch_stdin() -> None:
            sys.stdin.read()
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()
    threads = [threading.Thread(target=worker, args=(args, manifest, paths, stats, stop, n), daemon=True)
               for n in range(args.threads)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + args.duration
    next_tick = time.monotonic() + args.interval
    while not stop.is_set() and time.monotonic() < deadline:
        stop.wait(max(0.0, min(next_tick, deadline) - time.monotonic()))
        if time.monotonic() >= next_tick:
            print(json.dumps(stats.interval()), flush=True)
            next_tick += args.interval
    stop.set()
    for thread in threads:
        thread.join(args.timeout + 5)
    print(json.dumps(stats.interval()), flush=True)
    print(json.dumps(stats.summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
