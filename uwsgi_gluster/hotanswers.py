"""Hot answers: complete ``200`` answers to plain ``GET``s, written for the C
plugin to send without entering Python (``profiles/plugins/glusterfs.c``,
``hot_answer``).

Contract:

* One directory per instance, :data:`SUBDIR` inside the instance's directory
  under :data:`BASE` (tmpfs; the local content cache's own directory when the
  cache is there, else one made and cleaned the same way, :mod:`.localcache`:
  mode ``0700``, our uid, never a symlink), made ``0700`` too; its path is put
  in the environment (:data:`DIR_ENV`) for the C side. Used only when the C side reads it (:data:`ACTIVE_ENV`, set by
  the plugin's init: ./uwsgi, the distribution's uwsgi with our plugin) and
  only for an instance whose answers depend on the path alone: one mount, at
  ``/``, and no option that may store or rewrite responses (:mod:`.routing`).
* :meth:`HotAnswers.publish` writes, for the exact ``PATH_INFO`` of a plain
  ``GET`` (:func:`.hotpath.plain`) answered ``200`` with a whole file of at
  most :data:`MAX_BODY` bytes from a validated cache entry, when that
  ``PATH_INFO`` is the file's own normalized path (not ``//a``, ``/./a``, a
  directory's index: so spelling variants cannot multiply answers), the status, every
  header as the app sent them, and the body: one file named
  :func:`name_of` (FNV-1a 64 of ``PATH_INFO``), in the format :func:`encode`
  documents (the same as the C comment), written to a temporary file and
  renamed into place. Its mtime is the wall-clock moment the entry was last
  found unchanged on the volume; its atime is 0 ("not read since").
* The C side serves a file only while ``0 <= now - mtime < freshness``; so a
  file changed on the volume is never answered in its old form more than
  ``freshness`` (1 s) after the change, whatever happens to the refresher.
* :meth:`HotAnswers.refresh_once` (one worker of the instance, from its
  background refresher): every answer read since it was validated (atime
  past mtime: reading it on a ``relatime`` tmpfs sets the atime) and
  validated at least :data:`.refresher.AGE` x freshness ago is revalidated:
  the volume path's identity compared with the one in the file; unchanged ->
  the mtime becomes the moment before the volume was asked (through the
  answer opened again and found to be the inode that was read, so a newer
  answer renamed in meanwhile is never touched);
  changed or gone -> removed. When :data:`BATCH_MIN` or more answers due are
  files of one directory and a ``stat_dir`` is given, that directory is listed
  once (``readdirplus``: the stat of every entry) instead of asking the volume
  for each file; an answer whose name the listing does not show as a
  non-symlink (gone, a symlink, beyond the listing bound) is asked for alone.
  Answers not validated for :data:`DROP_AFTER`
  seconds are removed, and beyond :data:`MAX_ANSWERS` answers or
  :data:`MAX_BYTES` bytes the least recently validated go first.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat as statmod
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .cache import identity_of
from .hotpath import plain

MAGIC = b"UGHOT01\0"
#: magic, body offset, path, volume path and head lengths, flags, freshness ms, identity
_FIXED = struct.Struct("<8s6I4Q")
FIXED = _FIXED.size  # 64
#: flag: the mount serves precompressed variants (a request with Accept-Encoding goes to Python)
PRECOMPRESSED = 1
MAX_BODY = 64 << 10
MAX_ANSWERS = 2048
MAX_BYTES = 32 << 20
#: answers not validated for this many seconds are removed
DROP_AFTER = 30.0
#: answers validated at least AGE x freshness ago are revalidated when read since
AGE = 0.6
#: this many answers due in one directory are revalidated with one listing of it
BATCH_MIN = 4
SUBDIR = ".hot"  # a dot name: the local cache's own scans skip it
#: where the instance directory holding :data:`SUBDIR` is, whatever the local
#: cache's directory: memory (tmpfs), not a disk file system
BASE = "/dev/shm"
DIR_ENV = "UWSGI_GLUSTER_HOT_DIR"
ACTIVE_ENV = "UWSGI_GLUSTER_HOT_ANSWERS"
TMP_PREFIX = ".tmp-"
_GONE = (errno.ENOENT, errno.ENOTDIR)
#: how the refresher opens an answer: never through a symlink, never marking it read
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME | os.O_CLOEXEC
_FNV_OFFSET, _FNV_PRIME, _MASK = 0xCBF29CE484222325, 0x100000001B3, (1 << 64) - 1

Identity = Tuple[int, int, int, int]
#: ``stat_dir(directory, names)`` -> ``{name: stat}`` (see :meth:`HotAnswers.refresh_once`)
StatDir = Callable[[bytes, List[bytes]], Dict[bytes, Any]]


@dataclass(frozen=True)
class _Due:
    """An answer due for revalidation: its file name and inode in the hot
    directory, and the volume path and identity it was written for."""

    name: str
    ino: int
    volume_path: bytes
    identity: Identity


def fnv1a64(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK
    return value


def name_of(path: bytes) -> str:
    """The hot file's name for request path ``path`` (as the C side computes it)."""
    return "%016x" % fnv1a64(path)


