"""A per-worker cache of small files, missing paths and rendered listings,
revalidated against the volume and bounded by everything it holds.

Contract:

* An entry is trusted without asking the volume for at most ``freshness``
  seconds (default 1) after it was last validated. After that the next lookup
  does one ``glfs_stat`` and compares the file's identity (:func:`identity_of`:
  inode, size, mtime in ns and ctime in ns); unchanged, the entry is trusted
  for another ``freshness`` seconds; changed or gone, it is dropped and the
  caller reads the volume again. ctime is in the identity because no client
  can set it: a rewrite in place that keeps the size and puts the old mtime
  back (``cp -p``, ``rsync --inplace -t``, ``touch -d``) still changes it. So
  a file changed on the volume in any way is served in its new form at most
  ``freshness`` seconds later.
* "This path does not exist" is cached the same way (it makes the probes for
  ``.br``/``.gz`` variants free), and so is re-checked after ``freshness``.
* Other values (:meth:`FileCache.keep` / :meth:`FileCache.kept`, e.g. a
  rendered directory listing) are trusted for ``freshness`` seconds and then
  dropped, never revalidated.
* Bounded by one budget, ``max_bytes``: every entry is charged its key, its
  bytes, what the responder memoizes on it (:meth:`FileCache.memo`) and a
  fixed :data:`ENTRY_OVERHEAD` for the bookkeeping objects; "missing" entries
  may use at most ``max_bytes // MISSING_SHARE`` of it (they are cheap to
  recompute and an attacker can make any number of them). Files over
  ``max_file`` bytes are never cached, and there are at most ``max_entries``
  entries. The least recently used go first.
* An entry may instead point at a copy in the instance's local cache
  (:mod:`.localcache`, ``Entry.local``): revalidated the same way; the copy's
  bytes are not charged here (the local cache has its own budget).
* Thread-safe for uWSGI's threads: one lock around the bookkeeping, never
  held during a volume call. Each worker has its own cache (a worker process
  is its own libgfapi client); nothing is shared through uWSGI's cache2.
"""

from __future__ import annotations

import errno
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, List, Optional, Tuple, Union

DEFAULT_FRESHNESS = 1.0
DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_MAX_FILE = 256 << 10
DEFAULT_MAX_ENTRIES = 20000
#: Bytes charged per entry for the objects that hold it (the entry object,
#: its dict, the ordered-dict node, the validation time); measured on CPython
#: 3.11 as about 450, rounded up.
ENTRY_OVERHEAD = 512
#: "Missing" entries may use at most 1/MISSING_SHARE of ``max_bytes``.
MISSING_SHARE = 16

Identity = Tuple[int, int, int, int]  # (inode, size, mtime_ns, ctime_ns)


@dataclass
class Entry:
    """A cached regular file: its identity, metadata and bytes."""

    identity: Identity
    mode: int
    size: int
    mtime: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    content: bytes
    validated_at: float = 0.0
    extra: dict = field(default_factory=dict)  # per-entry memo for the responder (see FileCache.memo)
    cost: int = 0  # bytes charged to the budget for it
    cached: bool = False  # held by the cache now (its cost counts)
    local: Any = None  # a .localcache.LocalCopy holding the bytes (then ``content`` is b"")
    used: bool = False  # served since it was last validated (see FileCache.due)
    path: bytes = b""  # the key it is cached under (the normalized path on the volume)


@dataclass
class _Missing:
    validated_at: float
    cost: int
    used: bool = False


@dataclass
class _Kept:
    value: Any
    validated_at: float
    cost: int
    used: bool = False


MISSING = object()  # what lookup() answers for a cached "no such file"


#: errnos of a revalidating stat that mean "this path is gone" (any other
#: error is the volume's, and is raised to the caller).
GONE_ERRNOS = frozenset((errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG))


def identity_of(st) -> Identity:
    """What must be equal for a file's bytes to be taken as unchanged."""
    return (st.st_ino, st.st_size, st.st_mtime * 1_000_000_000 + st.st_mtimensec,
            st.st_ctime * 1_000_000_000 + st.st_ctimensec)


def size_of(value: Any) -> int:
    """An estimate of the bytes ``value`` (str, bytes, numbers, tuples and
    lists of them) holds, for the budget; generous rather than exact."""
    if isinstance(value, (bytes, bytearray, str)):
        return 64 + len(value)
    if isinstance(value, (tuple, list)):
        return 64 + 8 * len(value) + sum(size_of(item) for item in value)
    return 32


