"""Node faults under sustained load: no failed and no corrupt response.

Our server runs in the client namespace (2 workers x 8 threads, the three
nodes as volfile servers, node1 first) and serves files seeded on the replica-3
volume with known sha256; ``tests/loadgen.py`` (8 threads, a fresh connection
per request) checks every body while a fault is injected and undone. Each test
reports its counts (requests, failures, corrupt, max stall) in the
"reliability measurements" section of the terminal summary.
"""

from __future__ import annotations

import time

import pytest

from serving import Load, seed, start_server


@pytest.fixture(scope="module")
def rig(cluster, tmp_path_factory):
    cluster.restore()
    workdir = tmp_path_factory.mktemp("faults")
    manifest = seed(cluster, workdir)
    server = start_server(cluster, workdir)
    try:
        yield server, manifest
    finally:
        server.stop()


def _check(load: Load, server, report, what: str) -> None:
    res = load.result
    report(f"{what}: {res.line()}", requests=res.requests, failed=res.failed, corrupt=res.corrupt,
           max_latency=res.max_latency, max_gap=res.max_gap)
    assert res.requests > 0 and res.ok > 0
    assert (res.failed, res.corrupt) == (0, 0), (
        f"{what}: {res.failed} failed, {res.corrupt} corrupt; kinds {res.kinds}\n"
        f"first failures: {res.first_failures}\nphase marks: {res.marks}\n"
        f"server log (tail):\n{server.log()[-6000:]}")


def test_killed_node_then_restarted(cluster, rig, report):
    """node1 (first volfile server and a brick) loses every process, then comes back."""
    server, manifest = rig
    with Load(cluster, server.port, manifest) as load:
        time.sleep(3)
        load.mark("node1 killed")
        cluster.kill_node(1)
        time.sleep(8)
        load.mark("node1 starting")
        cluster.start_node(1)
        load.mark("node1 back")
        time.sleep(5)
    _check(load, server, report, "kill node1, then start it")


def test_cut_link(cluster, rig, report):
    """node2's link drops every packet; clients notice after network.ping-timeout (5 s)."""
    server, manifest = rig
    with Load(cluster, server.port, manifest) as load:
        time.sleep(3)
        load.mark("node2 cut")
        cluster.cut_node(2)
        time.sleep(12)
        load.mark("node2 healed")
        cluster.heal_node(2)
        time.sleep(5)
    _check(load, server, report, "cut node2's link 12 s, then heal")
    assert load.result.max_latency < 30


def test_glusterd_restart_on_volfile_server(cluster, rig, report):
    """glusterd of node1, where the workers got their volfile, is killed and restarted."""
    server, manifest = rig
    with Load(cluster, server.port, manifest) as load:
        time.sleep(3)
        load.mark("glusterd restarting")
        cluster.restart_glusterd(1)
        load.mark("glusterd back")
        time.sleep(6)
    _check(load, server, report, "restart glusterd of node1")
