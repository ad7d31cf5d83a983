"""Operating a real server (issue 13): our metrics in uWSGI's stats server and
on the Prometheus path, under concurrent load from several workers; the health
path following a private volume that is stopped and started again."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

from support import ROOT, free_port, ours, request
from uwsgi_gluster import gfapi
from uwsgi_gluster.seeding import write_tree

OPSVOL = "opsvol"  # private to these tests: stopped and started, never a shared unbit00x volume


def stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
        return json.load(reply)


def prometheus(port: int) -> dict:
    text = request(port, "GET", "/_metrics").body.decode()
    samples = [line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")]
    return {name: int(value) for name, value in samples}


@pytest.fixture(scope="module")
def server(volumes, tmp_path_factory):
    stats_port = free_port()
    ini = ("[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nhttp-socket-modifier1 = 27\nmaster = true\n"
           "processes = 3\nthreads = 4\nmanage-script-name = true\n"
           f"stats = 127.0.0.1:{stats_port}\nstats-http = true\n"
           "glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0\n"
           "glusterfs-mount = mountpoint=/two,volume=unbit002,server=127.0.0.1:0\n"
           "glusterfs-health = /_health\nglusterfs-metrics = /_metrics\n")
    with ours(ini, tmp_path_factory.mktemp("operations")).start() as srv:
        srv.stats_port = stats_port
        yield srv


def test_stats_server_names_the_root_mount_slash_not_empty(server):
    """uWSGI's Python loader named the first app of uwsgi.applications ''
    (it copies strlen() of the mountpoint it was loaded under, empty with
    `module =`): the stats server showed the / mount as ''."""
    mountpoints = {app["mountpoint"] for worker in stats(server.stats_port)["workers"] for app in worker["apps"]}
    assert mountpoints == {"/", "/two"}


def stats_gauge_settles(stats_port: int, name: str, value: int, limit: float = 15.0) -> bool:
    """Does gauge ``name`` in uWSGI's stats JSON reach ``value`` within ``limit`` s
    (the master sums the workers' values on its own schedule)?"""
    deadline = time.monotonic() + limit
    while stats(stats_port)["metrics"][name]["value"] != value:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_metrics_count_every_request_of_every_worker_under_load(server, report):
    before = prometheus(server.port)
    root = '{mount="/",volume="unbit001"'
    paths = ["/hello.txt"] * 300 + ["/movie.mp4"] * 60 + ["/missing-ops"] * 90 + ["/two/whoami.txt"] * 50
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda p: request(server.port, "GET", p).status, paths))
    assert statuses.count(200) == 410 and statuses.count(404) == 90
    time.sleep(1.5)  # the master sums the workers' gauges once a second
    after = prometheus(server.port)
    data = stats(server.stats_port)
    metrics = {name: value["value"] for name, value in data["metrics"].items()}

    def delta(key):
        return after[key] - before.get(key, 0)

    assert delta(f'uwsgi_gluster_requests_total{root},class="2xx"}}') == 360
    assert delta(f'uwsgi_gluster_requests_total{root},class="4xx"}}') == 90
    assert delta('uwsgi_gluster_requests_total{mount="/two",volume="unbit002",class="2xx"}') == 50
    assert delta(f"uwsgi_gluster_bytes_sent_total{root}}}") == 300 * 14 + 60 * 70000 + 90 * len(b"Not Found")
    hits = delta(f"uwsgi_gluster_cache_hits_total{root}}}")
    misses = delta(f"uwsgi_gluster_cache_misses_total{root}}}")
    assert hits + misses >= 450 and hits > 0
    # the same values in uWSGI's own stats JSON (what every pusher sends)
    assert metrics["glusterfs.root.requests_2xx"] == after[f'uwsgi_gluster_requests_total{root},class="2xx"}}']
    two = '{mount="/two",volume="unbit002"}'
    assert metrics["glusterfs.two.bytes_sent"] == after[f"uwsgi_gluster_bytes_sent_total{two}"]
    assert metrics["glusterfs.root.connected_workers"] == 3
    # gauges move on their own (background revalidation, evictions), and the
    # master sums the workers' values once a second: both sides report, not equal
    assert metrics["glusterfs.root.cache_bytes"] > 0 and after[f"uwsgi_gluster_cache_bytes{root}}}"] > 0
    assert stats_gauge_settles(server.stats_port, "glusterfs.open_fds", 0)
    workers = [w for w in data["workers"] if w["requests"]]
    assert len(workers) > 1, "the load should reach several workers"
    report(f"{len(paths)} requests over {len(workers)} workers; cache hits {hits}, misses {misses}")


