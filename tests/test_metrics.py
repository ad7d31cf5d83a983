"""uwsgi_gluster.metrics and uwsgi_gluster.endpoints as pure units: the metric
names uWSGI gets, what one request adds, the Prometheus text, the front app."""

import re

import pytest

from uwsgi_gluster.config import MountSpec, Settings
from uwsgi_gluster.endpoints import Endpoints, Front
from uwsgi_gluster.metrics import (
    COUNTERS,
    GAUGES,
    MountMetrics,
    MountNames,
    Sink,
    declarations,
    mount_key,
    mount_names,
    render_prometheus,
    user_wants_uwsgi_metrics,
    worker_count,
)

UWSGI_NAME = re.compile(r"[0-9A-Za-z._-]+")  # core/metrics.c uwsgi_validate_metric_name


def settings(*mountpoints):
    return Settings(mounts=tuple(MountSpec(mountpoint=m, volume=f"v{i}") for i, m in enumerate(mountpoints)))


@pytest.mark.parametrize("mountpoint, key", [("/", "root"), ("/docs", "docs"), ("/a/b/", "a_b"),
                                             ("/é x", "__x"), ("/a.b", "a_b")])
def test_mount_key_is_a_valid_uwsgi_name_part(mountpoint, key):
    assert mount_key(mountpoint) == key


def test_colliding_keys_are_made_unique():
    assert [n.key for n in mount_names(settings("/a/b", "/a_b", "/a.b"))] == ["a_b", "a_b_2", "a_b_3"]


def test_declarations_name_every_figure_of_every_mount_validly():
    texts = declarations(settings("/", "/docs"), workers=3)
    names = [dict(item.split("=", 1) for item in t.split(",")) for t in texts]
    assert all(UWSGI_NAME.fullmatch(n["name"]) for n in names)
    by_name = {n["name"]: n for n in names}
    assert len(by_name) == len(names)
    for key in ("root", "docs"):
        for figure in COUNTERS:
            assert by_name[f"glusterfs.{key}.{figure}"]["type"] == "counter"
        for figure in GAUGES:
            gauge = by_name[f"glusterfs.{key}.{figure}"]
            assert (gauge["type"], gauge["collector"]) == ("gauge", "sum")
            assert gauge["children"].split(";") == [f"glusterfs.{key}.{figure}.worker.{w}" for w in (1, 2, 3)]
    assert by_name["glusterfs.open_fds"]["children"].count(";") == 2
    # uWSGI resolves children by name when it registers the parent: children first
    order = [n["name"] for n in names]
    for n in names:
        for child in n.get("children", "").split(";") if "children" in n else ():
            assert order.index(child) < order.index(n["name"])


def test_no_mounts_no_metrics():
    assert declarations(settings(), workers=4) == []


@pytest.mark.parametrize("options, count", [([], 1), ([("processes", "4")], 4),
                                            ([("workers", "2"), ("processes", "3")], 3),
                                            ([("processes", "x")], 1), ([("processes", "0")], 1)])
def test_worker_count(options, count):
    assert worker_count(options) == count


class FakeSink(Sink):
    def __init__(self):
        super().__init__(None)
        self.values = {}

    def inc(self, name, value):
        if value:
            self.values[name] = self.values.get(name, 0) + value

    def set(self, name, value):
        self.values[name] = value

    def get(self, name):
        return self.values.get(name, 0)


class FakeCache:
    hits = misses = revalidations = 0
    size_bytes = 0


class FakeVolume:
    errors = reconnects = 0
    connected = True


def test_one_request_adds_its_class_bytes_and_the_cache_and_volume_deltas():
    sink, cache, volume = FakeSink(), FakeCache(), FakeVolume()
    cache.hits = 5  # before this worker started counting: not pushed
    m = MountMetrics(MountNames("/docs", "v", "docs"), cache, volume, sink, worker=lambda: 2)
    m.started()
    assert sink.values["glusterfs.docs.connected_workers.worker.2"] == 1
    cache.hits, cache.misses, cache.size_bytes, volume.errors = 7, 1, 900, 3
    m.record(206, 100)
    m.record(404, 9)
    m.record(503, 0)
    assert sink.values["glusterfs.docs.requests_2xx"] == 1
    assert sink.values["glusterfs.docs.requests_4xx"] == 1
    assert sink.values["glusterfs.docs.requests_5xx"] == 1
    assert sink.values["glusterfs.docs.bytes_sent"] == 109
    assert sink.values["glusterfs.docs.cache_hits"] == 2
    assert sink.values["glusterfs.docs.cache_misses"] == 1
    assert sink.values["glusterfs.docs.volume_errors"] == 3
    assert sink.values["glusterfs.docs.cache_bytes.worker.2"] == 900


