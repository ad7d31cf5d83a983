"""One mounted GlusterFS volume per process: connect after fork, in server order.

Contract:

* :meth:`Volume.handle` returns this process's initialised ``glfs_t``,
  connecting first if needed; it never returns a handle made in another
  process (a ``glfs_t`` does not survive ``fork``). Safe to call from threads.
* Servers are tried in the configured order, each on a fresh ``glfs_t`` (a
  failed ``glfs_init`` cannot be retried on the same one), each bounded by the
  connect deadline. A dead server is skipped, never the end of the list. Once
  one answers, the others are added as the runtime fallback list.
* The first connect of a process is synchronous (post-fork, before requests).
  Later ones run in a background thread: meanwhile, and for ``retry_interval``
  seconds after a failed round, :meth:`Volume.handle` raises
  :class:`Unavailable` at once, so no request waits on a dead cluster.
* A connected handle whose calls have failed with connection errors for
  ``stale_after`` seconds with no success in between is dropped, and a fresh
  ``glfs_t`` is connected in the background (:meth:`Volume.report`).
* Each state change is logged once.
* Handles are never ``glfs_fini``-ed: that takes ~10 s and the process is
  exiting or the handle is unusable anyway.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Optional

from . import gfapi
from .config import MountSpec, Server
from .log import log as default_log, worker_id as default_worker_id

# libgfapi client options. md-cache keeps file attributes for 1 s by default;
# our own cache (cache.py) already saves those round trips for small files, and
# revalidates them with a stat that must reach the brick, or a rewrite could be
# seen up to a second later than cache.py's bound.
#
# quick-read keeps small files' bytes in the client and by default decides they
# changed by mtime alone, which a client can set back (``cp -p``, ``rsync
# --inplace -t``): with ``ctime-invalidation`` it compares ctime, which no
# client can set, or a rewrite that keeps size and mtime was served old.
CLIENT_OPTIONS = (
    ("*-md-cache", "md-cache-timeout", "0"),
    ("*-quick-read", "ctime-invalidation", "on"),
    # quick-read would keep a copy of every file up to 64 KiB it ever looked up, in
    # every worker (up to 128 MiB each): our caches hold what is hot, once
    ("*-quick-read", "max-file-size", "0"),
)

DEFAULT_CONNECT_TIMEOUT = 10
RETRY_INTERVAL = 2.0
STALE_AFTER = 15.0


class Unavailable(Exception):
    """No volfile server of the mount could be reached."""

    def __init__(self, mountpoint: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"volume for mountpoint {mountpoint} is unavailable")


def _init_with_deadline(fs: int, seconds: float) -> None:
    """Run ``glfs_init`` in a helper thread; give up after ``seconds``.

    A volfile server that accepts but never answers makes ``glfs_init`` block
    for ever; the blocked thread and its handle are then abandoned.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            gfapi.init(fs)
            outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="glfs_init", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]


