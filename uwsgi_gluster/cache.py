"""A per-worker cache of small files, revalidated against the volume.

Contract:

* An entry is trusted without asking the volume for at most ``freshness``
  seconds (default 1) after it was last validated. After that the next lookup
  does one ``glfs_stat`` and compares the file's identity (inode, size, mtime
  in ns): unchanged, the entry is trusted for another ``freshness`` seconds;
  changed or gone, it is dropped and the caller reads the volume again. So a
  file rewritten on the volume is served in its new form at most
  ``freshness`` seconds later.
* "This path does not exist" is cached the same way (it makes the probes for
  ``.br``/``.gz`` variants free), and so is re-checked after ``freshness``.
* Bounded: files over ``max_file`` bytes are never cached; the bytes held stay
  under ``max_bytes`` and the entries under ``max_entries`` (least recently
  used go first).
* Thread-safe for uWSGI's threads: one lock around the bookkeeping, never
  held during a volume call. Each worker has its own cache (a worker process
  is its own libgfapi client); nothing is shared through uWSGI's cache2.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Tuple

DEFAULT_FRESHNESS = 1.0
DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_MAX_FILE = 256 << 10
DEFAULT_MAX_ENTRIES = 20000

Identity = Tuple[int, int, int]  # (inode, size, mtime_ns)


@dataclass
class Entry:
    """A cached regular file: its identity, metadata and bytes."""

    identity: Identity
    mode: int
    size: int
    mtime: int
    mtime_ns: int
    ino: int
    content: bytes
    validated_at: float = 0.0
    extra: dict = field(default_factory=dict)  # per-entry memo for the responder (e.g. headers)


MISSING = object()  # cached "no such file"


def identity_of(st) -> Identity:
    return (st.st_ino, st.st_size, st.st_mtime * 1_000_000_000 + st.st_mtimensec)


class FileCache:
    def __init__(self, freshness: float = DEFAULT_FRESHNESS, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_file: int = DEFAULT_MAX_FILE, max_entries: int = DEFAULT_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic):
        self.freshness = freshness
        self.max_bytes = max_bytes
        self.max_file = max_file
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: "OrderedDict[bytes, object]" = OrderedDict()
        self._missing_at: dict = {}
        self._bytes = 0
        self.hits = self.misses = self.revalidations = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, path: bytes, stat: Callable[[bytes], object]):
        """The cached :class:`Entry`, :data:`MISSING`, or None (read the volume).

        ``stat(path)`` is called (outside the lock) only to revalidate a stale
        entry; it raises ``OSError`` for a path that is gone.
        """
        now = self._clock()
        with self._lock:
            value = self._entries.get(path)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(path)
            checked = self._missing_at.get(path, 0.0) if value is MISSING else value.validated_at
            if now - checked < self.freshness:
                self.hits += 1
                return value
        self.revalidations += 1
        try:
            st = stat(path)
        except OSError:
            if value is MISSING:
                self.remember_missing(path)
                return MISSING
            self.forget(path)
            return None
        if value is not MISSING and identity_of(st) == value.identity:
            value.validated_at = self._clock()
            return value
        self.forget(path)
        return None

    def store(self, path: bytes, st, content: bytes) -> Entry:
        entry = Entry(identity=identity_of(st), mode=st.st_mode, size=st.st_size, mtime=st.st_mtime,
                      mtime_ns=identity_of(st)[2], ino=st.st_ino, content=content, validated_at=self._clock())
        if len(content) > self.max_file:
            return entry
        with self._lock:
            self._drop(path)
            self._entries[path] = entry
            self._bytes += len(content)
            self._evict()
        return entry

    def remember_missing(self, path: bytes) -> None:
        with self._lock:
            self._drop(path)
            self._entries[path] = MISSING
            self._missing_at[path] = self._clock()
            self._evict()

    def forget(self, path: bytes) -> None:
        with self._lock:
            self._drop(path)

    def _drop(self, path: bytes) -> None:
        old = self._entries.pop(path, None)
        if old is MISSING:
            self._missing_at.pop(path, None)
        elif old is not None:
            self._bytes -= len(old.content)

    def _evict(self) -> None:
        while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
            oldest = next(iter(self._entries))
            self._drop(oldest)