def test_prometheus_text_labels_every_mount_and_sums_worker_gauges():
    sink = FakeSink()
    names = mount_names(settings("/", '/we"ird'))
    sink.values.update({"glusterfs.root.requests_2xx": 4, "glusterfs.root.cache_bytes.worker.1": 10,
                        "glusterfs.root.cache_bytes.worker.2": 5, "glusterfs.open_fds.worker.2": 1})
    text = render_prometheus(names, 2, sink.get).decode()
    assert 'uwsgi_gluster_requests_total{mount="/",volume="v0",class="2xx"} 4\n' in text
    assert 'uwsgi_gluster_cache_bytes{mount="/",volume="v0"} 15\n' in text
    assert 'uwsgi_gluster_requests_total{mount="/we\\"ird",volume="v1",class="5xx"} 0\n' in text
    assert "uwsgi_gluster_open_fds 1\n" in text
    for line in text.splitlines():  # every sample line: name{labels} integer
        assert line.startswith("# ") or re.fullmatch(r'[a-z_]+(\{[^}]*\})? -?[0-9]+', line), line
    assert text.count("# TYPE uwsgi_gluster_requests_total counter") == 1


class FakeHealth:
    def response(self, method):
        return "503 Service Unavailable", (("Content-Type", "text/plain"),), b"" if method == "HEAD" else b"down\n"


def call(app, path, method="GET", script=""):
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": script}, start_response))
    return seen["status"], dict(seen["headers"]), body


def mount_app(environ, start_response):
    start_response("200 OK", [("Content-Length", "5")])
    return [b"hello"]


@pytest.mark.parametrize("script, path", [("", "/_health"), ("/_health", ""), ("/_he", "alth")])
def test_front_answers_the_health_path_whatever_app_uwsgi_picked(script, path):
    endpoints = Endpoints("/_health", FakeHealth(), "/_metrics", lambda: b"m 1\n")
    status, _, body = call(Front(mount_app, endpoints), path, script=script)
    assert (status, body) == ("503 Service Unavailable", b"down\n")


def test_front_metrics_path_and_methods():
    front = Front(mount_app, Endpoints(None, FakeHealth(), "/_metrics", lambda: b"m 1\n"))
    status, headers, body = call(front, "/_metrics")
    assert (status, body) == ("200 OK", b"m 1\n")
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert call(front, "/_metrics", "HEAD")[2] == b""
    assert call(front, "/_metrics", "POST")[0] == "405 Method Not Allowed"
    assert call(front, "/_health")[2] == b"hello"  # health off: the mount's file


def test_front_counts_what_the_mount_answered_head_has_no_body():
    sink = FakeSink()
    counted = MountMetrics(MountNames("/", "v", "root"), FakeCache(), FakeVolume(), sink, worker=lambda: 1)
    front = Front(mount_app, None, counted)
    assert call(front, "/x")[2] == b"hello"
    call(front, "/x", "HEAD")
    assert sink.values["glusterfs.root.requests_2xx"] == 2
    assert sink.values["glusterfs.root.bytes_sent"] == 5


def test_front_metrics_path_without_declared_metrics_is_503_not_zeros():
    front = Front(mount_app, Endpoints(None, FakeHealth(), "/_metrics", lambda: None))
    status, _, body = call(front, "/_metrics")
    assert status == "503 Service Unavailable" and b"not declared" in body


@pytest.mark.parametrize("options,wanted", [
    ([], False),
    ([("gevent", "1000"), ("stats", "127.0.0.1:1717")], False),
    ([("enable-metrics", "true")], True),
    ([("enable-metrics", "false")], False),
    ([("metrics-dir", "/run/m")], True),
    ([("metric", "name=x,type=counter")], True),
    ([("stats-push", "statsd:127.0.0.1:8125")], True),
])
def test_user_wants_uwsgi_metrics(options, wanted):
    assert user_wants_uwsgi_metrics(options) is wanted
