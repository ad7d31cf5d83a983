"""Volfile servers that hang or are absent, on the local GlusterFS (no cluster needed).

* a server that accepts and never answers, listed first: each worker gives up
  on it after ``glusterfs-connect-timeout`` and connects to the next one;
* no server reachable at start-up: ``503`` + ``Retry-After`` at once (never
  ``404`` for a file that exists), then service comes back by itself when a
  server appears (a forwarder to the local glusterd switched on later);
* every worker reconnects by itself, with or without requests reaching its
  Python side.
"""

from __future__ import annotations

import re
import socket
import time

from netfaults import Forwarder, HungServer, wait_for
from support import ours

INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=%(servers)s
glusterfs-connect-timeout = %(timeout)s
master = true
processes = 2
threads = 4
"""


def test_hung_first_server_is_given_up_after_the_timeout(volumes, tmp_path, report):
    with HungServer() as hung:
        ini = INI % {"servers": f"127.0.0.1:{hung.port};127.0.0.1:0", "timeout": 3}
        t0 = time.monotonic()
        with ours(ini, tmp_path).start(timeout=30) as server:
            ready = time.monotonic() - t0
            reply = server.get("/hello.txt")
            # the reply came from one worker: the other may still be connecting
            wait_for(lambda: len(re.findall(r"worker \d connected to 127\.0\.0\.1:24007", server.log())) == 2,
                     timeout=60)
            log = server.log()
    report(f"hung first server, glusterfs-connect-timeout 3: ready after {ready:.1f} s; "
           f"hung server saw {len(hung.accepted)} connection(s)")
    assert (reply.status, reply.body) == (200, b"Hello, Gluster"), log
    for worker in (1, 2):
        gave_up = re.search(rf"worker {worker} cannot connect to 127\.0\.0\.1:{hung.port} .*no answer within 3 s", log)
        connected = re.search(rf"worker {worker} connected to 127\.0\.0\.1:24007", log)
        assert gave_up and connected and gave_up.start() < connected.start(), log
    assert hung.accepted, "the hung server was never contacted"
    # workers connect in parallel after fork: about one timeout, not two, and no hang
    assert 2.5 < ready < 12, f"ready after {ready:.1f} s\n{log}"


def test_no_server_at_start_then_recovery_without_restart(volumes, tmp_path, report):
    # nothing listens here until the forwarder starts; a bound socket that does not
    # listen refuses connections like a free port, and keeps any other process
    # (an outgoing connection's ephemeral port) from taking the port meanwhile
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    ini = INI % {"servers": f"127.0.0.1:{port}", "timeout": 5}
    with ours(ini, tmp_path).start(timeout=30) as server:
        try:
            down = [server.get(path) for path in ("/hello.txt", "/sizes/10MiB.bin", "/index.html") * 3]
        finally:
            holder.close()
        for reply in down:
            assert reply.status == 503, (reply.status, server.log())
            assert reply.header("Retry-After") and int(reply.header("Retry-After")) >= 1
        with Forwarder(port, ("127.0.0.1", 24007)):
            # each worker reconnects on its own, in the background: recovered = every
            # worker connected and a run of 200s
            recovered = wait_for(lambda: all(server.get(p).status == 200 for p in ("/hello.txt", "/index.html") * 4)
                                 and len(re.findall(rf"worker \d connected to 127\.0\.0\.1:{port}", server.log())) == 2,
                                 timeout=30)
            statuses = {server.get("/hello.txt").status for _ in range(20)}
            big = server.get("/sizes/3145735.bin")
            log = server.log()
        assert recovered is not None, f"not recovered 30 s after the server came back:\n{log}"
        report(f"no server at start: {len(down)} x 503 with Retry-After; recovered "
               f"{recovered:.1f} s after the server appeared, no restart")
        assert statuses == {200} and big.status == 200 and len(big.body) == 3 * (1 << 20) + 7
    # every worker connects on its own; the failed rounds are logged (a worker whose
    # first round was still pending when the server appeared may never log one)
    assert re.search(r"worker \d: no server answered for mountpoint / \(volume unbit001\); retrying", log), log
    for worker in (1, 2):
        assert re.search(rf"worker {worker} connected to 127\.0\.0\.1:{port}", log), log


def test_worker_reconnects_when_no_request_reaches_its_python_side(volumes, tmp_path, report):
    """Regression (failed CI once): a disconnected worker started a round only
    when a request reached its Python side. Once worker 1 had reconnected, the
    C plugin answered worker 2's requests from the hot answers without Python,
    so worker 2 stayed disconnected (its next miss: a 503, however long the
    server had been back). Here no request at all is sent once the server
    appears: each worker must connect on its own."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    ini = INI % {"servers": f"127.0.0.1:{port}", "timeout": 5}
    with ours(ini, tmp_path).start(timeout=30) as server:
        holder.close()
        with Forwarder(port, ("127.0.0.1", 24007)):
            # generous next to the 2 s retry interval and the 5 s connect deadline
            connected = wait_for(lambda: len(re.findall(rf"worker \d connected to 127\.0\.0\.1:{port}",
                                                        server.log())) == 2, timeout=60)
            log = server.log()
            assert connected is not None, f"a worker did not reconnect without requests:\n{log}"
            report(f"no server at start, then no request: both workers connected "
                   f"{connected:.1f} s after the server appeared")
            replies = [server.get(p) for p in ("/hello.txt", "/sizes/3145735.bin") * 4]
    for worker in (1, 2):
        assert re.search(rf"worker {worker}: no server answered for mountpoint / \(volume unbit001\)", log), log
    assert all(reply.status == 200 for reply in replies), [reply.status for reply in replies]
    assert all(len(reply.body) == 3 * (1 << 20) + 7 for reply in replies[1::2])