def encode(path: bytes, volume_path: bytes, identity: Identity, status: str,
           headers: Sequence[Tuple[str, str]], body: bytes, flags: int, freshness: float) -> bytes:
    """A hot file: the fixed header (:data:`_FIXED`: magic, body offset, the
    lengths of the request path, volume path and head, flags, freshness in
    ms, identity), the request path, the volume path, the head (``status\\n``
    then ``Name: value\\n`` per header, latin-1 as uWSGI sends them), the body."""
    head = "".join([status, "\n"] + [f"{name}: {value}\n" for name, value in headers]).encode("latin-1")
    offset = FIXED + len(path) + len(volume_path) + len(head)
    fixed = _FIXED.pack(MAGIC, offset, len(path), len(volume_path), len(head), flags,
                        int(freshness * 1000), *identity)
    return b"".join((fixed, path, volume_path, head, body))


def decode_fixed(data: bytes) -> Optional[Tuple[bytes, bytes, Identity]]:
    """``(request path, volume path, identity)`` of a hot file's first bytes
    (at least :data:`FIXED` + both paths), or None if they are not one."""
    if len(data) < FIXED:
        return None
    magic, offset, path_len, volume_len, head_len, _, _, *identity = _FIXED.unpack_from(data)
    paths_end = FIXED + path_len + volume_len
    if magic != MAGIC or offset != paths_end + head_len or len(data) < paths_end:
        return None
    ino, size, mtime_ns, ctime_ns = identity
    return data[FIXED:FIXED + path_len], data[FIXED + path_len:paths_end], (ino, size, mtime_ns, ctime_ns)


def eligible(mountpoints: Iterable[str], rewriter: Optional[str], getenv: Callable[[str], Optional[str]]) -> bool:
    """May this instance publish hot answers? (C reads them: ``getenv`` must
    see the variable the plugin set in C after Python took its copy of the
    environment; one mount at ``/``; no option that may store or rewrite
    responses.)"""
    return getenv(ACTIVE_ENV) == "1" and list(mountpoints) == ["/"] and rewriter is None


