"""The one place that loads libgfapi.

It imports the Gluster project's binding (PyPI ``gfapi``) for its library
loading and ``struct stat`` layout, after repairing the binding's import on
Python >= 3.10 (it does ``from collections import Iterator``; the alias moved to
``collections.abc``). On top of that it declares the raw calls the serving
path needs with their real signatures: ``glfs_set_volfile_server`` with a port
per server, and ``glfs_pread``/``glfs_pwrite`` with a 64-bit offset (the
binding's ``glfs_lseek`` takes a C int and breaks past 2 GiB).

Every function here returns plain Python values or raises :class:`GlusterError`
carrying ``errno``. Calls release the GIL (ctypes does), so threads overlap.
"""

from __future__ import annotations

import collections
import collections.abc
import ctypes
import errno as _errno
import itertools
import os
from typing import TYPE_CHECKING


def _repair_binding_import() -> bool:
    """Give ``collections`` the ABC aliases the binding still imports from it.

    Returns True if an alias had to be added (Python >= 3.10).
    """
    if hasattr(collections, "Iterator"):
        return False
    collections.Iterator = collections.abc.Iterator  # type: ignore[attr-defined]
    return True


BINDING_REPAIRED = _repair_binding_import()

#: Full path of a libgfapi to use instead of the system one (set by a build that
#: asked pkg-config for glusterfs-api). Loaded first, so the binding's
#: ``CDLL("libgfapi.so.0")`` resolves to this already-loaded copy.
LIBRARY_OVERRIDE = os.environ.get("UWSGI_GLUSTER_LIBGFAPI") or None
if LIBRARY_OVERRIDE:
    ctypes.CDLL(LIBRARY_OVERRIDE, mode=ctypes.RTLD_GLOBAL, use_errno=True)

from gluster.gfapi import api as _api  # noqa: E402  (needs the repair above)
from gluster.gfapi import gfapi as binding  # noqa: E402,F401  (high-level API, for seeding tools)

if TYPE_CHECKING:
    class Stat(ctypes.Structure):
        """``struct stat`` as the binding declares it (its fields, for the type checker)."""

        st_dev: int
        st_ino: int
        st_nlink: int
        st_mode: int
        st_uid: int
        st_gid: int
        st_rdev: int
        st_size: int
        st_blksize: int
        st_blocks: int
        st_atime: int
        st_atimensec: int
        st_mtime: int
        st_mtimensec: int
        st_ctime: int
        st_ctimensec: int
else:
    Stat = _api.Stat
Dirent = _api.Dirent
LIBRARY = _api.so_file_name
_lib = _api.client

c_ssize_t = ctypes.c_ssize_t
c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
c_int = ctypes.c_int
c_size_t = ctypes.c_size_t
c_off_t = ctypes.c_int64


def _declare(name, restype, *argtypes):
    func = getattr(_lib, name)
    func.restype = restype
    func.argtypes = argtypes
    return func


