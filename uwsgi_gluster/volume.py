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
  Once it failed, or a handle was dropped as stale, one background thread per
  volume runs rounds, ``retry_interval`` seconds (or the backoff) apart, until
  one connects: a process reconnects by itself, whether or not requests reach
  its Python side (the C plugin answers hot hits without it). Meanwhile
  :meth:`Volume.handle` raises :class:`Unavailable` at once, so no request
  waits on a dead cluster.
* A connected handle whose calls have failed with connection errors for
  ``stale_after`` seconds with no success in between is dropped, and a fresh
  ``glfs_t`` is connected in the background (:meth:`Volume.report`).
* Every handle of a failed attempt is released (``glfs_fini``) by the
  process's :class:`HandleReaper`, off the request path; one abandoned after
  the deadline is released when its ``glfs_init`` returns. At most
  ``max_pending`` such handles are alive per volume: at the bound no new
  attempt starts (the round fails) until one is released, so a server that
  never answers cannot exhaust threads or fds.
* The reconnect loop survives any exception (EMFILE, no thread left...): it
  logs one line and backs off, doubling up to :data:`MAX_BACKOFF` seconds. If
  its thread cannot be started, the next :meth:`Volume.handle` after the
  backoff tries again.
* A connected handle dropped as stale is not ``fini``-ed: requests may still
  hold glfds on it. Handles are not ``fini``-ed at exit either.
* Each state change is logged once.
* ``errors`` counts the calls that failed for the volume (:class:`Unavailable`
  raised, or a connection error reported), ``reconnects`` the handles
  connected after a lost or failed one (both only grow; read by :mod:`.metrics`).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, List, Optional, Tuple

from . import gfapi
from .config import MountSpec, Server
from .log import log as default_log
from .log import worker_id as default_worker_id

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
#: at most this many handles of failed or hung connect attempts alive per volume
MAX_PENDING_HANDLES = 3
#: the longest wait between attempts after unexpected failures (EMFILE...)
MAX_BACKOFF = 30.0


class Unavailable(Exception):
    """No volfile server of the mount could be reached."""

    def __init__(self, mountpoint: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"volume for mountpoint {mountpoint} is unavailable")


class HandleReaper:
    """Releases ``glfs_t`` handles that will never serve, off the request path.

    Contract: :meth:`release` never blocks on libgfapi; each handle given to it
    is ``glfs_fini``-ed exactly once, one at a time, by a single daemon thread of
    this process (``glfs_fini`` can take ~10 s), then ``on_released`` is called.
    Handles queued in another process (before a ``fork``) are dropped, never
    ``fini``-ed: a ``glfs_t`` does not survive ``fork``. A handle must not be
    released while another thread is still inside a call on it.
    """

    def __init__(self, fini: Callable[[int], None] = gfapi.fini,
                 log: Callable[[str], None] = default_log):
        self._fini = fini
        self._log = log
        self._cond = threading.Condition()
        self._queue: List[Tuple[int, Callable[[], None]]] = []
        self._pid: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._busy = False

    def release(self, fs: int, on_released: Callable[[], None] = lambda: None) -> None:
        with self._cond:
            if self._pid != os.getpid():
                self._pid, self._queue, self._thread, self._busy = os.getpid(), [], None, False
            self._queue.append((fs, on_released))
            self._cond.notify()
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._run, name="glfs-reaper", daemon=True)
                try:
                    thread.start()
                except RuntimeError as exc:  # no thread now: the next release() tries again
                    self._log(f"cannot start the handle reaper yet ({exc}); "
                              f"{len(self._queue)} handle(s) waiting")
                    return
                self._thread = thread

    @property
    def pending(self) -> int:
        """Handles queued or being released in this process."""
        with self._cond:
            if self._pid != os.getpid():
                return 0
            return len(self._queue) + self._busy

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._busy = False
                    self._cond.wait()
                fs, on_released = self._queue.pop(0)
                self._busy = True
            try:
                self._fini(fs)
            except BaseException as exc:  # noqa: BLE001 - the reaper must outlive any failure
                self._log(f"glfs_fini failed: {exc}")
            try:
                on_released()
            except BaseException as exc:  # noqa: BLE001
                self._log(f"after glfs_fini: {exc}")


#: The process's one reaper, shared by every volume.
REAPER = HandleReaper()