def test_open_fds_gauge_returns_to_zero_after_a_streamed_file(server, volumes):
    """A worker set its gauges when a response started, so the glfd of a file
    streamed after that stayed counted until that worker's next request; now
    a uWSGI timer refreshes them every second."""
    name = f"/ops-stream-{os.getpid()}.bin"
    data = os.urandom(3 << 20)  # over the cache's per-file limit: streamed from a glfd
    write_tree(volumes["unbit001"], {name: data})
    try:
        assert request(server.port, "GET", name).body == data
        deadline = time.monotonic() + 30
        while prometheus(server.port)["uwsgi_gluster_open_fds"] != 0:
            assert time.monotonic() < deadline, "open_fds never went back to 0"
            time.sleep(0.2)
        assert stats_gauge_settles(server.stats_port, "glusterfs.open_fds", 0)
    finally:
        gfapi.unlink(volumes["unbit001"], name)


def _health_code(port: int) -> int:
    return request(port, "GET", "/_health", timeout=10).status


def _wait_for(port: int, code: int, limit: float = 60.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if _health_code(port) == code:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"health never answered {code} within {limit} s")


def gluster(*args: str) -> None:
    subprocess.run(["gluster", "--mode=script", "volume", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def opsvol(volumes):
    subprocess.run([str(ROOT / "scripts/gluster-env"), "volume", OPSVOL], check=True)
    yield OPSVOL
    subprocess.run([str(ROOT / "scripts/gluster-env"), "volume", OPSVOL], check=True)  # started again


def test_health_follows_a_volume_that_goes_away_and_returns(opsvol, tmp_path, report):
    ini = ("[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nhttp-socket-modifier1 = 27\nmaster = true\n"
           "processes = 2\nthreads = 4\nmanage-script-name = true\nglusterfs-health = /_health\n"
           "glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0\n"
           f"glusterfs-mount = mountpoint=/ops,volume={opsvol},server=127.0.0.1:0\n")
    with ours(ini, tmp_path).start() as srv:
        reply = request(srv.port, "GET", "/_health")
        assert reply.status == 200 and reply.body == b"/ unbit001: ok\n/ops opsvol: ok\n"
        assert reply.header("Cache-Control") == "no-store"
        downs, ups = [], []
        for _ in range(2):
            gluster("stop", opsvol)
            downs.append(_wait_for(srv.port, 503))
            reply = request(srv.port, "GET", "/_health")
            assert reply.status == 503 and reply.header("Retry-After") == "1"
            lines = reply.body.decode().splitlines()
            assert len(lines) == 1 and lines[0].startswith("/ops opsvol: "), lines  # only the failing mount
            assert request(srv.port, "HEAD", "/_health").body == b""
            assert request(srv.port, "GET", "/hello.txt").status == 200  # the other mount keeps serving
            gluster("start", opsvol)
            ups.append(_wait_for(srv.port, 200))
        report("health 503 after volume stop returned: " + ", ".join(f"{t:.2f} s" for t in downs)
               + "; 200 after volume start returned: " + ", ".join(f"{t:.2f} s" for t in ups))
        assert re.search(r"\[glusterfs\] .*opsvol.*is failing", srv.log())