glfs_new = _declare("glfs_new", c_void_p, c_char_p)
glfs_set_volfile = _declare("glfs_set_volfile", c_int, c_void_p, c_char_p)
glfs_set_volfile_server = _declare("glfs_set_volfile_server", c_int, c_void_p, c_char_p, c_char_p, c_int)
glfs_set_logging = _declare("glfs_set_logging", c_int, c_void_p, c_char_p, c_int)
glfs_set_xlator_option = _declare("glfs_set_xlator_option", c_int, c_void_p, c_char_p, c_char_p, c_char_p)
glfs_init = _declare("glfs_init", c_int, c_void_p)
glfs_fini = _declare("glfs_fini", c_int, c_void_p)
glfs_open = _declare("glfs_open", c_void_p, c_void_p, c_char_p, c_int)
glfs_creat = _declare("glfs_creat", c_void_p, c_void_p, c_char_p, c_int, ctypes.c_uint)
glfs_close = _declare("glfs_close", c_int, c_void_p)
glfs_fstat = _declare("glfs_fstat", c_int, c_void_p, ctypes.POINTER(Stat))
glfs_stat = _declare("glfs_stat", c_int, c_void_p, c_char_p, ctypes.POINTER(Stat))
glfs_lstat = _declare("glfs_lstat", c_int, c_void_p, c_char_p, ctypes.POINTER(Stat))
# GFAPI_6.0 signatures: a trailing struct glfs_stat * (pre/post stat), NULL here.
glfs_pread = _declare("glfs_pread", c_ssize_t, c_void_p, c_void_p, c_size_t, c_off_t, c_int, c_void_p)
glfs_pwrite = _declare("glfs_pwrite", c_ssize_t, c_void_p, c_void_p, c_size_t, c_off_t, c_int, c_void_p, c_void_p)
glfs_mkdir = _declare("glfs_mkdir", c_int, c_void_p, c_char_p, ctypes.c_uint)
glfs_unlink = _declare("glfs_unlink", c_int, c_void_p, c_char_p)
glfs_rmdir = _declare("glfs_rmdir", c_int, c_void_p, c_char_p)
glfs_symlink = _declare("glfs_symlink", c_int, c_void_p, c_char_p, c_char_p)
glfs_readlink = _declare("glfs_readlink", c_ssize_t, c_void_p, c_char_p, c_char_p, c_size_t)
glfs_rename = _declare("glfs_rename", c_int, c_void_p, c_char_p, c_char_p)
glfs_utimens = _declare("glfs_utimens", c_int, c_void_p, c_char_p, ctypes.POINTER(_api.Timespec * 2))
glfs_opendir = _declare("glfs_opendir", c_void_p, c_void_p, c_char_p)
glfs_readdirplus_r = _declare("glfs_readdirplus_r", c_int, c_void_p, ctypes.POINTER(Stat),
                              ctypes.POINTER(Dirent), ctypes.POINTER(ctypes.POINTER(Dirent)))
glfs_closedir = _declare("glfs_closedir", c_int, c_void_p)


class GlusterError(OSError):
    """A failed libgfapi call; ``errno`` is the C errno it left."""


def _error(call: str, path: str = "") -> GlusterError:
    code = ctypes.get_errno() or _errno.EIO
    detail = f"{call}({path})" if path else call
    return GlusterError(code, f"{detail}: {os.strerror(code)}")


def _b(text) -> bytes:
    return text if isinstance(text, bytes) else os.fsencode(text)


# -- volume handle --------------------------------------------------------------

def new(volume: str) -> int:
    fs = glfs_new(_b(volume))
    if not fs:
        raise _error("glfs_new", volume)
    return fs


def set_volfile_server(fs: int, transport: str, host: str, port: int) -> None:
    if glfs_set_volfile_server(fs, _b(transport), _b(host), port):
        raise _error("glfs_set_volfile_server", f"{transport}:{host}:{port}")


def set_volfile(fs: int, path: str) -> None:
    if glfs_set_volfile(fs, _b(path)):
        raise _error("glfs_set_volfile", path)


def set_logging(fs: int, logfile: str, level: int) -> None:
    if glfs_set_logging(fs, _b(logfile), level):
        raise _error("glfs_set_logging", logfile)


def set_xlator_option(fs: int, xlator: str, key: str, value: str) -> None:
    if glfs_set_xlator_option(fs, _b(xlator), _b(key), _b(value)):
        raise _error("glfs_set_xlator_option", f"{xlator}.{key}={value}")


def init(fs: int) -> None:
    if glfs_init(fs):
        raise _error("glfs_init")


def fini(fs: int) -> None:
    glfs_fini(fs)


# -- files ------------------------------------------------------------------

# Two monotonic counters: next() on an itertools.count is one C call, atomic
# under the GIL, takes no lock and cannot block (a threading.Lock here deadlocked
# uWSGI worker threads when clients aborted downloads).
_opens = itertools.count()
_closes = itertools.count()


def _peek(counter) -> int:
    return int(repr(counter)[len("count("):-1])


def open_files() -> int:
    """glfds this process opened with :func:`open_file`/:func:`create_file` and
    has not yet passed to :func:`close` (a leak check, not a limit)."""
    return _peek(_opens) - _peek(_closes)


def open_file(fs: int, path, flags: int = os.O_RDONLY) -> int:
    fd = glfs_open(fs, _b(path), flags)
    if not fd:
        raise _error("glfs_open", path)
    next(_opens)
    return fd


