"""Resource hygiene and hostile input against a real server on unbit001.

* 1,000 downloads of the 10 MiB file aborted mid-body (half closed normally,
  half reset with SO_LINGER 0): afterwards the worker holds as many file
  descriptors as before and no glfd (``gfapi.open_files()``, which each worker
  logs on uWSGI signal ``log.STATS_SIGNAL``, raised here by ``touch-signal``).
* A fuzzer over request paths and conditional/range/encoding headers: never a
  5xx, never a byte of a host file outside the volume (a canary in /tmp aimed
  at with ``..`` in every spelling), and the server keeps serving.
* A fuzzer over raw requests (query strings and header values with any byte,
  CR and LF included) through ``http-socket``, while a thread keeps replacing
  files of the volume: no 5xx but 503, only headers we write, no CR or LF in
  any header, every body one of the file's versions, one ETag one body.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import secrets
import socket
import struct
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import CORPUS
from netfaults import wait_for
from support import ours, raw_request, request
from uwsgi_gluster import gfapi
from uwsgi_gluster.log import STATS_SIGNAL
from uwsgi_gluster.seeding import write_file

INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
glusterfs-mount = mountpoint=/changing,volume=unbit003,server=127.0.0.1:0,autoindex=true
route = ^/changing(/.*)?$ setscriptname:/changing
route = ^/changing(/.*)?$ setpathinfo:$1
master = true
processes = 1
threads = 8
touch-signal = %(touch)s %(signal)d
"""

BIG = "/sizes/10MiB.bin"
ABORTS = 1000


class Stats:
    """Reads the worker's open-glfd count by touching the touch-signal file."""

    def __init__(self, server, touch: Path) -> None:
        self.server, self.touch, self.stamp = server, touch, 1_600_000_000

    def open_files(self, timeout: float = 15) -> int:
        before = len(self._lines())
        self.stamp += 10  # uWSGI compares mtimes in seconds: make every touch a change
        os.utime(self.touch, (self.stamp, self.stamp))
        if wait_for(lambda: len(self._lines()) > before, timeout, 0.1) is None:
            raise AssertionError(f"no open-files line {timeout} s after touching {self.touch}:\n{self.server.log()}")
        return int(self._lines()[-1])

    def _lines(self):
        return re.findall(r"\[glusterfs\] worker 1 open files: (-?\d+)", self.server.log())


