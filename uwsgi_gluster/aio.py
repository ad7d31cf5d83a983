"""libgfapi work that never blocks uWSGI's gevent hub (``gevent = N``).

In uWSGI's gevent loop engine every request is a greenlet on one hub thread; a
libgfapi call made there (ctypes, a blocking C call) would stop every other
connection of the worker until it returns. This module runs that work on a
bounded pool of real threads (gevent's threadpool: the greenlet waits on the
hub, the hub keeps serving) and bounds each wait.

Contract:

* :func:`loop_from_options` tells from uWSGI's resolved options whether the
  gevent loop engine runs (``gevent`` > 0) and the wait bound: the last
  ``glusterfs-timeout``, or when it is absent or 0 ``socket-timeout`` (uWSGI's
  default 4), as the native plugin does for its async reads.
* :class:`Direct` (threaded or prefork mode) calls straight through.
* :class:`Offloaded` (gevent mode) runs ``respond()`` (all metadata calls of one
  request: path walk, open, stat, small reads, cache) as one job on the pool,
  and each positioned read and the final close of a streamed body as one job
  each, on a second pool (a short request never waits behind body reads). A
  wait longer than the bound raises :class:`OffloadTimeout`; the job goes on
  in its thread and whatever it opened is closed when it ends (a body is never
  closed while one of its reads is still running).
* :class:`AdaptiveBody` wraps a streamed body (anything with a ``read_size``
  attribute, an iterator and ``close()``): reads start at :data:`MIN_READ`
  bytes and double up to :data:`MAX_READ` while the client keeps up (its
  socket holds less than one chunk not yet acknowledged, ``SIOCOUTQ``; without
  a socket: the last chunk was written at once), and drop back to
  :data:`MIN_READ` when it does not. A slow client holds one 64 KiB chunk,
  never a 1 MiB buffer (the kernel's socket buffer holds what was sent); a
  fast one gets 1 MiB reads. On a timeout it logs one line and ends the
  body early: the client gets fewer bytes than ``Content-Length`` said and
  the connection is closed (uWSGI closes it after a short body). A body's own
  ``abort`` (:class:`.responder.FileBody`: the file changed during the
  transfer) is called in the request's greenlet, never in a pool thread.
"""

from __future__ import annotations

import fcntl
import termios
import time
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple

from .log import log, worker_id

#: threads per worker running libgfapi work in gevent mode: requests (path
#: walk, open, stat, small files) and body reads have pools of their own, so a
#: short request never queues behind thousands of body reads
REQUEST_THREADS = 4
BODY_THREADS = 12
#: uWSGI's default ``socket-timeout``
DEFAULT_SOCKET_TIMEOUT = 4
#: a slow client's read: 64 KiB, not less: every read is a hop to the pool and a
#: libgfapi call (an RPC to the brick), and at 16 KiB that cost the workers and
#: the brick 2.4 times the CPU per byte (bench-crowd (a) streamed, 1,000 readers:
#: 31 vs 13 CPU-s in 28 s, which starved the rest of a 2-core machine)
MIN_READ = 64 << 10
MAX_READ = 1 << 20
#: a chunk written within this many seconds means the client keeps up
FAST_WRITE = 0.005
#: a chunk that took longer than this to write means it does not
SLOW_WRITE = 0.02


def _bound_malloc() -> None:
    """Chunks are made in pool threads and freed on the hub: keep glibc from
    giving each thread an arena (``M_ARENA_MAX`` 2) and from moving its mmap
    threshold up (fixed at 64 KiB), so freed chunks go back to the system
    instead of fragmenting the arenas."""
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        libc.mallopt(-3, 64 << 10)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


class OffloadTimeout(Exception):
    """A libgfapi job did not finish within the bound."""


def loop_from_options(options: Sequence[Tuple[str, str]]) -> Tuple[bool, int]:
    """``(gevent mode?, wait bound in seconds)`` from uWSGI's resolved options."""
    gevent = 0
    timeout = 0
    socket_timeout = DEFAULT_SOCKET_TIMEOUT
    for key, value in options:
        try:
            number = int(value.strip())
        except ValueError:
            continue
        if key == "gevent":
            gevent = number
        elif key == "glusterfs-timeout":
            timeout = number
        elif key == "socket-timeout":
            socket_timeout = number
    return gevent > 0, timeout or socket_timeout or DEFAULT_SOCKET_TIMEOUT


class Direct:
    """Threaded or prefork mode: run every call where it is made."""

    timeout: Optional[float] = None

    def run(self, func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)

    def wrap_body(self, body, what: str):
        return body


_DONE = object()


class _Failure:
    """An exception raised by a job, carried back to the hub as its result."""

    def __init__(self, exc: BaseException):
        self.exc = exc


def _captured(func: Callable[..., Any], *args: Any) -> Any:
    try:
        return func(*args)
    except Exception as exc:  # noqa: BLE001 - re-raised in the waiting greenlet (Offloaded.wait)
        return _Failure(exc)


class _DeferredAbort(Exception):
    """Carries a body's abort from a pool thread to the request's greenlet."""

    def __init__(self, reason: BaseException):
        super().__init__(str(reason))
        self.reason = reason


def _defer_abort(reason: BaseException) -> None:
    raise _DeferredAbort(reason)


def _next_or_done(body: Iterator[bytes]) -> Any:
    try:
        return next(body)
    except StopIteration:
        return _DONE


