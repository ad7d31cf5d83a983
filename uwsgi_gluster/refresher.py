"""Background revalidation: keeps the hot entries of a worker's cache validated
so that requests do not wait for the per-second ``glfs_stat``.

Contract:

* One daemon thread per mount per worker (plus :data:`THREADS` for the
  volume calls of a pass) (:func:`start`, after the worker
  connected its volumes). Every :data:`PERIOD` x freshness it asks the cache
  for the entries served since their last validation and validated at least
  :data:`AGE` x freshness ago (:meth:`.cache.FileCache.due`) and revalidates
  each against the volume the same way a request would (``stat`` of the
  path, identity compared); a match counts as validated at the moment just
  before the volume was asked, so the freshness bound is never stretched;
  a change drops the entry. Cold entries are left to expire.
* It only ever makes entries fresher or drops them: a request that finds an
  entry past the bound still revalidates it itself (the refresher may be
  behind, e.g. with a slow volume). Volume errors other than "no such file"
  leave the entry to the request path.
* After each pass it runs ``also`` (the worker that keeps the instance's hot
  answers revalidated: :mod:`.hotanswers`).
* Every :data:`TRIM_EVERY` passes it returns freed heap memory to the system
  (:func:`.malloc.trim`): worker RSS follows what is in use.
* The thread never ends on an exception: it logs one line and goes on.
"""

from __future__ import annotations

import errno
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Hashable, Optional, Tuple

from . import malloc
from .cache import FileCache

#: Entries validated this many freshness periods ago are revalidated ahead of time.
AGE = 0.6
#: The refresher wakes every PERIOD x freshness.
PERIOD = 0.15
#: Volume calls of one pass run on this many threads (each waits for a round trip).
THREADS = 4
#: ... and every TRIM_EVERY wake-ups gives freed heap memory back (malloc_trim).
TRIM_EVERY = 25
_GONE = (errno.ENOENT, errno.ENOTDIR)


def refresh_once(cache: FileCache, stat: Callable[[bytes], object],
                 refresh_kept: Callable[[Hashable], None], clock: Callable[[], float] = time.monotonic,
                 pool: Optional[ThreadPoolExecutor] = None) -> int:
    """One pass (its volume calls spread over ``pool``'s threads if given); the
    number of keys revalidated."""

    def check(item: Tuple[Hashable, str]) -> bool:
        key, kind = item
        since = clock()
        if kind == "kept":
            refresh_kept(key)
            return True
        try:
            st: Optional[object] = stat(key)  # type: ignore[arg-type]
        except OSError as exc:
            if exc.errno not in _GONE:
                return False
            st = None
        cache.confirm(key, st, since)  # type: ignore[arg-type]
        return True

    due = cache.due(AGE * cache.freshness)
    results = pool.map(check, due) if pool is not None and len(due) > 1 else map(check, due)
    return sum(1 for done in results if done)


def start(name: str, cache: FileCache, stat: Callable[[bytes], object],
          refresh_kept: Callable[[Hashable], None], log: Callable[[str], None],
          also: Optional[Callable[[ThreadPoolExecutor], object]] = None) -> threading.Thread:
    """Start the thread; ``also(pool)``, if given, runs after each pass (the
    instance's hot answers, :meth:`.hotanswers.HotAnswers.refresh_once`)."""
    pool = ThreadPoolExecutor(THREADS, thread_name_prefix=f"glusterfs-refresh {name}")

    def run() -> None:
        failed = False
        for turn in itertools.count(1):
            time.sleep(PERIOD * cache.freshness)
            try:
                refresh_once(cache, stat, refresh_kept, pool=pool)
                if also is not None:
                    also(pool)
                if turn % TRIM_EVERY == 0:
                    malloc.trim()
                failed = False
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                if not failed:
                    log(f"background revalidation of {name}: {exc!r} (requests revalidate themselves)")
                failed = True

    thread = threading.Thread(target=run, name=f"glusterfs-refresh {name}", daemon=True)
    thread.start()
    return thread