class _InitAttempt:
    """One ``glfs_init`` on a fresh handle, in a helper thread, under a deadline.

    A volfile server that accepts but never answers makes ``glfs_init`` block
    until the connection drops. The caller gives up after the deadline; the
    handle stays with the helper thread, which hands it to ``release`` when
    ``glfs_init`` finally returns (a handle must not be ``fini``-ed while
    ``glfs_init`` runs on it). A handle whose ``glfs_init`` failed in time is
    released by :meth:`run` itself. Only a successful handle is returned.
    """

    def __init__(self, fs: int, release: Callable[[int], None]):
        self.fs = fs
        self._release = release
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._error: Optional[BaseException] = None

    def _init(self) -> None:
        try:
            gfapi.init(self.fs)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            self._error = exc
        with self._lock:
            self._done.set()
            abandoned = self._abandoned
        if abandoned:
            self._release(self.fs)

    def run(self, seconds: float) -> int:
        try:
            threading.Thread(target=self._init, name="glfs_init", daemon=True).start()
        except BaseException:
            self._release(self.fs)
            raise
        if not self._done.wait(seconds):
            with self._lock:
                if not self._done.is_set():
                    self._abandoned = True
                    raise TimeoutError(f"no answer within {seconds:g} s")
        if self._error is not None:
            self._release(self.fs)
            raise self._error
        return self.fs