class Offloaded:
    """Gevent mode: run libgfapi work on a bounded thread pool of this worker.

    The pool is made on first use, in the worker (a hub is per process and
    per thread), so importing this module in the master starts no thread.
    """

    def __init__(self, timeout: float, request_threads: int = REQUEST_THREADS, body_threads: int = BODY_THREADS):
        self.timeout = timeout
        self.sizes = {"request": request_threads, "body": body_threads}
        self.size = request_threads + body_threads
        self._pools: dict = {}
        self._pid = 0

    def _get_pool(self, kind: str):
        import os

        if self._pid != os.getpid():
            self._pools, self._pid = {}, os.getpid()
            _bound_malloc()
        pool = self._pools.get(kind)
        if pool is None:
            from gevent.threadpool import ThreadPool

            pool = self._pools[kind] = ThreadPool(self.sizes[kind])
        return pool

    def spawn(self, func: Callable[..., Any], *args: Any, kind: str = "body"):
        """Start ``func(*args)`` on the pool ``kind``; the job (a gevent AsyncResult-like).
        An exception is carried back as a value (gevent would print it from the
        thread), and :meth:`wait` raises it in the waiting greenlet."""
        return self._get_pool(kind).spawn(_captured, func, *args)

    def wait(self, job) -> Any:
        """The job's result (or its exception); :class:`OffloadTimeout` past the bound."""
        import gevent

        try:
            result = job.get(timeout=self.timeout)
        except gevent.Timeout:
            raise OffloadTimeout(f"no answer from the volume within {self.timeout:g} s") from None
        if isinstance(result, _Failure):
            raise result.exc
        return result

    def run(self, func: Callable[..., Any], *args: Any) -> Any:
        """``func(*args)`` on the pool; if it times out, a result it later
        returns that has a ``body`` with ``close()`` is closed then."""
        job = self.spawn(func, *args, kind="request")
        try:
            return self.wait(job)
        except OffloadTimeout:
            job.rawlink(self._close_late_body)
            raise

    def _close_late_body(self, job) -> None:
        """A ``respond()`` that finished after its request gave up: release its file."""
        if not job.successful() or isinstance(job.value, _Failure):
            return
        close = getattr(getattr(job.value, "body", None), "close", None)
        if close is not None:
            self.spawn(close)

    def wrap_body(self, body, what: str):
        """``body`` as the client should get it: a streamed one read on the
        pool to the pace of the current request's socket."""
        if not hasattr(body, "read_size"):
            return body  # bytes already in memory: nothing to read
        return AdaptiveBody(body, self, what, _connection_fd())


def _connection_fd() -> Optional[int]:
    """The client socket of the current request (uWSGI's), or None outside uWSGI."""
    try:
        import uwsgi

        return uwsgi.connection_fd()
    except (ImportError, AttributeError, SystemError):
        return None


def _queued(fd: int) -> int:
    """Bytes written to socket ``fd`` that its peer has not acknowledged yet."""
    queued = bytearray(4)
    fcntl.ioctl(fd, termios.TIOCOUTQ, queued)  # SIOCOUTQ
    return int.from_bytes(queued, "little")


class AdaptiveBody:
    """A streamed body read on the pool, in chunks sized to the client's pace."""

    def __init__(self, inner, offload: Offloaded, what: str, sock_fd: Optional[int] = None):
        self._inner = inner
        self._offload = offload
        self._what = what
        self._fd = sock_fd
        # A body's abort (e.g. FileBody's: a log line, then a 503 or a shut-down
        # connection) speaks to uWSGI: it must run in the request's greenlet, not
        # in the pool thread that found the problem.
        self._abort = getattr(inner, "abort", None)
        if self._abort is not None:
            inner.abort = _defer_abort
        self._size = MIN_READ
        self._returned_at: Optional[float] = None
        self._pending = None
        self._sent = 0
        self._closed = False

    def __iter__(self):
        return self

    def _adapt(self) -> None:
        if self._returned_at is None:
            return
        if self._fd is not None:
            try:
                queued = _queued(self._fd)
            except OSError:
                self._fd = None  # not a socket we can ask: go by the write times
            else:  # the client took (almost) all of the last chunk: it keeps up
                self._size = min(self._size * 2, MAX_READ) if queued < self._size else MIN_READ
                return
        took = time.monotonic() - self._returned_at  # uWSGI wrote the last chunk meanwhile
        if took <= FAST_WRITE:
            self._size = min(self._size * 2, MAX_READ)
        elif took >= SLOW_WRITE:
            self._size = MIN_READ

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        self._adapt()
        self._inner.read_size = self._size
        self._pending = self._offload.spawn(_next_or_done, self._inner)
        try:
            chunk = self._offload.wait(self._pending)
        except _DeferredAbort as deferred:
            self._pending = None
            self.close()
            self._abort(deferred.reason)  # type: ignore[misc]  # raises, or returns: the body ends
            raise StopIteration from None
        except OffloadTimeout as exc:
            log(f"worker {worker_id()}: {self._what}: {exc}; response cut after {self._sent} bytes")
            self.close()
            raise StopIteration from None
        self._pending = None
        if chunk is _DONE:
            self.close()
            raise StopIteration
        self._sent += len(chunk)
        self._returned_at = time.monotonic()
        return chunk

    @property
    def read_size(self) -> int:
        return self._size

    def close(self) -> None:
        """Close the inner body on the pool once no read of it is running
        (a read still running past its bound closes it when it ends)."""
        if self._closed:
            return
        self._closed = True
        pending, self._pending = self._pending, None
        if pending is not None and not pending.ready():
            pending.rawlink(lambda _job: self._offload.spawn(self._inner.close))
            return
        job = self._offload.spawn(self._inner.close)
        try:
            self._offload.wait(job)
        except OffloadTimeout:
            log(f"worker {worker_id()}: {self._what}: closing the file took longer than "
                f"{self._offload.timeout:g} s (left to finish in its thread)")


__all__ = ["Direct", "Offloaded", "AdaptiveBody", "OffloadTimeout", "loop_from_options"]
