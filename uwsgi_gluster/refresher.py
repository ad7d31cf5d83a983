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
  a change drops the entry. Cold entries are left to expire. Due files of one
  directory (at least :data:`BATCH_MIN`) are revalidated from one listing of
  it with their stats (``readdirplus``): one round trip instead of one each.
* It only ever makes entries fresher or drops them: a request that finds an
  entry past the bound still revalidates it itself (the refresher may be
  behind, e.g. with a slow volume). Volume errors other than "no such file"
  leave the entry to the request path.
* Every :data:`TRIM_EVERY` passes it returns freed heap memory to the system
  (:func:`.malloc.trim`): worker RSS follows what is in use.
* The thread never ends on an exception: it logs one line and goes on.
"""

from __future__ import annotations

import errno
import itertools
import stat as statmod
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Hashable, List, Optional, Tuple

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


#: Where at least this many due files share a directory, one listing of the
#: directory (readdirplus: names with their stat) revalidates them all.
BATCH_MIN = 4
#: A listing is abandoned past LISTING_FACTOR x (files due in it) + 64 entries.
LISTING_FACTOR = 8

#: ``list_dir(directory, wanted)`` -> ``{name: stat}`` of the directory as the
#: volume has it now, or None when listing it is not worth it (too big for the
#: ``wanted`` files); raises OSError.
ListDir = Callable[[bytes, int], Optional[Dict[bytes, object]]]


def refresh_once(cache: FileCache, stat: Callable[[bytes], object],
                 refresh_kept: Callable[[Hashable], None], clock: Callable[[], float] = time.monotonic,
                 pool: Optional[ThreadPoolExecutor] = None, list_dir: Optional[ListDir] = None) -> int:
    """One pass (its volume calls spread over ``pool``'s threads if given); the
    number of keys revalidated. With ``list_dir``, due files that share a
    directory with at least ``BATCH_MIN - 1`` others are revalidated from one
    listing of it (a name absent from it is gone; a name that is a symlink there,
    or a listing refused or failed, falls back to ``stat``)."""

    def check_one(key: bytes, since: float) -> int:
        try:
            st: Optional[object] = stat(key)
        except OSError as exc:
            if exc.errno not in _GONE:
                return 0
            st = None
        cache.confirm(key, st, since)
        return 1

    def check(item: Tuple[Hashable, object]) -> int:
        key, kind = item
        since = clock()
        if kind == "kept":
            refresh_kept(key)
            return 1
        if kind == "file":
            return check_one(key, since)  # type: ignore[arg-type]
        directory, names = key, kind  # a batch: (directory, [(path, name), ...])
        try:
            listing = list_dir(directory, len(names)) if list_dir is not None else None  # type: ignore[arg-type]
        except OSError:
            listing = None
        done = 0
        for path, name in names:  # type: ignore[attr-defined]
            if listing is None:
                done += check_one(path, clock())
                continue
            st = listing.get(name)
            if st is not None and statmod.S_ISLNK(st.st_mode):  # type: ignore[attr-defined]
                done += check_one(path, clock())
                continue
            cache.confirm(path, st, since)
            done += 1
        return done

    work: List[Tuple[Hashable, object]] = []
    batches: Dict[bytes, List[Tuple[bytes, bytes]]] = defaultdict(list)
    for key, kind in cache.due(AGE * cache.freshness):
        if kind in ("file", "missing") and list_dir is not None and isinstance(key, bytes):
            parent, _, name = key.rstrip(b"/").rpartition(b"/")
            batches[parent or b"/"].append((key, name))
        else:
            work.append((key, "kept" if kind == "kept" else "file"))
    for directory, names in batches.items():
        if len(names) >= BATCH_MIN:
            work.append((directory, names))
        else:
            work.extend((path, "file") for path, _ in names)
    results = pool.map(check, work) if pool is not None and len(work) > 1 else map(check, work)
    return sum(results)


def start(name: str, cache: FileCache, stat: Callable[[bytes], object],
          refresh_kept: Callable[[Hashable], None], log: Callable[[str], None],
          list_dir: Optional[ListDir] = None) -> threading.Thread:
    pool = ThreadPoolExecutor(THREADS, thread_name_prefix=f"glusterfs-refresh {name}")

    def run() -> None:
        failed = False
        for turn in itertools.count(1):
            time.sleep(PERIOD * cache.freshness)
            try:
                refresh_once(cache, stat, refresh_kept, pool=pool, list_dir=list_dir)
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