@pytest.fixture(scope="module")
def server(volumes, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hygiene")
    touch = workdir / "stats.touch"
    touch.write_text("")
    os.utime(touch, (1_500_000_000, 1_500_000_000))
    with ours(INI % {"touch": touch, "signal": STATS_SIGNAL}, workdir).start() as srv:
        srv.stats = Stats(srv, touch)
        yield srv


def worker_pid(master: int) -> int:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(entry))
            except OSError:
                pass
    assert len(pids) == 1, pids
    return pids[0]


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def abort_download(port: int, n: int) -> int:
    """GET the big file, read a few KiB of body, then close (even n) or reset (odd n)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {BIG} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got, want = 0, 4096 + (n % 8) * 4096
        while got < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        if n % 2:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return got


def test_aborted_downloads_leak_no_fd_and_no_glfd(server, report):
    worker = worker_pid(server.proc.pid)
    for path in (BIG, "/hello.txt", "/sizes/65536.bin"):  # warm up: connections, cache
        assert server.get(path).status == 200
    fds_before, glfds_before = fd_count(worker), server.stats.open_files()
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda n: abort_download(server.port, n), range(ABORTS)))
    took = time.monotonic() - t0
    assert min(got) > 0, "some download gave no body at all"
    settled = wait_for(lambda: fd_count(worker) <= fds_before, timeout=20, interval=0.2)
    fds_after, glfds_after = fd_count(worker), server.stats.open_files()
    report(f"{ABORTS} aborted 10 MiB downloads in {took:.1f} s: worker fds {fds_before} -> {fds_after}, "
           f"open glfds {glfds_before} -> {glfds_after}", fds_before=fds_before, fds_after=fds_after,
           glfds_after=glfds_after)
    assert settled is not None and fds_after <= fds_before, (fds_before, fds_after, os.listdir(f"/proc/{worker}/fd"))
    assert glfds_before == 0 and glfds_after == 0
    assert server.get("/hello.txt").body == b"Hello, Gluster"
    assert len(server.get(BIG).body) == len(CORPUS[BIG])


# -- fuzzer -------------------------------------------------------------------

CANARY_DIR = Path("/tmp")


@pytest.fixture(scope="module")
def canary():
    path = CANARY_DIR / f"canary-{secrets.token_hex(8)}"
    content = f"CANARY-{secrets.token_hex(16)}".encode()
    path.write_bytes(content)
    yield path, content
    path.unlink()


HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f")
SEGMENTS = st.one_of(
    st.sampled_from(["..", ".", "", "...", "%2e%2e", "%2E%2e", ".%2e", "%252e%252e", "..%2f..", "..\\..",
                     "tmp", "etc", "passwd", "proc", "self", "environ", "hello.txt", "sizes", "a", "b", "c",
                     "with%20space", "%00", "%00.txt", "%ff", "%c0%ae%c0%ae", "%e2%80%ae", "~", "*", "?", "#",
                     ";", "index.html", "..;"]),
    st.binary(max_size=24).map(lambda b: quote(b, safe="")),
    st.text(max_size=12).map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
)


def targets(canary_name: str):
    aimed = st.builds(lambda ups, sep, lead: lead + sep.join([".."] * ups + ["tmp", canary_name]),
                      st.integers(0, 12), st.sampled_from(["/", "%2f", "%2F", "//", "/./"]),
                      st.sampled_from(["/", "//", "/%2e%2e/", "/a/../", "/..%2f"]))
    joined = st.builds(lambda segs, sep, tail: "/" + sep.join(segs) + tail,
                       st.lists(SEGMENTS, max_size=10), st.sampled_from(["/", "%2f"]),
                       st.sampled_from(["", "/", "?x=1", "?../../tmp", "%00", "/."]))
    long = st.builds(lambda seg, n: "/" + "/".join([seg] * n), st.sampled_from(["a", "..", "%2e%2e", "xyzzy"]),
                     st.integers(500, 2500))
    return st.one_of(aimed, joined, long, st.just("/../../../../../../../../tmp/" + canary_name))


RANGES = st.one_of(
    st.builds(lambda a, b: f"bytes={a}-{b}", st.integers(-5, 20000), st.integers(-5, 20000)),
    st.builds(lambda a: f"bytes=-{a}", st.integers(0, 2 ** 70)),
    st.builds(lambda a: f"bytes={a}-", st.integers(0, 2 ** 70)),
    st.sampled_from(["bytes=0-0,-1", "bytes=", "bytes=-", "items=0-1", "bytes=1-0", "bytes= 0 - 1 ",
                     "bytes=0-1,2-3,4-5", "bytes=99999999999999999999999-"]),
    st.text(HEADER_CHARS, max_size=40),
)
DATES = st.one_of(st.sampled_from(["Tue, 14 Nov 2023 22:13:20 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
                                   "Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                                   "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]),
                  st.text(HEADER_CHARS, max_size=40))
ETAGS = st.one_of(st.sampled_from(["*", '"x"', 'W/"x"', '"', "", '"a", W/"b", *']), st.text(HEADER_CHARS, max_size=40))
HEADERS = st.fixed_dictionaries({}, optional={
    "Range": RANGES,
    "If-Range": st.one_of(DATES, ETAGS),
    "If-None-Match": ETAGS,
    "If-Match": ETAGS,
    "If-Modified-Since": DATES,
    "If-Unmodified-Since": DATES,
    "Accept-Encoding": st.one_of(st.sampled_from(["br", "gzip;q=0", "*;q=0", "br;q=abc", "gzip;q=1e9, br;q=-1",
                                                  ",,,", "identity;q=0"]), st.text(HEADER_CHARS, max_size=60)),
})


def test_fuzzed_requests_never_5xx_nor_escape_the_volume(server, canary, report):
    canary_path, secret = canary
    seen: dict = {}

    @settings(max_examples=300, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(target=targets(canary_path.name), headers=HEADERS,
           method=st.sampled_from(["GET", "GET", "GET", "HEAD", "OPTIONS", "POST"]))
    def probe(target, headers, method):
        reply = request(server.port, method, target, {k: v.strip() for k, v in headers.items()}, timeout=30)
        seen[reply.status] = seen.get(reply.status, 0) + 1
        assert reply.status < 500, (target, headers, reply.status, reply.body[:200])
        assert secret not in reply.body, (target, headers)
        assert canary_path.name.encode() not in reply.body or reply.status in (301,), (target, reply.body[:200])

    probe()
    report(f"fuzzer: {sum(seen.values())} requests, statuses {dict(sorted(seen.items()))}")
    assert server.proc.poll() is None
    assert server.get("/hello.txt").body == b"Hello, Gluster"
    assert request(server.port, "GET", f"/../../../../../tmp/{canary_path.name}").status == 404


# -- raw requests: query strings, header values, a volume that changes ---------------

#: Every header name a response of ours may carry (uWSGI's http-socket adds none).
OUR_HEADERS = {"connection", "content-type", "content-length", "last-modified", "accept-ranges", "etag",
               "content-encoding", "cache-control", "vary", "content-range", "location", "allow", "retry-after"}
CHANGING_DIR = "/harden1-changing"
VERSIONS = [b"", b"v1", b"version two\n" * 3, bytes(range(256)) * 40, b"z" * 300_000]
RAW_BYTES = st.binary(max_size=40)
QUERY = st.one_of(RAW_BYTES, st.sampled_from([b"x\r\nSet-Cookie:evil=1;Path=/", b"a=%0d%0aX:1", b"\x00", b"?#&=%",
                                              b"x\rY", b"x\nY", b"%", b"%zz", b"\xff\xfe"]))
TARGETS = st.one_of(
    st.just("/changing" + CHANGING_DIR + "/f.txt"),
    st.sampled_from(["/sizes", "/a/b", "/hello.txt", "/missing", "/", "/changing", "/changing" + CHANGING_DIR,
                     "/changing" + CHANGING_DIR + "/", "/with%20space", "/.meta/version"]))
HEADER_NAMES = st.sampled_from(["Range", "If-Range", "If-None-Match", "If-Match", "If-Modified-Since",
                                "If-Unmodified-Since", "Accept-Encoding", "X-Anything", "Host", "Cookie"])


def parse_head(data: bytes):
    """``(status, [(name, value)], body)``; raises AssertionError if a header
    line holds a bare CR or LF or is not ``name: value``."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data[:300]
    status_line, *lines = head.split(b"\r\n")
    status = int(status_line.split()[1])
    headers = []
    for line in lines:
        assert b"\r" not in line and b"\n" not in line, line
        name, colon, value = line.partition(b":")
        assert colon and re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name), line
        headers.append((name.decode().lower(), value.strip()))
    return status, headers, body