class HotAnswers:
    """The hot answers of one instance, in ``directory``; see the module contract."""

    def __init__(self, directory: str, freshness: float, precompressed: bool,
                 clock: Callable[[], float] = time.monotonic, wall_ns: Callable[[], int] = time.time_ns):
        self.directory = directory
        self.freshness = freshness
        self.flags = PRECOMPRESSED if precompressed else 0
        self._clock = clock
        self._wall_ns = wall_ns
        self._counter = itertools.count()
        #: request path -> validated_at of the entry last published for it (this worker)
        self._published: dict = {}
        self.published = self.revalidated = self.dropped = 0

    @classmethod
    def create(cls, parent: str, **kwargs: Any) -> HotAnswers:
        """The directory :data:`SUBDIR` of ``parent`` (the local cache's, already
        checked), made ``0700`` if missing; ``OSError`` if it is not a
        directory of ours with that mode."""
        path = os.path.join(parent, SUBDIR)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not statmod.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or statmod.S_IMODE(st.st_mode) != 0o700:
            raise OSError(errno.EPERM, f"{path} is not a directory of uid {os.geteuid()} with mode 0700")
        return cls(path, **kwargs)

    # -- publish --------------------------------------------------------------

    def publish(self, environ: Mapping[str, Any], volume_path: bytes, entry: Any, status: str,
                headers: Sequence[Tuple[str, str]], body: Callable[[], Optional[bytes]]) -> bool:
        """Write the answer ``status``/``headers`` + ``body()`` (the whole file of
        cache entry ``entry``, at ``volume_path``) for this request, if it is a
        plain ``GET`` answered ``200`` by the default app, the file is small
        enough and this worker has not published this validation of it yet.
        True if written."""
        if (status != "200 OK" or entry is None or entry.size > MAX_BODY
                or not plain(environ, bool(self.flags & PRECOMPRESSED))
                or environ.get("SCRIPT_NAME") or "UWSGI_APPID" in environ):
            return False
        path = environ.get("PATH_INFO", "").encode("latin-1")
        if path != volume_path or self._published.get(path) == entry.validated_at:
            return False  # only a file's own, normalized path: one answer per file at most
        data = body()
        if data is None or len(data) != entry.size:
            return False
        validated_ns = self._wall_ns() - int((self._clock() - entry.validated_at) * 1e9)
        if not self._write(name_of(path), encode(path, volume_path, entry.identity, status, headers, data,
                                                 self.flags, self.freshness), validated_ns):
            return False
        if len(self._published) >= MAX_ANSWERS:
            self._published.clear()
        self._published[path] = entry.validated_at
        self.published += 1
        return True

    def _write(self, name: str, data: bytes, mtime_ns: int) -> bool:
        tmp = os.path.join(self.directory, f"{TMP_PREFIX}{os.getpid()}-{next(self._counter)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            try:
                written = os.write(fd, data)
                os.utime(fd, ns=(0, mtime_ns))
            finally:
                os.close(fd)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.rename(tmp, os.path.join(self.directory, name))
            return True
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return False

    # -- revalidate -----------------------------------------------------------

    def refresh_once(self, stat: Callable[[bytes], Any], pool: Optional[ThreadPoolExecutor] = None,
                     stat_dir: Optional[StatDir] = None) -> int:
        """One pass over the directory (see the module contract); the number of
        answers settled (revalidated or removed). ``stat(volume path)`` asks the
        volume for one file; ``stat_dir(directory, names)``, if given, for the
        files ``names`` of one directory at once: ``{name: stat}`` for those of
        them it found as non-symlinks (it may leave any out)."""
        now = self._wall_ns()
        found: List[Tuple[int, int, int, str]] = []
        with os.scandir(self.directory) as entries:
            for item in entries:
                try:
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue
                if item.name.startswith("."):  # a temporary file a dead process left
                    if now - st.st_mtime_ns > DROP_AFTER * 1e9 and now - st.st_ctime_ns > DROP_AFTER * 1e9:
                        self._unlink(item.name, None)
                    continue
                found.append((st.st_mtime_ns, st.st_atime_ns, st.st_size, item.name))
        found.sort()
        count, total = len(found), sum(size for _, _, size, _ in found)
        due = []
        for mtime_ns, atime_ns, size, name in found:
            if count > MAX_ANSWERS or total > MAX_BYTES or now - mtime_ns > DROP_AFTER * 1e9:
                self._unlink(name, None)
                count, total = count - 1, total - size
                continue
            if atime_ns > mtime_ns and now - mtime_ns >= AGE * self.freshness * 1e9:
                due.append(name)

        return self._revalidate(due, stat, stat_dir, pool)

    def _revalidate(self, names: List[str], stat: Callable[[bytes], Any], stat_dir: Optional[StatDir],
                    pool: Optional[ThreadPoolExecutor]) -> int:
        """Revalidate answers ``names``: by directory listing where
        :data:`BATCH_MIN` of them share a directory, else one ``stat`` each."""
        due = [found for found in map(self._read_due, names) if found is not None]
        by_dir: Dict[bytes, List[_Due]] = {}
        for item in due:
            by_dir.setdefault(item.volume_path.rpartition(b"/")[0] or b"/", []).append(item)
        lister = stat_dir
        groups = [(parent, items) for parent, items in by_dir.items()
                  if lister is not None and len(items) >= BATCH_MIN]
        listed_dirs = {parent for parent, _ in groups}
        singles = [item for parent, items in by_dir.items() if parent not in listed_dirs for item in items]

        def listed(group: Tuple[bytes, List[_Due]]) -> int:
            parent, items = group
            since = self._wall_ns()
            try:
                stats = lister(parent, [item.volume_path.rpartition(b"/")[2] for item in items]) if lister else {}
            except OSError:
                stats = {}
            done = 0
            for item in items:
                st = stats.get(item.volume_path.rpartition(b"/")[2])
                if st is None:
                    done += self._check(item, stat)
                else:
                    done += self._apply(item, identity_of(st), since)
            return done

        def single(item: _Due) -> int:
            return self._check(item, stat)

        if pool is not None and len(groups) + len(singles) > 1:
            results = list(pool.map(listed, groups)) + list(pool.map(single, singles))
        else:
            results = [listed(group) for group in groups] + [single(item) for item in singles]
        return sum(results)

    def _read_due(self, name: str) -> Optional[_Due]:
        """The volume path and identity answer ``name`` was written for (an
        answer that is not one is removed), or None."""
        try:
            fd = os.open(os.path.join(self.directory, name), _READ_FLAGS)
        except OSError:
            return None
        try:
            ino = os.fstat(fd).st_ino
            decoded = decode_fixed(os.pread(fd, FIXED + 2 * 4096, 0))
        finally:
            os.close(fd)
        if decoded is None:
            self._unlink(name, ino)
            return None
        return _Due(name, ino, decoded[1], decoded[2])

    def _check(self, item: _Due, stat: Callable[[bytes], Any]) -> int:
        """Ask the volume about one answer's file; 1 if the answer was settled."""
        since = self._wall_ns()
        try:
            now: Optional[Identity] = identity_of(stat(item.volume_path))
        except OSError as exc:
            if exc.errno not in _GONE:
                return 0  # the volume's trouble: the answer just expires
            now = None
        return self._apply(item, now, since)

    def _apply(self, item: _Due, now: Optional[Identity], since: int) -> int:
        """Answer ``item`` against its file's identity ``now`` (None: gone), as
        found by asking the volume at ``since``: unchanged -> validated at
        ``since`` (only if the answer in place is still the one read), else
        removed. 1 if settled."""
        if now != item.identity:
            self._unlink(item.name, item.ino)
            return 1
        try:
            fd = os.open(os.path.join(self.directory, item.name), _READ_FLAGS)
        except OSError:
            return 0
        try:
            if os.fstat(fd).st_ino != item.ino:
                return 0  # a newer answer was renamed into place meanwhile: it keeps its own time
            os.utime(fd, ns=(0, since))
        finally:
            os.close(fd)
        self.revalidated += 1
        return 1

    def _unlink(self, name: str, ino: Optional[int]) -> None:
        """Remove answer ``name`` (only if it still is inode ``ino``, when given)."""
        path = os.path.join(self.directory, name)
        try:
            if ino is not None and os.lstat(path).st_ino != ino:
                return
            os.unlink(path)
            self.dropped += 1
        except OSError:
            pass
