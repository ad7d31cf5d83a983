#!/usr/bin/env python3
"""Which way keeps a gevent hub free during libgfapi reads: a thread pool or glfs_pread_async?

    .venv/bin/python scripts/bench_aio.py [--readers 200] [--chunk 65536] [--volume unbit001]

Outside uWSGI, in one gevent hub: ``--readers`` greenlets each read PATH (default
the test corpus's /sizes/10MiB.bin) from start to end in ``--chunk`` reads, once
with each method:

* ``pool``: ``glfs_pread`` on a gevent ThreadPool of ``--threads`` threads (what
  uwsgi_gluster/aio.py does);
* ``async``: ``glfs_pread_async`` with a ctypes completion callback that writes a
  byte to a pipe the greenlet waits on (what the native plugin does in C).

Meanwhile a ticker greenlet asks the hub for a 1 ms sleep in a loop and records how
late it wakes: the hub latency other connections would see. Prints MB/s, the
process's CPU seconds per GB, and the ticker's p50/p99/max lateness per method.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent
from gevent.os import nb_read
from gevent.threadpool import ThreadPool

from uwsgi_gluster import gfapi
from uwsgi_gluster.seeding import connect

CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p)
pread_async = gfapi._declare("glfs_pread_async", ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_size_t, gfapi.c_off_t, ctypes.c_int, CALLBACK, ctypes.c_void_p)


def read_pool(pool: ThreadPool, fd: int, size: int, chunk: int) -> int:
    done = 0
    while done < size:
        data = pool.apply(gfapi.pread_bytes, (fd, done, chunk))
        if not data:
            break
        done += len(data)
    return done


def read_async(fd: int, size: int, chunk: int) -> int:
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    buf = ctypes.create_string_buffer(chunk)
    result = [0]

    def done_cb(_fd, ret, _pre, _post, _data):
        result[0] = ret
        os.write(wfd, b"\1")

    callback = CALLBACK(done_cb)  # kept alive for the whole loop
    done = 0
    try:
        while done < size:
            if pread_async(fd, buf, chunk, done, 0, callback, None):
                raise OSError(ctypes.get_errno(), "glfs_pread_async")
            nb_read(rfd, 1)  # the greenlet waits on the hub for the completion
            if result[0] <= 0:
                break
            data = buf.raw[:result[0]]  # the copy a response would need anyway
            done += len(data)
    finally:
        os.close(rfd)
        os.close(wfd)
    return done


def ticker(lateness: list, stop: list) -> None:
    while not stop:
        asked = time.monotonic()
        gevent.sleep(0.001)
        lateness.append(time.monotonic() - asked - 0.001)


def run(method: str, fs: int, path: str, args) -> dict:
    size = gfapi.stat(fs, path).st_size
    fds = [gfapi.open_file(fs, path) for _ in range(args.readers)]
    pool = ThreadPool(args.threads)
    lateness: list = []
    stop: list = []
    tick = gevent.spawn(ticker, lateness, stop)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    if method == "pool":
        jobs = [gevent.spawn(read_pool, pool, fd, size, args.chunk) for fd in fds]
    else:
        jobs = [gevent.spawn(read_async, fd, size, args.chunk) for fd in fds]
    gevent.joinall(jobs, raise_error=True)
    elapsed = time.monotonic() - started
    stop.append(1)
    tick.join()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    pool.kill()
    for fd in fds:
        gfapi.close(fd)
    total = sum(job.value for job in jobs)
    if total != size * args.readers:
        raise SystemExit(f"{method}: read {total} bytes, expected {size * args.readers}")
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    late = sorted(lateness)
    return {"MB/s": round(total / elapsed / 1e6, 1), "cpu_s_per_GB": round(cpu / (total / 1e9), 2),
            "hub_late_p50_ms": round(statistics.median(late) * 1e3, 2),
            "hub_late_p99_ms": round(late[int(0.99 * (len(late) - 1))] * 1e3, 2),
            "hub_late_max_ms": round(late[-1] * 1e3, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--volume", default="unbit001")
    p.add_argument("--path", default="/sizes/10MiB.bin")
    p.add_argument("--readers", type=int, default=200)
    p.add_argument("--chunk", type=int, default=64 << 10)
    p.add_argument("--threads", type=int, default=12)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    fs = connect(args.volume)
    for round_ in range(args.rounds):
        for method in ("pool", "async"):
            print(f"round {round_ + 1} {method:5}: {run(method, fs, args.path, args)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