class FileCache:
    def __init__(self, freshness: float = DEFAULT_FRESHNESS, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_file: int = DEFAULT_MAX_FILE, max_entries: int = DEFAULT_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic):
        self.freshness = freshness
        self.max_bytes = max_bytes
        self.max_missing_bytes = max_bytes // MISSING_SHARE
        self.max_file = max_file
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Union[Entry, _Kept]] = OrderedDict()
        self._missing: OrderedDict[bytes, _Missing] = OrderedDict()
        self._bytes = 0
        self._missing_bytes = 0
        self.hits = self.misses = self.revalidations = 0

    @property
    def size_bytes(self) -> int:
        """Everything the cache holds, as charged against ``max_bytes``."""
        return self._bytes + self._missing_bytes

    def __len__(self) -> int:
        return len(self._entries) + len(self._missing)

    def lookup(self, path: bytes, stat: Callable[[bytes], object]):
        """The cached :class:`Entry`, :data:`MISSING`, or None (read the volume).

        ``stat(path)`` is called (outside the lock) only to revalidate a stale
        entry; it raises ``OSError``: with an errno of :data:`GONE_ERRNOS` for
        a path that is gone, any other error (a volume that does not answer)
        propagates to the caller, whatever the entry was.
        """
        now = self._clock()
        with self._lock:
            value: Union[Entry, _Kept, _Missing, None] = self._entries.get(path)
            if value is None:
                value = self._missing.get(path)
                if value is None:
                    self.misses += 1
                    return None
                self._missing.move_to_end(path)
            else:
                self._entries.move_to_end(path)
            if now - value.validated_at < self.freshness:
                self.hits += 1
                value.used = True
                return MISSING if isinstance(value, _Missing) else value
        self.revalidations += 1
        try:
            st = stat(path)
        except OSError as exc:
            if exc.errno not in GONE_ERRNOS:
                raise  # the volume, not the path, failed: no answer from the cache
            if isinstance(value, _Missing):
                self.remember_missing(path)
                return MISSING
            self.forget(path)
            return None
        if isinstance(value, Entry) and identity_of(st) == value.identity:
            value.validated_at = self._clock()
            value.used = True
            return value
        self.forget(path)
        return None

    def store(self, path: bytes, st, content: bytes, local: Any = None) -> Entry:
        """Cache ``content`` (the whole file ``st`` describes), or, with ``local``
        (and ``content`` b""), where a local copy of it is; the identity is ``st``'s."""
        identity = identity_of(st)
        entry = Entry(identity=identity, mode=st.st_mode, size=st.st_size, mtime=st.st_mtime,
                      mtime_ns=identity[2], ctime_ns=identity[3], ino=st.st_ino, content=content,
                      validated_at=self._clock(), cost=ENTRY_OVERHEAD + len(path) + len(content), local=local,
                      path=path)
        if len(content) > self.max_file:
            return entry
        with self._lock:
            self._drop(path)
            self._entries[path] = entry
            entry.cached = True
            self._bytes += entry.cost
            self._evict()
        return entry

    def memo(self, entry: Entry, key: Hashable, build: Callable[[], Any]) -> Any:
        """``entry.extra[key]``, made by ``build()`` the first time and charged
        to the entry (and so to the budget while the entry is cached)."""
        value = entry.extra.get(key)
        if value is None:
            value = build()
            with self._lock:
                if key not in entry.extra:
                    entry.extra[key] = value
                    cost = size_of(key) + size_of(value)
                    entry.cost += cost
                    if entry.cached:
                        self._bytes += cost
                        self._evict()
        return value

    def remember_missing(self, path: bytes) -> None:
        with self._lock:
            self._drop(path)
            value = _Missing(self._clock(), ENTRY_OVERHEAD + len(path))
            self._missing[path] = value
            self._missing_bytes += value.cost
            self._evict()

    def keep(self, key: Hashable, value: Any, size: int) -> None:
        """Hold ``value`` (about ``size`` bytes) under ``key`` for ``freshness`` s."""
        cost = ENTRY_OVERHEAD + size_of(key) + size
        if cost > self.max_bytes // 4:
            return
        with self._lock:
            self._drop(key)
            self._entries[key] = _Kept(value, self._clock(), cost)
            self._bytes += cost
            self._evict()

    def kept(self, key: Hashable) -> Optional[Any]:
        """The value :meth:`keep` holds under ``key``, if still fresh."""
        with self._lock:
            held = self._entries.get(key)
            if not isinstance(held, _Kept):
                return None
            if self._clock() - held.validated_at >= self.freshness:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            held.used = True
            return held.value

    def due(self, age: float) -> List[Tuple[Hashable, str]]:
        """Keys served since their last validation that were validated at least
        ``age`` seconds ago, with their kind: ``"file"``, ``"missing"`` or
        ``"kept"`` (for a background refresher, see :mod:`.refresher`)."""
        now = self._clock()
        found: List[Tuple[Hashable, str]] = []
        with self._lock:
            for key, value in self._entries.items():
                if value.used and now - value.validated_at >= age:
                    found.append((key, "kept" if isinstance(value, _Kept) else "file"))
            for path, missing in self._missing.items():
                if missing.used and now - missing.validated_at >= age:
                    found.append((path, "missing"))
        return found

    def confirm(self, path: bytes, st, since: float) -> None:
        """The volume said ``st`` (None: no such file) for ``path`` at a moment
        after ``since`` (a clock reading): an entry still matching it counts
        as validated at ``since``; one that does not is dropped."""
        with self._lock:
            value: Union[Entry, _Kept, _Missing, None] = self._entries.get(path)
            if value is None:
                value = self._missing.get(path)
            if value is None or isinstance(value, _Kept):
                return
            same = isinstance(value, _Missing) if st is None else (
                isinstance(value, Entry) and identity_of(st) == value.identity)
            if same:
                if since > value.validated_at:
                    value.validated_at = since
                    value.used = False
                return
            self._drop(path)

    def forget(self, path: Hashable) -> None:
        with self._lock:
            self._drop(path)

    def _release(self, old: Union[Entry, _Kept]) -> None:
        self._bytes -= old.cost
        if isinstance(old, Entry):
            old.cached = False

    def _drop(self, key: Hashable) -> None:
        held = self._entries.pop(key, None)
        if held is not None:
            self._release(held)
        missing = self._missing.pop(key, None) if isinstance(key, bytes) else None
        if missing is not None:
            self._missing_bytes -= missing.cost

    def _evict(self) -> None:
        while self._missing and (self._missing_bytes > self.max_missing_bytes
                                 or self.size_bytes > self.max_bytes or len(self) > self.max_entries):
            _, old = self._missing.popitem(last=False)
            self._missing_bytes -= old.cost
        while self._entries and (self.size_bytes > self.max_bytes or len(self) > self.max_entries):
            _, held = self._entries.popitem(last=False)
            self._release(held)
