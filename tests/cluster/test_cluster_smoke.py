"""Smoke tests of the 3-node cluster: libgfapi from the client namespace."""

from __future__ import annotations

import os
import time


def _payload(tag: str) -> bytes:
    return f"{tag} {time.time_ns()}\n".encode() + os.urandom(64 * 1024 + 17)


def test_write_and_read_back_through_all_three_servers(cluster, tmp_path):
    name = f"/smoke-{os.getpid()}-{time.time_ns()}"
    data = _payload("write-read")
    with cluster.gfapi_client(log=tmp_path / "gfapi.log") as client:
        client.write(name, data)
        assert client.read(name) == data
    # replica 3: the (synchronous) write reached every node's brick
    for n in (1, 2, 3):
        assert (cluster.brick_path(n) / name.lstrip("/")).read_bytes() == data, f"brick of node{n}"


def test_read_survives_a_killed_node(cluster, tmp_path):
    name = f"/kill-{os.getpid()}-{time.time_ns()}"
    data = _payload("kill")
    with cluster.gfapi_client(log=tmp_path / "mounted.log") as client:
        client.write(name, data)
        cluster.kill_node(1)  # node1 is also the first volfile server
        # a client mounted before the failure keeps reading...
        assert client.read(name, timeout=30) == data
        # ...and a new one mounts through node2 (node1 refuses) and reads
        with cluster.gfapi_client(log=tmp_path / "fresh.log") as fresh:
            assert fresh.read(name, timeout=30) == data
            # two of three bricks are up: writes still have quorum
            fresh.write(name + ".during", data)
        cluster.start_node(1)
        assert client.read(name + ".during", timeout=30) == data


def test_read_survives_a_cut_node(cluster, tmp_path):
    name = f"/cut-{os.getpid()}-{time.time_ns()}"
    data = _payload("cut")
    with cluster.gfapi_client(log=tmp_path / "gfapi.log") as client:
        client.write(name, data)
        cluster.cut_node(3)  # packets dropped: the client notices after network.ping-timeout (5 s)
        t0 = time.monotonic()
        assert client.read(name, timeout=30) == data
        client.write(name + ".during", data)
        stalled = time.monotonic() - t0
        cluster.heal_node(3)
        assert client.read(name + ".during", timeout=30) == data
    assert stalled < 20, f"I/O stalled {stalled:.1f} s with a cut node (ping-timeout is 5 s)"


def test_io_continues_while_glusterd_restarts(cluster, tmp_path):
    name = f"/glusterd-{os.getpid()}-{time.time_ns()}"
    data = _payload("glusterd")
    with cluster.gfapi_client(log=tmp_path / "gfapi.log") as client:
        client.write(name, data)
        cluster.restart_glusterd(1)  # bricks keep running: data path unaffected
        assert client.read(name, timeout=30) == data
        client.write(name + ".after", data)
        assert client.read(name + ".after", timeout=30) == data
