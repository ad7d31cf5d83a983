"""The reconnect loop of :class:`~uwsgi_gluster.volume.Volume` goes on by itself
(pure units: libgfapi replaced by a fake whose volfile server is up or down).

The real thing, in uWSGI against the local glusterd:
tests/integration/test_connection.py.
"""

from __future__ import annotations

import errno
import itertools
import threading

import pytest

from netfaults import wait_for
from uwsgi_gluster import volume
from uwsgi_gluster.config import parse_mount
from uwsgi_gluster.gfapi import GlusterError
from uwsgi_gluster.volume import HandleReaper, Volume


class FakeGfapi:
    """Handles are numbers; ``glfs_init`` fails with ENOTCONN until ``up``."""

    def __init__(self):
        self.up = threading.Event()
        self.handles = itertools.count(1000)
        self.inits = 0

    def new(self, _name):
        return next(self.handles)

    def init(self, _fs):
        self.inits += 1
        if not self.up.is_set():
            raise GlusterError(errno.ENOTCONN, "glfs_init: Transport endpoint is not connected")


@pytest.fixture
def fake(monkeypatch):
    fake = FakeGfapi()
    for name in ("set_xlator_option", "set_volfile_server", "set_volfile"):
        monkeypatch.setattr(volume.gfapi, name, lambda *_args: None)
    monkeypatch.setattr(volume.gfapi, "new", fake.new)
    monkeypatch.setattr(volume.gfapi, "init", fake.init)
    return fake


def _volume(lines: list, stale_after: float = 15.0) -> Volume:
    spec = parse_mount("mountpoint=/,volume=unbit001,server=127.0.0.1:24007")
    return Volume(spec, connect_timeout=5, log=lines.append, worker_id=lambda: 2, retry_interval=0.01,
                  stale_after=stale_after, reaper=HandleReaper(fini=lambda _fs: None, log=lines.append))


def test_failed_first_connect_keeps_reconnecting_without_any_handle_call(fake):
    """Regression (failed CI once): after a failed round, the next one started only
    when a request called ``handle()``; a uWSGI worker whose requests were all
    answered by the C plugin's hot answers never reconnected."""
    lines: list = []
    vol = _volume(lines)
    assert vol.connect() is False
    assert wait_for(lambda: vol.rounds >= 3, timeout=30) is not None, \
        f"only {vol.rounds} round(s) without a handle() call: {lines}"
    fake.up.set()
    assert wait_for(lambda: vol.connected, timeout=30) is not None, lines
    assert vol.reconnects == 1
    assert any(line == "worker 2 connected to 127.0.0.1:24007" for line in lines), lines
    rounds = vol.rounds
    assert vol.handle() and vol.rounds == rounds  # connected: no more rounds


def test_handle_dropped_as_stale_is_replaced_without_any_handle_call(fake):
    lines: list = []
    fake.up.set()
    vol = _volume(lines, stale_after=0)
    first = vol.handle()
    fake.up.clear()
    vol.report(False)  # failing since now
    vol.report(False)  # ... for stale_after (0) s: dropped
    assert not vol.connected
    assert wait_for(lambda: vol.rounds >= 3, timeout=30) is not None, lines
    fake.up.set()
    assert wait_for(lambda: vol.connected, timeout=30) is not None, lines
    assert vol.handle() != first and vol.reconnects == 1
