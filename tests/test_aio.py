"""uwsgi_gluster.aio: which loop runs, the wait bound, adaptive read sizes (pure units)."""

import importlib.util

import pytest

from uwsgi_gluster import aio, check


@pytest.mark.parametrize("options,expected", [
    ([], (False, 4)),
    ([("threads", "30")], (False, 4)),
    ([("gevent", "100")], (True, 4)),
    ([("gevent", "0")], (False, 4)),
    ([("gevent", "100"), ("socket-timeout", "9")], (True, 9)),
    ([("gevent", "100"), ("socket-timeout", "9"), ("glusterfs-timeout", "2")], (True, 2)),
    ([("glusterfs-timeout", "2"), ("glusterfs-timeout", "0"), ("socket-timeout", "7")], (False, 7)),
    ([("gevent", "x"), ("glusterfs-timeout", "3")], (False, 3)),
])
def test_loop_from_options(options, expected):
    assert aio.loop_from_options(options) == expected


def test_gevent_without_the_module_is_refused_with_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gevent" else real(name, *a))
    with pytest.raises(check.StartupError) as caught:
        check.check_gevent([("gevent", "100")])
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("gevent = '100': the gevent module cannot be imported")


def test_gevent_with_the_module_passes_the_check():
    check.check_gevent([("gevent", "100")])  # make venv installs the gevent extra


@pytest.mark.parametrize("options,refused", [
    ([("gevent", "100"), ("http11-socket", ":9090")], "gevent = '100' with http11-socket = ':9090'"),
    ([("http11-socket", ":9090"), ("gevent", "100")], "gevent = '100' with http11-socket = ':9090'"),
    ([("gevent", "100"), ("socket", ":3031"), ("protocol", "http11")], "gevent = '100' with protocol = 'http11'"),
    ([("gevent", "100"), ("http-socket", ":9090")], None),
    ([("gevent", "100"), ("http", ":9090"), ("socket", "127.0.0.1:3031")], None),
    ([("gevent", "100"), ("gevent", "0"), ("http11-socket", ":9090")], None),
    ([("threads", "30"), ("http11-socket", ":9090")], None),
])
def test_gevent_with_an_http11_socket_is_refused_with_one_line(options, refused):
    if refused is None:
        check.check_gevent_sockets(options)
        return
    with pytest.raises(check.StartupError) as caught:
        check.check_gevent_sockets(options)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(refused + ": uWSGI's gevent loop cannot serve HTTP/1.1")
    assert "use http-socket, or uWSGI's http router in front" in str(caught.value)


def test_direct_mode_changes_nothing():
    body = iter([b"x"])
    assert aio.Direct().run(lambda a, b: a + b, 1, 2) == 3
    assert aio.Direct().wrap_body(body, "GET /x") is body


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("write_times,sizes", [
    # a client that takes every chunk at once: 64 KiB doubling up to 1 MiB
    ([0, 0, 0, 0, 0, 0, 0], [64, 128, 256, 512, 1024, 1024, 1024]),
    # one slow write: back to 64 KiB at once; in between: kept
    ([0, 0, 1, 0.01, 0], [64, 128, 256, 64, 64, 128]),
])
def test_read_size_follows_the_client_without_a_socket(monkeypatch, write_times, sizes):
    clock = Clock()
    monkeypatch.setattr(aio.time, "monotonic", clock)
    body = aio.AdaptiveBody(inner=None, offload=None, what="GET /x")  # type: ignore[arg-type]
    seen = []
    body._adapt()
    seen.append(body.read_size // 1024)
    for took in write_times:
        body._returned_at = clock.now
        clock.now += took
        body._adapt()
        seen.append(body.read_size // 1024)
    assert seen[:len(sizes)] == sizes


def test_read_size_follows_the_sockets_unacknowledged_bytes():
    """Doubles while the peer has taken the last chunk; 64 KiB once bytes pile up."""
    import socket

    a, b = socket.socketpair()
    try:
        body = aio.AdaptiveBody(inner=None, offload=None, what="GET /x", sock_fd=a.fileno())  # type: ignore[arg-type]
        body._returned_at = 0.0
        for expected in (128, 256, 512):
            body._adapt()
            assert body.read_size == expected << 10
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)  # room for more than one 1 MiB chunk
        a.setblocking(False)
        try:
            while True:
                a.send(b"x" * 65536)  # nobody reads b: the bytes pile up
        except BlockingIOError:
            pass
        body._adapt()
        assert body.read_size == aio.MIN_READ == 64 << 10
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("options,expected", [
    ([], False),
    ([("lazy-apps", "true"), ("processes", "2")], True),
    ([("lazy-apps", ""), ("workers", "4")], True),
    ([("lazy", "1"), ("processes", "3")], True),
    ([("lazy-apps", "true"), ("processes", "1")], False),
    ([("lazy-apps", "false"), ("processes", "2")], False),
    ([("processes", "8")], False),
])
def test_sighup_becomes_a_chain_reload_only_under_lazy_apps_with_two_workers(options, expected):
    from uwsgi_gluster import reload

    assert reload.wanted(options) is expected