@pytest.fixture(scope="module")
def changing(server, volumes):
    """A thread replacing ``f.txt`` (write a sibling, rename over) with one of
    VERSIONS as fast as it can while the test runs."""
    fs = volumes["unbit003"]
    write_file(fs, f"{CHANGING_DIR}/f.txt", VERSIONS[1])
    stop = []
    state = {"replaced": 0}

    def churn():
        while not stop:
            state["replaced"] += 1
            write_file(fs, f"{CHANGING_DIR}/f.tmp", VERSIONS[state["replaced"] % len(VERSIONS)])
            gfapi.rename(fs, f"{CHANGING_DIR}/f.tmp", f"{CHANGING_DIR}/f.txt")
            time.sleep(0.01)

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        done = pool.submit(churn)
        yield state
        stop.append(True)
        done.result()
    for name in ("f.txt", "f.tmp"):
        try:
            gfapi.unlink(fs, f"{CHANGING_DIR}/{name}")
        except OSError:
            pass


def test_fuzzed_raw_requests_write_only_our_headers_while_the_volume_changes(server, changing, report):
    seen: dict = {}
    bodies_by_etag: dict = {}

    @settings(max_examples=400, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(target=TARGETS, query=st.one_of(st.none(), QUERY),
           headers=st.lists(st.tuples(HEADER_NAMES, RAW_BYTES), max_size=4),
           method=st.sampled_from([b"GET", b"GET", b"HEAD"]))
    def probe(target, query, headers, method):
        line = target.encode() + (b"?" + query if query is not None else b"")
        raw = b"".join([method, b" ", line, b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                        *(name.encode() + b": " + value.replace(b"\r", b"").replace(b"\n", b"") + b"\r\n"
                          for name, value in headers), b"\r\n"])
        data = raw_request(server.port, raw, timeout=30)
        if not data:  # uWSGI refused to parse the request and closed: nothing written by us
            seen["closed"] = seen.get("closed", 0) + 1
            return
        status, got, body = parse_head(data)
        seen[status] = seen.get(status, 0) + 1
        assert status < 500 or status == 503, (raw, status, body[:200])
        names = {name for name, _ in got}
        assert names <= OUR_HEADERS, (raw, names - OUR_HEADERS)
        fields = dict(got)
        if method == b"GET" and status == 200 and target.endswith("/f.txt"):
            assert body in VERSIONS and int(fields["content-length"]) == len(body), (raw, len(body))
            assert bodies_by_etag.setdefault(fields["etag"], body) == body, "one strong ETag, two bodies"

    probe()
    report(f"raw fuzzer: {sum(seen.values())} requests while the volume changed, statuses "
           f"{dict(sorted(seen.items(), key=str))}, {len(bodies_by_etag)} ETags of the changing file, "
           f"{changing['replaced']} replacements")
    assert server.proc.poll() is None
    assert "Traceback" not in server.log()
    assert server.get("/hello.txt").body == b"Hello, Gluster"