def create_file(fs: int, path, mode: int = 0o644) -> int:
    fd = glfs_creat(fs, _b(path), os.O_WRONLY | os.O_TRUNC | os.O_CREAT, mode)
    if not fd:
        raise _error("glfs_creat", path)
    next(_opens)
    return fd


def close(fd: int) -> None:
    next(_closes)
    glfs_close(fd)


def fstat(fd: int) -> Stat:
    st = Stat()
    if glfs_fstat(fd, ctypes.byref(st)):
        raise _error("glfs_fstat")
    return st


def stat(fs: int, path) -> Stat:
    st = Stat()
    if glfs_stat(fs, _b(path), ctypes.byref(st)):
        raise _error("glfs_stat", path)
    return st


def lstat(fs: int, path) -> Stat:
    st = Stat()
    if glfs_lstat(fs, _b(path), ctypes.byref(st)):
        raise _error("glfs_lstat", path)
    return st


# A new bytes object is filled in place by glfs_pread before any Python code can
# see it (the same pattern CPython's own os.read() uses), saving a copy per read.
_bytes_new = ctypes.pythonapi.PyBytes_FromStringAndSize
_bytes_new.restype = ctypes.py_object
_bytes_new.argtypes = (c_void_p, c_ssize_t)
_bytes_data = ctypes.pythonapi.PyBytes_AsString
_bytes_data.restype = c_void_p
_bytes_data.argtypes = (ctypes.py_object,)


def pread_bytes(fd: int, offset: int, count: int) -> bytes:
    """Up to ``count`` bytes at ``offset`` as a new bytes object (b"" at end of
    file), read straight into it: no intermediate buffer, no copy unless the
    read comes back short."""
    if count <= 0:
        return b""
    data = _bytes_new(None, count)
    got = glfs_pread(fd, _bytes_data(data), count, offset, 0, None)
    if got < 0:
        raise _error("glfs_pread")
    return data if got == count else data[:got]


def pwrite_all(fd: int, data: bytes, offset: int = 0) -> None:
    view = memoryview(data)
    while view:
        chunk = bytes(view[:1 << 20])
        done = glfs_pwrite(fd, chunk, len(chunk), offset, 0, None, None)
        if done <= 0:
            raise _error("glfs_pwrite")
        offset += done
        view = view[done:]


def mkdir(fs: int, path, mode: int = 0o755) -> None:
    if glfs_mkdir(fs, _b(path), mode):
        raise _error("glfs_mkdir", path)


def unlink(fs: int, path) -> None:
    if glfs_unlink(fs, _b(path)):
        raise _error("glfs_unlink", path)


def rmdir(fs: int, path) -> None:
    if glfs_rmdir(fs, _b(path)):
        raise _error("glfs_rmdir", path)


def symlink(fs: int, target, path) -> None:
    if glfs_symlink(fs, _b(target), _b(path)):
        raise _error("glfs_symlink", path)


def readlink(fs: int, path) -> bytes:
    """The target of a symlink, as stored (at most 4096 bytes)."""
    buf = ctypes.create_string_buffer(4097)
    got = glfs_readlink(fs, _b(path), buf, 4097)
    if got < 0:
        raise _error("glfs_readlink", path)
    return buf.raw[:got]


def rename(fs: int, old, new_path) -> None:
    if glfs_rename(fs, _b(old), _b(new_path)):
        raise _error("glfs_rename", old)


def set_mtime(fs: int, path, seconds: int) -> None:
    times = (_api.Timespec * 2)()
    for t in times:
        t.tv_sec, t.tv_nsec = seconds, 0
    if glfs_utimens(fs, _b(path), ctypes.byref(times)):
        raise _error("glfs_utimens", path)


def listdir_stat(fs: int, path):
    """Yield ``(name_bytes, Stat)`` for each entry of a directory but . and .."""
    dirp = glfs_opendir(fs, _b(path))
    if not dirp:
        raise _error("glfs_opendir", path)
    try:
        entry = Dirent()
        result = ctypes.POINTER(Dirent)()
        while True:
            st = Stat()
            if glfs_readdirplus_r(dirp, ctypes.byref(st), ctypes.byref(entry), ctypes.byref(result)):
                raise _error("glfs_readdirplus_r", path)
            if not result:
                return
            name = entry.d_name
            if name in (b".", b".."):
                continue
            yield name, st
    finally:
        glfs_closedir(dirp)