class Volume:
    """The volume of one ``glusterfs-mount``, connected lazily in each process."""

    def __init__(self, spec: MountSpec, connect_timeout: Optional[float] = None,
                 log: Callable[[str], None] = default_log,
                 worker_id: Callable[[], int] = default_worker_id,
                 retry_interval: float = RETRY_INTERVAL, stale_after: float = STALE_AFTER,
                 reaper: Optional[HandleReaper] = None, max_pending: int = MAX_PENDING_HANDLES):
        self.spec = spec
        self.connect_timeout = connect_timeout or DEFAULT_CONNECT_TIMEOUT
        self.retry_interval = retry_interval
        self.stale_after = stale_after
        self.max_pending = max_pending
        self._reaper = reaper if reaper is not None else REAPER
        self._log = log
        self._worker_id = worker_id
        self._lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self.errors = 0
        self.reconnects = 0
        self._reset(None)

    def _reset(self, pid: Optional[int]) -> None:
        self._fs: Optional[int] = None
        self._pid = pid
        self._tried = False
        self._connecting = False
        self._next_attempt = 0.0
        self._failing_since: Optional[float] = None
        self._pending = 0  # handles of failed attempts not yet released (this process)
        self._errors = 0  # unexpected failures of the reconnect loop in a row
        self._at_bound = False
        #: connect rounds run in this process (each tries every server once)
        self.rounds = 0

    @property
    def connected(self) -> bool:
        return self._fs is not None and self._pid == os.getpid()

    @property
    def pending_handles(self) -> int:
        """Handles of failed or abandoned connect attempts not yet released."""
        return self._pending if self._pid == os.getpid() else 0

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
                self._fs = self._connect_safely()
                if self._fs is not None:
                    return self._fs
                self._next_attempt = time.monotonic() + self._backoff()
                self._start_reconnect()
            elif not self._connecting and time.monotonic() >= self._next_attempt:
                self._start_reconnect()
            wait = max(self._next_attempt - time.monotonic(), self.retry_interval if self._connecting else 0)
            self.errors += 1
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
            self.errors += 1
            if self._failing_since is None:
                self._failing_since = now
                self._log(f"worker {self._worker_id()}: volume {self.spec.volume} for mountpoint "
                          f"{self.spec.mountpoint} is failing (answering 503)")
            elif now - self._failing_since >= self.stale_after:
                self._log(f"worker {self._worker_id()}: dropping the handle of volume {self.spec.volume} "
                          f"after {now - self._failing_since:.0f} s of failures; reconnecting on a fresh one")
                self._fs, self._failing_since = None, None
                self._next_attempt = 0.0
                if not self._connecting:
                    self._start_reconnect()

    # -- connecting -------------------------------------------------------------

    def _backoff(self) -> float:
        """Seconds to the next attempt: ``retry_interval``, doubled (up to
        :data:`MAX_BACKOFF`) for each unexpected failure in a row."""
        return min(self.retry_interval * (2 ** self._errors), max(MAX_BACKOFF, self.retry_interval))

    def _start_reconnect(self) -> None:
        """Start the reconnect loop (caller holds ``_lock``); if no thread can
        be started now, back off and let a later :meth:`handle` try again."""
        self._connecting = True
        try:
            threading.Thread(target=self._reconnect, name="glfs-reconnect", daemon=True).start()
        except BaseException as exc:  # noqa: BLE001 - e.g. "can't start new thread"
            self._connecting = False
            self._errors += 1
            self._next_attempt = time.monotonic() + self._backoff()
            self._log(f"worker {self._worker_id()}: cannot start a reconnect for mountpoint "
                      f"{self.spec.mountpoint}: {exc}; retrying in {self._backoff():g} s")

    def _reconnect(self) -> None:
        """The reconnect loop: a round at each ``_next_attempt`` until one
        connects. Needs no request to go on: a worker whose requests are all
        answered without Python (hot answers) reconnects all the same."""
        pid = os.getpid()
        try:
            while True:
                with self._lock:
                    if self._pid != pid:  # not this process's volume state any more
                        return
                    wait = self._next_attempt - time.monotonic()
                if wait > 0:
                    time.sleep(min(wait, self.retry_interval))
                    continue
                fs = self._connect_safely()
                with self._lock:
                    if self._pid != pid:
                        return
                    if fs is not None:
                        self._fs = fs
                        self.reconnects += 1
                        return
                    self._next_attempt = time.monotonic() + self._backoff()
        finally:  # connected, or (never expected) the loop ended: a later handle() may start another
            with self._lock:
                if self._pid == pid:
                    self._connecting = False

    def _connect_safely(self) -> Optional[int]:
        """:meth:`_connect`, but any unexpected failure (EMFILE, no thread...)
        is logged in one line and counts as a failed round, never ends the loop."""
        self.rounds += 1
        try:
            fs = self._connect()
        except BaseException as exc:  # noqa: BLE001 - the reconnect loop must survive anything
            self._errors += 1
            self._log(f"worker {self._worker_id()}: connecting mountpoint {self.spec.mountpoint} failed: "
                      f"{type(exc).__name__}: {exc}; retrying in {self._backoff():g} s")
            return None
        if fs is not None:
            self._errors = 0
        return fs

    def _take_slot(self) -> bool:
        """Count one more live handle of an attempt; False at ``max_pending``."""
        with self._pending_lock:
            if self._pending >= self.max_pending:
                return False
            self._pending += 1
            return True

    def _free_slot(self, pid: int) -> None:
        with self._pending_lock:
            if self._pid == pid and self._pending > 0:
                self._pending -= 1

    def _release(self, fs: int) -> None:
        pid = os.getpid()
        self._reaper.release(fs, lambda: self._free_slot(pid))

    def _new_handle(self) -> Optional[int]:
        """A fresh handle with our options, or None while ``max_pending``
        handles of earlier attempts are still alive (hung or being released)."""
        if not self._take_slot():
            if not self._at_bound:
                self._at_bound = True
                self._log(f"worker {self._worker_id()}: {self._pending} earlier connect attempts for mountpoint "
                          f"{self.spec.mountpoint} still hold libgfapi handles; no new attempt until they end")
            return None
        self._at_bound = False
        try:
            fs = gfapi.new(self.spec.volume)
        except BaseException:
            self._free_slot(os.getpid())
            raise
        try:
            for xlator, key, value in CLIENT_OPTIONS:
                gfapi.set_xlator_option(fs, xlator, key, value)
            if self.spec.volfile:
                gfapi.set_volfile(fs, self.spec.volfile)
        except BaseException:
            self._release(fs)
            raise
        return fs

    def _init(self, fs: int) -> int:
        """``glfs_init`` under the connect deadline; a failed handle goes to the
        reaper, a successful one stops counting as pending."""
        _InitAttempt(fs, self._release).run(self.connect_timeout)
        self._free_slot(os.getpid())
        return fs

    def _connect(self) -> Optional[int]:
        spec, wid = self.spec, self._worker_id()
        if not spec.servers:
            fs = self._new_handle()
            if fs is None:
                return None
            try:
                self._init(fs)
            except (OSError, TimeoutError) as exc:
                self._log(f"worker {wid} cannot use volfile {spec.volfile} for mountpoint "
                          f"{spec.mountpoint}: {exc}")
                return None
            self._log(f"worker {wid} connected using volfile")
            return fs
        for index, server in enumerate(spec.servers):
            fs = self._new_handle()
            if fs is None:
                return None
            self._log(f"try connect to {server} for mountpoint {spec.mountpoint} on worker {wid} ...")
            try:
                gfapi.set_volfile_server(fs, server.transport, server.host, server.port)
            except BaseException:
                self._release(fs)
                raise
            try:
                self._init(fs)
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
