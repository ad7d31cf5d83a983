#!/usr/bin/env python3
"""Seed the demo volume through libgfapi: `scripts/seed.py demo`."""

import sys

from uwsgi_gluster.seeding import connect, write_tree

INDEX = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>uwsgi-gluster demo</title>
<link rel="stylesheet" href="/style.css"></head>
<body><h1>Served from GlusterFS through libgfapi</h1>
<ul><li><a href="/hello.txt">hello.txt</a></li>
<li><a href="/docs/read%20me.txt">docs/read me.txt</a></li>
<li><a href="/data.json">data.json</a></li></ul></body></html>
"""

DEMO = {
    "/index.html": INDEX,
    "/style.css": b"body { font-family: sans-serif; margin: 2em; }\n",
    "/hello.txt": b"Hello, Gluster\n",
    "/data.json": b'{"served_by": "uwsgi-gluster"}\n',
    "/docs/read me.txt": b"A file whose name has a space.\n",
}


def main(argv):
    volume = argv[1] if len(argv) > 1 else "demo"
    fs = connect(volume)
    write_tree(fs, DEMO)
    print(f"[seed] wrote {len(DEMO)} files to volume {volume}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
