"""glibc malloc tuning for a worker: fewer arenas, a fixed mmap threshold.

Contract: :func:`tune` (called once per process before the serving threads
start) caps glibc's malloc arenas at :data:`ARENAS` and pins the mmap
threshold at :data:`MMAP_THRESHOLD`. Without it every uWSGI thread gets its
own arena, each keeping the memory it once used (a worker of 15 threads grows
by ~15 MiB RSS under a load of 14-byte responses), and after the first large
``free`` glibc raises the mmap threshold up to 32 MiB, so 1 MiB read buffers
stay in the heap for good. A no-op (False) where there is no glibc
``mallopt``. :func:`trim` hands freed memory back (the background
refresher calls it every few seconds).
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 << 10


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


def trim() -> bool:
    """Give the free memory at the top of glibc's heaps back to the system
    (``malloc_trim(0)``); False where there is none."""
    libc = _libc()
    fn = getattr(libc, "malloc_trim", None)
    if fn is None:
        return False
    fn.argtypes = (ctypes.c_size_t,)
    fn.restype = ctypes.c_int
    return bool(fn(0))


def tune() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
