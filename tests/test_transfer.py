"""Bodies are one version of the file or end short (pure units: a fake volume
whose file changes under the reader, a fake start_response that behaves like
uWSGI's: a second call is accepted until the headers are sent)."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uwsgi_gluster import gfapi, http, responder
from uwsgi_gluster.config import parse_mount
from uwsgi_gluster.mime import MimeTypes
from uwsgi_gluster.responder import FileBody, MountApp, TransferAborted


class FakeFile:
    """One file of a fake volume; ``versions`` are its successive contents, the
    next one taking over after every ``per`` calls of ``switch_on`` ("read" or
    "stat")."""

    def __init__(self, *versions: bytes, per: int = 1, switch_on: str = "read"):
        self.versions, self.per, self.switch_on = list(versions), per, switch_on
        self.calls, self.closed = 0, 0

    @property
    def version(self) -> int:
        return min(self.calls // self.per, len(self.versions) - 1)

    def stat(self):
        result = self.peek()
        self.calls += self.switch_on == "stat"
        return result

    def peek(self):
        """The current version's stat, without counting as a call (the path walk's lstat)."""
        data, v = self.versions[self.version], self.version
        return SimpleNamespace(st_ino=7, st_size=len(data), st_mode=0o100644, st_mtime=1000 + v,
                               st_mtimensec=0, st_ctime=2000 + v, st_ctimensec=0)

    def pread(self, offset: int, count: int) -> bytes:
        data = self.versions[self.version]
        self.calls += self.switch_on == "read"
        return data[offset:offset + count]


@pytest.fixture
def fake(monkeypatch):
    box = {}
    monkeypatch.setattr(gfapi, "open_file", lambda fs, path, flags=0: 42)
    monkeypatch.setattr(gfapi, "fstat", lambda fd: box["file"].stat())
    monkeypatch.setattr(gfapi, "stat", lambda fs, path: box["file"].stat())
    monkeypatch.setattr(gfapi, "lstat", lambda fs, path: box["file"].peek())
    monkeypatch.setattr(gfapi, "pread_bytes", lambda fd, offset, count: box["file"].pread(offset, count))

    def close(fd):
        box["file"].closed += 1
    monkeypatch.setattr(gfapi, "close", close)
    return box


class FakeVolume:
    def __init__(self):
        self.spec = parse_mount("mountpoint=/,volume=v,server=h")

    def handle(self):
        return 1

    def report(self, ok):
        pass


class UwsgiStartResponse:
    """Accepts new headers until the first body chunk is 'written'."""

    def __init__(self):
        self.calls, self.sent = [], False

    def __call__(self, status, headers):
        if self.sent:
            raise OSError("headers already sent")
        self.calls.append(status)


def app(lines, shut=None, read_size=4):
    a = MountApp(FakeVolume(), MimeTypes({}), log=lines.append, worker_id=lambda: 1,
                 connection_fd=(lambda: shut.append("fd") or 99) if shut is not None else None)
    a.cache.max_file = 0  # stream everything
    return a


def run(a, start_response, environ):
    out = []
    for chunk in a(environ, start_response):
        start_response.sent = True
        out.append(chunk)
    return b"".join(out)


ENV = {"REQUEST_METHOD": "GET", "PATH_INFO": "/f.bin"}


def test_same_size_rewrite_mid_stream_is_cut_and_the_connection_shut(fake, monkeypatch):
    fake["file"] = FakeFile(b"old-old-old-", b"new-new-new-", per=2)
    monkeypatch.setattr(responder, "READ_SIZE", 4)
    shut, lines = [], []
    monkeypatch.setattr(responder, "shutdown_connection", lambda fd: shut.append(fd))
    a = app(lines, shut)
    sr = UwsgiStartResponse()
    body = run(a, sr, dict(ENV))
    assert body == b"old-old-"  # the last chunk (new bytes) withheld
    assert sr.calls == ["200 OK"] and shut == ["fd", 99]
    assert len(lines) == 1 and "file changed while it was being sent (mtime, ctime)" in lines[0]
    assert fake["file"].closed == 1


def test_change_before_any_byte_is_sent_becomes_a_503(fake, monkeypatch):
    fake["file"] = FakeFile(b"0123", b"abcd", per=1)
    shut, lines = [], []
    a = app(lines, shut)
    sr = UwsgiStartResponse()
    assert run(a, sr, dict(ENV)) == b""
    assert sr.calls == ["200 OK", "503 Service Unavailable"] and shut == []
    assert fake["file"].closed == 1 and len(lines) == 1


def test_shrink_mid_stream_is_cut(fake, monkeypatch):
    fake["file"] = FakeFile(b"0123456789ab", b"01", per=1)
    monkeypatch.setattr(responder, "READ_SIZE", 4)
    shut, lines = [], []
    monkeypatch.setattr(responder, "shutdown_connection", lambda fd: shut.append(fd))
    body = run(app(lines, shut), UwsgiStartResponse(), dict(ENV))
    assert body == b"0123" and "file shrank while it was being sent" in lines[0] and fake["file"].closed == 1


def test_outside_uwsgi_the_abort_is_raised(fake):
    fake["file"] = FakeFile(b"0123", b"abcd")
    body = FileBody(42, 0, 4, promised=responder.identity_of(fake["file"].stat()), name=b"/f.bin")
    with pytest.raises(TransferAborted, match="file changed"):
        list(body)
    assert fake["file"].closed == 1


def test_unchanged_file_streams_whole(fake, monkeypatch):
    fake["file"] = FakeFile(b"0123456789ab")
    monkeypatch.setattr(responder, "READ_SIZE", 4)
    lines = []
    assert run(app(lines, []), UwsgiStartResponse(), dict(ENV)) == b"0123456789ab" and lines == []


def test_small_file_is_served_with_the_headers_of_the_bytes_read(fake):
    """A small (cached) file rewritten between its fstat and its read is read
    again: the bytes and the Last-Modified/ETag sent belong to one version."""
    fake["file"] = FakeFile(b"old!", b"new!", switch_on="stat")  # changes right after the first fstat
    a = MountApp(FakeVolume(), MimeTypes({}))
    reply = a.respond(responder.Request("GET", b"/f.bin"))
    headers = dict(reply.headers)
    assert reply.status == "200 OK" and b"".join(reply.body) == b"new!"
    assert headers["Last-Modified"] == http.http_date(1001)


def test_small_file_that_keeps_changing_is_a_503(fake):
    fake["file"] = FakeFile(*[bytes([65 + i]) * 4 for i in range(10)], per=1)
    a = MountApp(FakeVolume(), MimeTypes({}))
    reply = a.respond(responder.Request("GET", b"/f.bin"))
    assert reply.status.startswith("503") and fake["file"].closed == 1


def test_eagain_is_not_a_missing_file():
    assert responder._error_response(OSError(errno.EAGAIN, "x")).status.startswith("503")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old=st.binary(min_size=1, max_size=40), new=st.binary(max_size=40), switch_after=st.integers(0, 12),
       read_size=st.integers(1, 9), first=st.integers(0, 45), last=st.one_of(st.none(), st.integers(0, 45)))
def test_any_rewrite_at_any_point_gives_one_version_or_a_short_body(fake, monkeypatch, old, new, switch_after,
                                                                   read_size, first, last):
    """Whatever the new content and whenever it lands (counted in reads), for
    any range: the body is the requested bytes of the version the headers
    describe, whole, or it ends short; the file is closed once."""
    fake["file"] = FakeFile(old, new, per=switch_after + 1 if switch_after else 10**9)
    monkeypatch.setattr(responder, "READ_SIZE", read_size)
    monkeypatch.setattr(responder, "shutdown_connection", lambda fd: None)
    environ = dict(ENV)
    if last is not None or first:
        environ["HTTP_RANGE"] = f"bytes={first}-{'' if last is None else last}"
    sr = UwsgiStartResponse()
    a = app([], [])
    body = run(a, sr, environ)
    status = sr.calls[-1]
    if status.startswith("503"):
        assert body == b""
    elif status.startswith("416"):
        assert body == b""
    else:
        end = len(old) if last is None else min(last + 1, len(old))
        expected = old[first:end] if status.startswith("206") else old
        assert len(body) <= len(expected)
        if len(body) == len(expected):
            assert body == expected, "a complete-looking body with other bytes"
    assert fake["file"].closed == 1
