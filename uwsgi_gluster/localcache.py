"""The instance's local content cache: copies of volume files on a local
(tmpfs) directory, shared by every worker and thread of one uWSGI instance,
served zero-copy (``wsgi.file_wrapper`` -> uWSGI's sendfile).

Contract:

* One directory per instance, ``<base>/uwsgi-gluster-<uid>-<master pid>``
  (``base`` defaults to ``/dev/shm``), created by the process that loads the
  apps before the workers fork (the master; under ``lazy-apps`` the first
  worker that gets there, the others reuse it). It is mode ``0700`` and owned
  by the uid the workers run as; one that exists with another owner, another
  mode or as a symlink is never used (the cache is then off, with one log
  line). At start-up the instance's directory and those of instances whose
  master is gone are removed.
* A copy is named after what identifies its bytes: the volume, the path and
  the file's identity (inode, size, mtime ns, ctime ns; see
  :func:`.cache.identity_of`). A copy never changes once in place: a changed
  file gets a new name, so a reader that validated the identity against the
  volume (at most ``freshness`` seconds ago, by :class:`.cache.FileCache`)
  opens exactly the bytes of that version or nothing (``ENOENT``).
* A fill reads the file from the volume into a temporary file in the same
  directory and renames it into place (atomic): no reader ever sees a partial
  copy. It is kept only if the volume file's identity after the read is the
  one before it and every byte was read.
* One byte budget, ``max_bytes``, for the whole instance (every process):
  fills are serialized by an ``flock`` on the directory's lock file; under it
  the copies in place are summed and the least recently used (oldest mtime;
  a copy's mtime is refreshed when it is used, at most once per ``freshness``)
  are removed until the new one fits. Files bigger than ``max_file`` (or than
  the budget) are never copied. Beyond the budget only: fills in flight (at
  most one per serving thread) and removed copies still being sent.
* Thread-safe; no lock is held while the volume is read.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import itertools
import os
import shutil
import stat as statmod
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Tuple

from .config import LocalCacheSettings, parse_size

DEFAULT_BASE = "/dev/shm"
DEFAULT_MAX_BYTES = 256 << 20
DEFAULT_MAX_FILE = 64 << 20
#: The in-memory (per worker) cache keeps files up to this size; bigger ones
#: (up to ``max_file``) go to the local cache.
DEFAULT_MEMORY_MAX_FILE = 16 << 10
SIZE_ENV = "GLUSTERFS_LOCAL_CACHE_SIZE"
DIR_ENV = "GLUSTERFS_LOCAL_CACHE_DIR"
MAX_FILE_ENV = "GLUSTERFS_LOCAL_CACHE_MAX_FILE"
PREFIX = "uwsgi-gluster-"
LOCK_NAME = ".lock"
TMP_PREFIX = ".tmp-"
FILL_CHUNK = 1 << 20
SEND_CHUNK = 256 << 10

Identity = Tuple[int, int, int, int]


class Refused(OSError):
    """The instance directory cannot be used safely."""


@dataclass
class LocalCopy:
    """One copy in place: its file name (in the directory), size, and the
    request path it is cached under."""

    name: str
    size: int
    path: bytes
    used_at: float


class LocalBody:
    """The bytes ``[start, start + length)`` of an open local copy; owns ``fd``.

    Full copies have :meth:`fileno` for uWSGI's sendfile (via
    ``wsgi.file_wrapper``); every body can also be iterated (``os.pread``) or
    read."""

    def __init__(self, fd: int, start: int, length: int, whole: bool):
        self._fd: Optional[int] = fd
        self._offset = start
        self._remaining = length
        self.whole = whole

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("closed")
        return self._fd

    def read(self, size: int = -1) -> bytes:
        if self._fd is None or self._remaining <= 0:
            return b""
        want = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = os.pread(self._fd, want, self._offset)
        self._offset += len(data)
        self._remaining -= len(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        data = self.read(SEND_CHUNK)
        if not data:
            self.close()
            raise StopIteration
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def instance_dir(base: str, instance: int, uid: Optional[int] = None) -> str:
    return os.path.join(base, f"{PREFIX}{os.getuid() if uid is None else uid}-{instance}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(base: str, keep: int) -> None:
    """Remove this uid's instance directories under ``base`` whose master is
    gone (never ``keep``'s, never another uid's, never a symlink)."""
    uid = os.getuid()
    start = f"{PREFIX}{uid}-"
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        if not name.startswith(start) or not name[len(start):].isdigit():
            continue
        pid = int(name[len(start):])
        if pid == keep or _alive(pid):
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if statmod.S_ISDIR(st.st_mode) and st.st_uid == uid:
            shutil.rmtree(path, ignore_errors=True)


def make_instance_dir(base: str, instance: int, fresh: bool) -> str:
    """Instance ``instance``'s directory under ``base`` (see the module
    contract). ``fresh``: remove what a previous run left (the instance's and
    dead instances' directories) and make it; otherwise reuse it. Raises
    ``OSError`` (:class:`Refused` for an unsafe directory)."""
    path = instance_dir(base, instance)
    if fresh:
        clean_stale(base, keep=instance)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not statmod.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
                raise Refused(errno.EPERM, f"{path} exists and is not a directory of uid {os.getuid()}")
            shutil.rmtree(path)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if fresh:
            raise
    _check_dir(path)
    return path


def _check_dir(path: str) -> None:
    st = os.lstat(path)
    if not statmod.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or statmod.S_IMODE(st.st_mode) != 0o700:
        raise Refused(errno.EPERM, f"{path} is not a directory of uid {os.getuid()} with mode 0700")


class LocalCache:
    """The copies of one instance, in ``directory``; see the module contract."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES, max_file: int = DEFAULT_MAX_FILE,
                 freshness: float = 1.0, clock: Callable[[], float] = time.monotonic, instance: int = 0):
        self.directory = directory
        #: the instance (master pid) whose directory this is
        self.instance = instance
        self.max_bytes = max_bytes
        self.max_file = min(max_file, max_bytes)
        self.freshness = freshness
        self._clock = clock
        self._counter = itertools.count()
        self._filling: set = set()
        self._lock = threading.Lock()
        self.fills = self.evictions = 0

    @classmethod
    def create(cls, base: str, instance: int, fresh: bool, **kwargs) -> LocalCache:
        """The cache of instance ``instance`` under ``base``. ``fresh``: remove
        what a previous run left (the instance's and dead instances'
        directories) and make the directory; otherwise reuse it.
        Raises ``OSError`` (:class:`Refused` for an unsafe directory)."""
        path = make_instance_dir(base, instance, fresh)
        fd = os.open(os.path.join(path, LOCK_NAME), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.close(fd)
        return cls(path, instance=instance, **kwargs)

    def directory_in(self, base: str, fresh: bool) -> str:
        """This instance's directory under ``base``: the cache's own when
        ``base`` is the cache's base, else one made as the cache's was
        (:func:`make_instance_dir`). Raises ``OSError``."""
        if os.path.dirname(self.directory) == os.path.normpath(base):
            return self.directory
        return make_instance_dir(base, self.instance, fresh)

    def admits(self, size: int) -> bool:
        return 0 < size <= self.max_file

    @staticmethod
    def name_of(volume: str, path: bytes, identity: Identity) -> str:
        digest = hashlib.sha256(b"%s\0%s\0%d,%d,%d,%d" % (volume.encode(), path, *identity)).hexdigest()
        return digest[:40]

    # -- fill ---------------------------------------------------------------------

    def existing(self, name: str, size: int, path: bytes) -> Optional[LocalCopy]:
        """The copy ``name`` if one is in place (made by any process)."""
        try:
            st = os.stat(os.path.join(self.directory, name), follow_symlinks=False)
        except OSError:
            return None
        if not statmod.S_ISREG(st.st_mode) or st.st_size != size:
            return None
        return LocalCopy(name, size, path, self._clock() - self.freshness)

    def fill(self, name: str, size: int, path: bytes, read: Callable[[int, int], bytes],
             recheck: Callable[[], bool]) -> Optional[LocalCopy]:
        """Put a copy named ``name`` of ``size`` bytes in place, reading them with
        ``read(offset, count)``; ``recheck()`` (after the read) says whether the
        source is still the version ``name`` stands for. None if another thread
        of this process is filling it, the bytes did not match, or the copy
        cannot be written (full disk...); ``OSError`` from ``read`` propagates."""
        with self._lock:
            if name in self._filling:
                return None
            self._filling.add(name)
        tmp = os.path.join(self.directory, f"{TMP_PREFIX}{os.getpid()}-{next(self._counter)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            with self._lock:
                self._filling.discard(name)
            return None
        try:
            done = 0
            while done < size:
                chunk = read(done, min(FILL_CHUNK, size - done))
                if not chunk:
                    break
                os.write(fd, chunk)  # a short write on tmpfs means ENOSPC: raises
                done += len(chunk)
            if done != size or not recheck():
                return None
            os.close(fd)
            fd = -1
            if not self._make_room(size, tmp, name):
                return None
            tmp = ""
            self.fills += 1
            return LocalCopy(name, size, path, self._clock())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                return None
            raise
        finally:
            if fd >= 0:
                os.close(fd)
            if tmp:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            with self._lock:
                self._filling.discard(name)

    def _make_room(self, size: int, tmp: str, name: str) -> bool:
        """Under the instance lock: evict LRU copies until ``size`` more fits,
        then rename ``tmp`` to ``name``."""
        lock_fd = os.open(os.path.join(self.directory, LOCK_NAME), os.O_WRONLY | os.O_NOFOLLOW)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            copies = []
            total = 0
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    copies.append((st.st_mtime_ns, entry.name, st.st_size))
                    total += st.st_size
            if total + size > self.max_bytes:
                copies.sort()
                for _, old, old_size in copies:
                    if total + size <= self.max_bytes:
                        break
                    if old == name:
                        continue
                    try:
                        os.unlink(os.path.join(self.directory, old))
                    except OSError:
                        continue
                    total -= old_size
                    self.evictions += 1
            if total + size > self.max_bytes:
                return False
            os.rename(tmp, os.path.join(self.directory, name))
            return True
        finally:
            os.close(lock_fd)  # releases the flock

    # -- serve --------------------------------------------------------------------

    def open(self, copy: LocalCopy, start: int, length: int) -> Optional[LocalBody]:
        """The copy's bytes ``[start, start + length)``, or None if the copy is gone
        (evicted). Marks it used. (A copy in place is whole and never changes:
        it was renamed into this private directory complete, under a name that
        includes its size.)"""
        try:
            fd = os.open(self.directory + "/" + copy.name, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        now = self._clock()
        if now - copy.used_at >= self.freshness:
            copy.used_at = now
            try:
                os.utime(fd)
            except OSError:
                pass
        return LocalBody(fd, start, length, whole=(start == 0 and length == copy.size))

    def size_bytes(self) -> int:
        """Bytes of the copies in place (every process's)."""
        total = 0
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if not entry.name.startswith("."):
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        pass
        return total


_IPPROTO_TCP, _TCP_NODELAY = 6, 1
_ONE = ctypes.c_int(1)
_setsockopt: Any
try:
    _setsockopt = ctypes.CDLL(None, use_errno=True).setsockopt
    _setsockopt.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32)
    _setsockopt.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - no libc
    _setsockopt = None


def _core_sets_nodelay() -> bool:
    module = sys.modules.get("uwsgi")
    opt = getattr(module, "opt", None) or {}
    return bool(opt.get("tcp-nodelay") or opt.get(b"tcp-nodelay"))


_core_nodelay: Optional[bool] = None


def no_delay() -> None:
    """TCP_NODELAY on the connection of uWSGI's current request, unless uWSGI
    already sets it on every connection (``tcp-nodelay``, README's recommended
    configuration). Nothing outside uWSGI, on a unix socket, or on any error."""
    global _core_nodelay
    module = sys.modules.get("uwsgi")
    if module is None or _setsockopt is None:
        return
    if _core_nodelay is None:
        _core_nodelay = _core_sets_nodelay()
    if _core_nodelay:
        return
    try:
        fd = module.connection_fd()
    except Exception:  # noqa: BLE001 - no current request
        return
    _setsockopt(fd, _IPPROTO_TCP, _TCP_NODELAY, ctypes.byref(_ONE), ctypes.sizeof(_ONE))


def getenv(name: str) -> Optional[str]:
    """``name`` from the process environment as C sees it: also what uWSGI's
    ``env =`` option set after the interpreter took its ``os.environ`` copy."""
    value = os.environ.get(name)
    if value is not None:
        return value
    try:
        libc = ctypes.CDLL(None)
        libc.getenv.argtypes = (ctypes.c_char_p,)
        libc.getenv.restype = ctypes.c_char_p
        raw = libc.getenv(name.encode())
    except (OSError, AttributeError):
        return None
    return None if raw is None else os.fsdecode(raw)


def from_settings(settings: LocalCacheSettings, instance: int, fresh: bool,
                  log: Callable[[str], None]) -> Optional[LocalCache]:
    """The instance's cache as configured: each ``glusterfs-local-cache*`` option
    given wins; else its environment variable (:data:`SIZE_ENV`, :data:`DIR_ENV`,
    :data:`MAX_FILE_ENV`, also as set by uWSGI's ``env =``); else the default
    (256M, ``/dev/shm``, 64M). A size of 0 turns the cache off. Returns None
    when off or when the directory cannot be used (one log line says why)."""
    try:
        max_bytes = settings.size
        if max_bytes is None:
            max_bytes = parse_size(getenv(SIZE_ENV) or str(DEFAULT_MAX_BYTES))
        max_file = settings.max_file
        if max_file is None:
            max_file = parse_size(getenv(MAX_FILE_ENV) or str(DEFAULT_MAX_FILE))
    except ValueError as exc:
        log(f"local cache off: {SIZE_ENV}/{MAX_FILE_ENV}: {exc}")
        return None
    if max_bytes == 0:
        return None
    base = settings.directory or getenv(DIR_ENV) or DEFAULT_BASE
    try:
        cache = LocalCache.create(base, instance, fresh, max_bytes=max_bytes, max_file=max_file)
    except OSError as exc:
        log(f"local cache off: {instance_dir(base, instance)}: {exc.strerror or exc}")
        return None
    if fresh:
        log(f"local cache {cache.directory}: {max_bytes >> 20} MiB for the instance, files up to "
            f"{cache.max_file >> 20} MiB")
    return cache
