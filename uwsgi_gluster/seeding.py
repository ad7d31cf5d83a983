"""Writing files into a volume through libgfapi (demo data, test corpora, benchmarks).

Contract: :func:`connect` returns a ready ``glfs_t`` for a volume on a local
server; :func:`write_tree` makes parent directories and (over)writes each file,
optionally setting its mtime, so seeding is idempotent.
"""

from __future__ import annotations

import errno
import posixpath
from typing import Mapping, Optional

from . import gfapi
from .config import MountSpec, Server
from .volume import Volume


def connect(volume: str, host: str = "127.0.0.1", port: int = 24007) -> int:
    spec = MountSpec(mountpoint="/", volume=volume, servers=(Server("tcp", host, port),), where="seeding")
    return Volume(spec, log=lambda _m: None).handle()


def makedirs(fs: int, path: str) -> None:
    parts = [p for p in path.split("/") if p]
    current = ""
    for part in parts:
        current += "/" + part
        try:
            gfapi.mkdir(fs, current)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise


def write_file(fs: int, path: str, data: bytes, mtime: Optional[int] = None) -> None:
    makedirs(fs, posixpath.dirname(path))
    fd = gfapi.create_file(fs, path)
    try:
        gfapi.pwrite_all(fd, data)
    finally:
        gfapi.close(fd)
    if mtime is not None:
        gfapi.set_mtime(fs, path, mtime)


def write_tree(fs: int, files: Mapping[str, bytes], mtime: Optional[int] = None) -> None:
    for path, data in files.items():
        write_file(fs, path, data, mtime)
