"""One mounted GlusterFS volume per process: connect after fork, in server order.

Contract:

* :meth:`Volume.handle` returns this process's initialised ``glfs_t``,
  connecting first if needed; it never returns a handle made in another
  process (a ``glfs_t`` does not survive ``fork``). Safe to call from threads.
* Servers are tried in the configured order, each on a fresh ``glfs_t`` (a
  failed ``glfs_init`` cannot be retried on the same one), each bounded by the
  connect deadline. A dead server is skipped, never the end of the list. Once
  one answers, the others are added as the runtime fallback list.
* When no server answers, :class:`Unavailable` is raised, and further attempts
  wait ``retry_interval`` seconds so requests are answered at once meanwhile.
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

DEFAULT_CONNECT_TIMEOUT = 10
RETRY_INTERVAL = 2.0


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
                 retry_interval: float = RETRY_INTERVAL):
        self.spec = spec
        self.connect_timeout = connect_timeout or DEFAULT_CONNECT_TIMEOUT
        self.retry_interval = retry_interval
        self._log = log
        self._worker_id = worker_id
        self._lock = threading.Lock()
        self._fs: Optional[int] = None
        self._pid: Optional[int] = None
        self._next_attempt = 0.0

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
                self._fs, self._pid, self._next_attempt = None, os.getpid(), 0.0
            if self._fs is None:
                now = time.monotonic()
                if now < self._next_attempt:
                    raise Unavailable(self.spec.mountpoint, max(1, round(self._next_attempt - now)))
                self._fs = self._connect()
                if self._fs is None:
                    self._next_attempt = time.monotonic() + self.retry_interval
                    raise Unavailable(self.spec.mountpoint, max(1, round(self.retry_interval)))
            return self._fs

    def connect(self) -> bool:
        """Connect now (e.g. right after fork); True if the volume is usable."""
        try:
            self.handle()
            return True
        except Unavailable:
            return False

    def _new_handle(self) -> int:
        fs = gfapi.new(self.spec.volume)
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
