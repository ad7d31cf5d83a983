"""The WSGI application of one mount: PATH_INFO -> a file of the volume.

Contract (matches the native plugin for GET and HEAD of files):

* ``PATH_INFO`` (the percent-decoded request path, as uWSGI passes it) is
  opened as-is in the mount's volume; the mountpoint is not part of it.
* A file: ``200`` with ``Content-Type`` (only when the mime table knows the
  extension), ``Last-Modified``, ``Content-Length``; HEAD sends no body.
* Missing file: native's ``404``; empty or over-long path: native's ``403``;
  a directory: ``403`` (native answers a broken ``200``); a path with a NUL
  byte: ``400``; no reachable server: ``503`` with ``Retry-After``.
* Bodies are streamed with positioned reads of at most :data:`READ_SIZE`
  bytes; the file is closed when the body is exhausted or closed.

:meth:`MountApp.respond` builds an immutable :class:`Response`;
:meth:`MountApp.__call__` is the only code that speaks WSGI.
"""

from __future__ import annotations

import ctypes
import stat as statmod
from dataclasses import dataclass
from typing import Iterable, Optional, Tuple

from . import gfapi
from .http import http_date
from .mime import MimeTypes
from .volume import Unavailable, Volume

PATH_MAX = 4096
READ_SIZE = 1 << 20

Headers = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Response:
    status: str
    headers: Headers
    body: Iterable[bytes] = ()


def _plain(status: str, text: str, extra: Headers = ()) -> Response:
    """An error page exactly as uWSGI's own uwsgi_404()/uwsgi_403() write it."""
    return Response(status, (("Connection", "close"), ("Content-Type", "text/plain")) + extra,
                    (text.encode(),))


NOT_FOUND = _plain("404 Not Found", "Not Found")
FORBIDDEN = _plain("403 Forbidden", "Forbidden")
BAD_REQUEST = _plain("400 Bad Request", "Bad Request")


def unavailable(retry_after: int) -> Response:
    return _plain("503 Service Unavailable", "Service Unavailable", (("Retry-After", str(retry_after)),))


class FileBody:
    """Iterates a glfs fd from ``start`` for ``length`` bytes; owns the fd."""

    def __init__(self, fd: int, start: int, length: int, read_size: int = READ_SIZE):
        self._fd: Optional[int] = fd
        self._offset = start
        self._remaining = length
        self._buffer = ctypes.create_string_buffer(max(1, min(length, read_size)))
        self._size = len(self._buffer)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._remaining <= 0 or self._fd is None:
            self.close()
            raise StopIteration
        want = min(self._remaining, self._size)
        got = gfapi.pread_into(self._fd, self._buffer, self._offset, want)
        if got <= 0:
            self.close()
            raise IOError(f"file shrank while it was being sent ({self._remaining} bytes missing)")
        self._offset += got
        self._remaining -= got
        return ctypes.string_at(self._buffer, got)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            gfapi.close(fd)


class MountApp:
    """Serves the files of one volume; one instance per ``glusterfs-mount``."""

    def __init__(self, volume: Volume, mime: MimeTypes):
        self.volume = volume
        self.mime = mime

    def respond(self, method: str, path: bytes) -> Response:
        if not path or len(path) > PATH_MAX:
            return FORBIDDEN
        if b"\0" in path:
            return BAD_REQUEST
        try:
            fs = self.volume.handle()
        except Unavailable as exc:
            return unavailable(exc.retry_after)
        try:
            fd = gfapi.open_file(fs, path)
        except OSError:
            return NOT_FOUND
        try:
            st = gfapi.fstat(fd)
        except OSError:
            gfapi.close(fd)
            return FORBIDDEN
        if not statmod.S_ISREG(st.st_mode):
            gfapi.close(fd)
            return FORBIDDEN
        headers = []
        content_type = self.mime.lookup(path)
        if content_type:
            headers.append(("Content-Type", content_type))
        headers.append(("Last-Modified", http_date(st.st_mtime)))
        headers.append(("Content-Length", str(st.st_size)))
        if method == "HEAD":
            gfapi.close(fd)
            return Response("200 OK", tuple(headers))
        return Response("200 OK", tuple(headers), FileBody(fd, 0, st.st_size))

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "").encode("latin-1")
        response = self.respond(environ.get("REQUEST_METHOD", "GET"), path)
        start_response(response.status, list(response.headers))
        return response.body


class NoMount:
    """The default app when no mount has mountpoint ``/``: native's 404."""

    def __call__(self, environ, start_response):
        start_response(NOT_FOUND.status, list(NOT_FOUND.headers))
        return NOT_FOUND.body