class Volume:
    """The volume of one ``glusterfs-mount``, connected lazily in each process."""

    def __init__(self, spec: MountSpec, connect_timeout: Optional[float] = None,
                 log: Callable[[str], None] = default_log,
                 worker_id: Callable[[], int] = default_worker_id,
                 retry_interval: float = RETRY_INTERVAL, stale_after: float = STALE_AFTER):
        self.spec = spec
        self.connect_timeout = connect_timeout or DEFAULT_CONNECT_TIMEOUT
        self.retry_interval = retry_interval
        self.stale_after = stale_after
        self._log = log
        self._worker_id = worker_id
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, pid: Optional[int]) -> None:
        self._fs: Optional[int] = None
        self._pid = pid
        self._tried = False
        self._connecting = False
        self._next_attempt = 0.0
        self._failing_since: Optional[float] = None

    @property
    def connected(self) -> bool:
        return self._fs is not None and self._pid == os.getpid()

    def handle(self) -> int:
        """This process's ready ``glfs_t``; raises :class:`Unavailable`."""
        fs = self._fs
        if fs is not None and self._pid == os.getpid():
            return fs
        with self._lock:
            if self._pid != os.getpid():
                self._reset(os.getpid())
            if self._fs is not None:
                return self._fs
            if not self._tried:
                self._tried = True
                self._fs = self._connect()
                if self._fs is not None:
                    return self._fs
                self._next_attempt = time.monotonic() + self.retry_interval
            elif not self._connecting and time.monotonic() >= self._next_attempt:
                self._connecting = True
                threading.Thread(target=self._reconnect, name="glfs-reconnect", daemon=True).start()
            wait = max(self._next_attempt - time.monotonic(), self.retry_interval if self._connecting else 0)
            raise Unavailable(self.spec.mountpoint, max(1, round(wait)))

    def connect(self) -> bool:
        """Connect now (e.g. right after fork); True if the volume is usable."""
        try:
            self.handle()
            return True
        except Unavailable:
            return False

    def report(self, ok: bool) -> None:
        """Tell the volume whether a call on its handle worked (``ok``) or failed
        with a connection error; a handle failing for ``stale_after`` s is dropped."""
        if ok:
            if self._failing_since is not None:
                self._failing_since = None
                self._log(f"worker {self._worker_id()}: volume {self.spec.volume} for mountpoint "
                          f"{self.spec.mountpoint} answers again")
            return
        now = time.monotonic()
        with self._lock:
            if self._fs is None or self._pid != os.getpid():
                return
            if self._failing_since is None:
                self._failing_since = now
                self._log(f"worker {self._worker_id()}: volume {self.spec.volume} for mountpoint "
                          f"{self.spec.mountpoint} is failing (answering 503)")
            elif now - self._failing_since >= self.stale_after:
                self._log(f"worker {self._worker_id()}: dropping the handle of volume {self.spec.volume} "
                          f"after {now - self._failing_since:.0f} s of failures; reconnecting on a fresh one")
                self._fs, self._failing_since = None, None
                self._next_attempt = 0.0

    def _reconnect(self) -> None:
        fs = self._connect()
        with self._lock:
            self._connecting = False
            if fs is not None and self._pid == os.getpid():
                self._fs = fs
            else:
                self._next_attempt = time.monotonic() + self.retry_interval

    def _new_handle(self) -> int:
        fs = gfapi.new(self.spec.volume)
        for xlator, key, value in CLIENT_OPTIONS:
            gfapi.set_xlator_option(fs, xlator, key, value)
        if self.spec.volfile:
            gfapi.set_volfile(fs, self.spec.volfile)
        return fs

    def _connect(self) -> Optional[int]:
        spec, wid = self.spec, self._worker_id()
        if not spec.servers:
            fs = self._new_handle()
            try:
                _init_with_deadline(fs, self.connect_timeout)
            except (OSError, TimeoutError) as exc:
                self._log(f"worker {wid} cannot use volfile {spec.volfile} for mountpoint "
                          f"{spec.mountpoint}: {exc}")
                return None
            self._log(f"worker {wid} connected using volfile")
            return fs
        for index, server in enumerate(spec.servers):
            self._log(f"try connect to {server} for mountpoint {spec.mountpoint} on worker {wid} ...")
            fs = self._new_handle()
            try:
                gfapi.set_volfile_server(fs, server.transport, server.host, server.port)
                _init_with_deadline(fs, self.connect_timeout)
            except (OSError, TimeoutError) as exc:
                self._log(f"worker {wid} cannot connect to {server} for mountpoint {spec.mountpoint}: {exc}")
                continue
            self._add_fallbacks(fs, spec.servers[index + 1:] + spec.servers[:index])
            self._log(f"worker {wid} connected to {server}")
            return fs
        self._log(f"worker {wid}: no server answered for mountpoint {spec.mountpoint} "
                  f"(volume {spec.volume}); retrying in {self.retry_interval:g} s")
        return None

    def _add_fallbacks(self, fs: int, servers) -> None:
        """Give libgfapi the other servers to fail over to at run time."""
        for server in servers:
            try:
                gfapi.set_volfile_server(fs, server.transport, server.host, server.port)
            except OSError as exc:
                self._log(f"cannot add fallback server {server}: {exc}")


__all__ = ["Volume", "Unavailable", "Server"]
