"""Every server of the cluster goes down while we serve, then comes back.

While all three nodes are dead the answer is ``503`` with ``Retry-After``
(or, for a small file still fresh in a worker's cache, its correct content),
never a ``404`` for a file that exists; the outage outlasts the 15 s after
which a failing handle is dropped, so recovery goes through a fresh
connection. When the nodes are started again service comes back by itself.
"""

from __future__ import annotations

import collections
import hashlib
import http.client
import re
import time

import pytest

from serving import files, manifest_of, seed, start_server

OUTAGE = 17  # > volume.STALE_AFTER (15 s): the workers drop their handles


@pytest.fixture
def server(cluster, tmp_path):
    cluster.restore()
    seed(cluster, tmp_path)
    srv = start_server(cluster, tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


def _probe(server, manifest, paths):
    """[(path, status, retry_after, body_ok)] for one GET of each path."""
    out = []
    for path in paths:
        try:
            reply = server.get(path)
        except http.client.IncompleteRead:
            # a download in flight when the volume went away ends short: the
            # client can tell (never a complete-looking wrong body)
            out.append((path, "cut", None, False))
            continue
        except OSError as exc:
            out.append((path, f"{type(exc).__name__}", None, False))
            continue
        body_ok = (len(reply.body) == manifest[path]["size"]
                   and hashlib.sha256(reply.body).hexdigest() == manifest[path]["sha256"])
        out.append((path, reply.status, reply.header("Retry-After"), body_ok))
    return out


def test_all_servers_down_then_back(cluster, server, report):
    manifest = manifest_of(files())
    paths = sorted(manifest)
    assert all(status == 200 and ok for _, status, _, ok in _probe(server, manifest, paths))

    for n in (1, 2, 3):
        cluster.kill_node(n)
    t_down = time.monotonic()
    seen = collections.Counter()
    bad = []
    first_503 = None
    while time.monotonic() - t_down < OUTAGE:
        for path, status, retry_after, ok in _probe(server, manifest, paths):
            if status == 503 and retry_after and int(retry_after) >= 1:
                seen["503"] += 1
                first_503 = first_503 or time.monotonic() - t_down
            elif status == 200 and ok:
                seen["200 (cached)"] += 1
            elif status == "cut":
                seen["cut mid-body"] += 1
            else:
                bad.append((round(time.monotonic() - t_down, 2), path, status, retry_after, ok))
        time.sleep(0.2)

    t_up = time.monotonic()
    cluster.restore()  # start all three glusterds, bricks online
    started = time.monotonic() - t_up
    recovered = None
    while time.monotonic() - t_up < 90:
        results = _probe(server, manifest, paths * 2)
        if all(status == 200 and ok for _, status, _, ok in results):
            recovered = time.monotonic() - t_up
            break
        for path, status, retry_after, ok in results:
            if status == 404 or (status == 200 and not ok):
                bad.append(("recovering", path, status, retry_after, ok))
        time.sleep(0.5)
    log = server.log()
    state_lines = [line for line in log.splitlines()
                   if re.search(r"is failing|dropping the handle|no server answered|connected to|answers again", line)]
    report(f"all 3 nodes killed for {OUTAGE} s: {dict(seen)}, first 503 after {first_503 or -1:.1f} s, "
           f"bad {len(bad)}; nodes back in {started:.1f} s, served again "
           f"{(recovered or -1) - started:.1f} s after that", outage_503=seen["503"])
    assert not bad, f"answers other than 503/correct 200: {bad[:20]}\n{log[-6000:]}"
    assert seen["503"] > 0
    assert recovered is not None, f"not serving 90 s after the nodes were started:\n{log[-6000:]}"
    # each state change is logged: failing, handle dropped, (not) reconnected, connected again
    for worker in (1, 2):
        mine = [line for line in state_lines if re.search(rf"worker {worker}\b", line)]
        assert any("is failing (answering 503)" in line for line in mine), state_lines
        assert any("dropping the handle" in line for line in mine), state_lines
        assert sum("connected to node" in line for line in mine) >= 2, state_lines
