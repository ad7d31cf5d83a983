"""A libgfapi client for the cluster tests, run inside the client namespace.

    ip netns exec ugc-client python3 tests/cluster/gfapi_client.py \\
        --volume rep3 --server node1 --server node2 --server node3 --log FILE

It mounts the volume through ``uwsgi_gluster.gfapi`` (all servers given become
volfile servers, in order), prints ``{"ok": true, "op": "mounted"}`` and then
answers one JSON request per stdin line with one JSON line on stdout:

    {"op": "write", "path": "/f", "data": "<base64>"}  -> {"ok": true}
    {"op": "read", "path": "/f"}                        -> {"ok": true, "data": "<base64>"}
    {"op": "exit"}                                      -> process ends

Failures answer ``{"ok": false, "errno": N, "error": "..."}``. The process ends
without ``glfs_fini`` (it takes ~10 s and only tears down connections).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from uwsgi_gluster import gfapi
from uwsgi_gluster.responder import read_all

GF_LOG_INFO = 7


def reply(**fields) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def mount(volume: str, servers: list[str], port: int, logfile: str) -> int:
    fs = gfapi.new(volume)
    for host in servers:
        gfapi.set_volfile_server(fs, "tcp", host, port)
    gfapi.set_logging(fs, logfile, GF_LOG_INFO)
    gfapi.init(fs)
    return fs


def write(fs: int, path: str, data: bytes) -> None:
    fd = gfapi.create_file(fs, path)
    try:
        gfapi.pwrite_all(fd, data)
    finally:
        gfapi.close(fd)


def read(fs: int, path: str) -> bytes:
    fd = gfapi.open_file(fs, path)
    try:
        return read_all(fd, gfapi.fstat(fd).st_size)
    finally:
        gfapi.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--volume", required=True)
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("--port", type=int, default=24007)
    ap.add_argument("--log", default="/dev/null")
    args = ap.parse_args()
    try:
        fs = mount(args.volume, args.server, args.port, args.log)
    except OSError as exc:
        reply(ok=False, op="mounted", errno=exc.errno, error=str(exc))
        os._exit(1)
    reply(ok=True, op="mounted")
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "exit":
            break
        try:
            if op == "write":
                write(fs, req["path"], base64.b64decode(req["data"]))
                reply(ok=True, op=op)
            elif op == "read":
                reply(ok=True, op=op, data=base64.b64encode(read(fs, req["path"])).decode())
            else:
                reply(ok=False, op=op, errno=0, error=f"unknown op {op!r}")
        except OSError as exc:
            reply(ok=False, op=op, errno=exc.errno, error=str(exc))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
