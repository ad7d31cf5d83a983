"""The WSGI application of one mount: a request -> a file of the volume.

Contract:

* ``PATH_INFO`` (uWSGI has percent-decoded it once; it is never decoded again)
  names a path in the mount's volume; the mountpoint is not part of it. Its
  ``.``/``..`` segments are resolved lexically first, so no path leaves the
  volume root.
* ``GET``/``HEAD`` of a file: ``200`` with, first, the native plugin's
  ``Content-Type`` (only when the mime table knows the extension),
  ``Last-Modified`` and ``Content-Length``, then ``Accept-Ranges``, a strong
  ``ETag``, ``Cache-Control`` (mount key ``max-age``) and ``Vary`` (mount key
  ``precompressed``). HEAD sends no body.
* Conditional requests give ``304`` (headers from an allow-list) or ``412``;
  one ``Range`` gives ``206``/``416``; several ranges give the whole ``200``.
* A sibling ``file.br``/``file.gz`` is sent with ``Content-Encoding`` when the
  client accepts it and the mount has ``precompressed`` on (default), unless an
  option of the instance may store or rewrite responses (``cachestore``, a
  transformation...: see :mod:`.routing`), which would keep or change the
  encoded bytes without their headers: then every client gets the file itself.
* Directories: ``/dir`` -> ``301`` to ``/dir/`` (query percent-encoded);
  ``/dir/`` -> the mount's ``index`` file, else an HTML listing if
  ``autoindex`` is on (at most :data:`MAX_LISTING` rows, no dotfiles unless
  ``dotfiles`` is on, sorted by ``?sort=name|size|date&order=asc|desc``,
  cached for the freshness bound, with a :data:`LISTING_CSP` that allows no
  script), else ``403``.
* Names in :data:`HIDDEN_NAMES` at the volume root (``/.meta``...) are never
  listed nor served (``404``), whether asked for or reached through a symlink.
* Errors: missing -> native's ``404``; empty or over-long path -> native's
  ``403``; NUL in the path -> ``400``; other methods -> ``405`` with ``Allow``
  (``OPTIONS`` -> ``200`` with ``Allow``); no reachable server -> ``503`` with
  ``Retry-After``. A bad path never causes a ``500``.
* Paths are walked on the volume by :mod:`.paths` with bounded work: at most
  40 symlinks and 256 components per request (``404`` beyond), one ``lstat``
  per component, from the real path of the request's directory, which is
  cached under the cache's freshness rule. Symlinks are followed like the
  kernel and libgfapi do, every target inside the volume; with
  ``symlinks=false`` a path through any symlink is answered ``404``.
* Small files (and "not found") come from a per-worker :class:`FileCache`,
  revalidated against the volume at least every second, and read whole between
  two ``fstat`` calls that agree (a file that keeps changing gets ``503``, never
  a mix of versions); larger files are
  streamed with positioned reads of at most :data:`READ_SIZE` bytes, never
  past the requested range, and the file is closed when the body is exhausted
  or closed.
* A streamed body is the file's bytes as its headers describe them, or it ends
  short: a file that changed (inode, size, mtime or ctime), shrank or failed to
  read during the transfer gets one log line, and the response is cut (a
  ``503`` if its headers were not sent yet, else the connection is shut down
  before the last chunk), never completed with other bytes.

:meth:`MountApp.respond` builds an immutable :class:`Response`;
:meth:`MountApp.__call__` is the only code that speaks WSGI.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat as statmod
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from . import gfapi, http, paths, refresher
from .aio import Direct, OffloadTimeout
from .cache import MISSING, Entry, FileCache, identity_of
from .hotanswers import HotAnswers
from .hotpath import HotResponses
from .localcache import LocalBody, LocalCache, LocalCopy, no_delay
from .log import log as default_log
from .log import worker_id as default_worker_id
from .mime import MimeTypes
from .paths import normalize
from .volume import Unavailable, Volume

PATH_MAX = 4096
#: Rows of one autoindex page at most; a note at the bottom counts the others.
MAX_LISTING = 1000
#: the refresher's listing of a directory (hot answers due in it) reads at most
#: this many entries per answer, then asks for the rest one by one
LISTING_PER_NAME = 16
#: Names libgfapi serves that are no file of the volume (``.meta``: the client's
#: own state) or that GlusterFS keeps for itself: never listed nor served.
HIDDEN_NAMES = frozenset((b".meta", b".glusterfs", b".trashcan", b".shard", b".landfill"))
READ_SIZE = 1 << 20
#: reads of a small file before giving up on one that keeps changing (then 503)
CONSISTENT_READ_ATTEMPTS = 3
#: an autoindex page needs nothing but its own inline style: no script, no
#: other origin, whatever a file name holds
LISTING_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
#: Ranges of local copies this big or bigger are read in chunks; smaller ones
#: are read into one bytes object (written with the headers in one writev).
SENDFILE_MIN = 256 << 10
ENCODINGS = (("br", b".br"), ("gzip", b".gz"))

Headers = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Response:
    status: str
    headers: Headers
    body: Iterable[bytes] = ()
    #: the in-memory cache entry the body is (a whole-file answer), for :mod:`.hotpath`
    entry: Optional[Entry] = None


def _plain(status: str, text: str, extra: Headers = ()) -> Response:
    """An error page as uWSGI's own uwsgi_404()/uwsgi_403() write it, plus its
    Content-Length: without one, on ``http11-socket`` (which keeps the
    connection open whatever ``Connection`` says) a client reading to the end
    of the body waited for uWSGI's socket-timeout (4 s) on every 404."""
    body = text.encode()
    return Response(status, (http.header("Connection", "close"), http.header("Content-Type", "text/plain"),
                             http.header("Content-Length", str(len(body)))) + extra, (body,))


NOT_FOUND = _plain("404 Not Found", "Not Found")
FORBIDDEN = _plain("403 Forbidden", "Forbidden")
BAD_REQUEST = _plain("400 Bad Request", "Bad Request")
METHOD_NOT_ALLOWED = _plain("405 Method Not Allowed", "Method Not Allowed", (http.header("Allow", http.ALLOW_HEADER),))
PRECONDITION_FAILED = _plain("412 Precondition Failed", "Precondition Failed")
OPTIONS = Response("200 OK", (http.header("Allow", http.ALLOW_HEADER), http.header("Content-Length", "0")))

_NOT_FOUND_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EINVAL, errno.ESTALE}
_FORBIDDEN_ERRNOS = {errno.EACCES, errno.EPERM, errno.EISDIR}


def unavailable(retry_after: int) -> Response:
    return _plain("503 Service Unavailable", "Service Unavailable", (http.header("Retry-After", "%d" % retry_after),))


_CONNECTION_ERRNOS = {errno.ENOTCONN, errno.EIO, errno.ETIMEDOUT, errno.ECONNREFUSED, errno.EHOSTUNREACH,
                      errno.ECONNRESET, errno.ESHUTDOWN}


def _error_response(exc: OSError) -> Response:
    if exc.errno in _NOT_FOUND_ERRNOS:
        return NOT_FOUND
    if exc.errno in _FORBIDDEN_ERRNOS:
        return FORBIDDEN
    return unavailable(1)  # ENOTCONN, EIO...: the volume, not the request, is at fault


def _is_hidden(path: bytes) -> bool:
    """Is ``path`` (normalized) in or under one of :data:`HIDDEN_NAMES`?"""
    return path[1:2] == b"." and path[1:].split(b"/", 1)[0] in HIDDEN_NAMES


def _refuse_hidden(real: bytes) -> None:
    """``ENOENT`` for a real path in :data:`HIDDEN_NAMES` (reached by a symlink)."""
    if _is_hidden(real):
        raise OSError(errno.ENOENT, "hidden")


class TransferAborted(IOError):
    """A body could not be sent as its headers promised (the file changed,
    shrank, or a read failed); the response must not look complete."""


def _raise(exc: TransferAborted) -> None:
    raise exc


class FileBody:
    """Iterates a glfs fd from ``start`` for ``length`` bytes; owns the fd.

    Contract: the bytes yielded are the file's as of ``promised`` (see
    :func:`file_version`), or the body ends short. After reading the last
    chunk, and before yielding it, the open fd is ``fstat``-ed: if the file's
    version differs from ``promised`` (a rewrite, even of the same size, during
    the transfer), or the file shrank, or a read failed, the fd is closed and
    :attr:`abort` is called with a :class:`TransferAborted`; the last chunk is
    never yielded. ``abort`` either raises (the default re-raises, for any WSGI
    server) or returns, and the iteration then ends. The fd is closed exactly
    once, at the end, on abort, or by :meth:`close`. ``read_size`` (the most
    one read asks for) may be changed between chunks (:class:`.aio.AdaptiveBody`
    does, to the client's pace).
    """

    def __init__(self, fd: int, start: int, length: int, read_size: Optional[int] = None,
                 promised: Optional[Tuple[int, int, int, int]] = None, name: bytes = b""):
        self._fd: Optional[int] = fd
        self._offset = start
        self._length = length
        self._remaining = length
        self.read_size = read_size or READ_SIZE
        self._promised = promised
        self._name = name
        self.abort: Callable[[TransferAborted], None] = _raise

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._remaining <= 0 or self._fd is None:
            self.close()
            raise StopIteration
        try:
            chunk = gfapi.pread_bytes(self._fd, self._offset, min(self._remaining, self.read_size))
            if not chunk:
                problem = f"file shrank while it was being sent ({self._remaining} bytes missing)"
            elif len(chunk) == self._remaining and self._promised is not None:
                now = identity_of(gfapi.fstat(self._fd))
                problem = self._changes(now)
            else:
                problem = ""
        except OSError as exc:
            problem = f"read failed while it was being sent: {exc}"
        except BaseException:
            self.close()
            raise
        if problem:
            sent = self._length - self._remaining
            self.close()
            self.abort(TransferAborted(f"{os.fsdecode(self._name)}: {problem}; response cut after "
                                       f"{sent} of {self._length} bytes"))
            raise StopIteration
        self._offset += len(chunk)
        self._remaining -= len(chunk)
        return chunk

    def _changes(self, now: Tuple[int, int, int, int]) -> str:
        promised = self._promised
        if promised is None or now == promised:
            return ""
        changed = [name for name, a, b in zip(("inode", "size", "mtime", "ctime"), promised, now) if a != b]
        detail = f"size {promised[1]} -> {now[1]}" if promised[1] != now[1] else ", ".join(changed)
        return f"file changed while it was being sent ({detail})"

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            gfapi.close(fd)


class LocalGone(Exception):
    """The local copy of the cached file ``path`` was removed since it was validated."""

    def __init__(self, path: bytes):
        super().__init__(path)
        self.path = path


@dataclass(frozen=True)
class Opened:
    """A file or directory opened on the volume but not cached; owns ``fd``."""

    fd: int
    st: Any

    @property
    def mode(self) -> int:
        return self.st.st_mode

    def close(self) -> None:
        gfapi.close(self.fd)


def read_all(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes from the start of ``fd`` (fewer if it shrank)."""
    data = gfapi.pread_bytes(fd, 0, size)
    if len(data) in (0, size):
        return data
    parts = [data]
    done = len(data)
    while done < size:
        more = gfapi.pread_bytes(fd, done, size - done)
        if not more:
            break
        parts.append(more)
        done += len(more)
    return b"".join(parts)


@dataclass(frozen=True)
class Request:
    """What the responder needs of a request; ``headers`` uses environ keys."""

    method: str
    path: bytes
    script_name: bytes = b""
    query: str = ""
    headers: Mapping[str, str] = None  # type: ignore[assignment]

    def header(self, name: str) -> Optional[str]:
        return (self.headers or {}).get(name)


class MountApp:
    """Serves the files of one volume; one instance per ``glusterfs-mount``."""

    def __init__(self, volume: Volume, mime: MimeTypes, cache: Optional[FileCache] = None,
                 response_rewriter: Optional[str] = None, connection_fd: Optional[Callable[[], int]] = None,
                 log: Callable[[str], None] = default_log, worker_id: Callable[[], int] = default_worker_id,
                 local: Optional[LocalCache] = None, offload: Optional[Any] = None):
        """``response_rewriter``: the uWSGI option of this instance that may
        store or rewrite responses (see :mod:`.routing`), or None; with one,
        precompressed variants are never sent. ``connection_fd``: the current
        request's client socket (``uwsgi.connection_fd``), shut down to cut a
        body whose file changed while it was sent; None outside uWSGI.
        ``local``: the instance's local content cache (:mod:`.localcache`).
        ``offload``: where libgfapi work runs: here (:class:`.aio.Direct`, the
        default) or, in gevent mode, off the loop (:class:`.aio.Offloaded`)."""
        self.connection_fd = connection_fd
        self._log = log
        self._worker_id = worker_id
        self.volume = volume
        self.offload = offload if offload is not None else Direct()
        self.mime = mime
        self.cache = cache if cache is not None else FileCache()
        self.local = local
        self.response_rewriter = response_rewriter
        options = volume.spec.options
        self.max_age = options.get("max-age")
        self.index = options.get("index", "index.html")
        self.autoindex = options.get("autoindex", False)
        self.precompressed = bool(options.get("precompressed", True)) and response_rewriter is None
        self.symlinks = options.get("symlinks", True)
        self.dotfiles = options.get("dotfiles", False)
        self._listing_lock = threading.Lock()
        self.cache_control = http.cache_control(self.max_age)
        self.hot = HotResponses(self.cache.freshness, self.precompressed)
        #: the instance's hot answers (:mod:`.hotanswers`), set by the plugin when the C side reads them
        self.hot_answers: Optional[HotAnswers] = None

    # -- request -> response ------------------------------------------------

    def respond(self, request: Request) -> Response:
        raw = request.path
        if not raw or len(raw) > PATH_MAX:
            return FORBIDDEN
        if b"\0" in raw:
            return BAD_REQUEST
        if request.method == "OPTIONS":
            return OPTIONS
        if request.method not in ("GET", "HEAD"):
            return METHOD_NOT_ALLOWED
        path = normalize(raw)
        if path is None or _is_hidden(path):
            return NOT_FOUND
        try:
            fs = self.volume.handle()
        except Unavailable as exc:
            return unavailable(exc.retry_after)
        asked: list = []
        try:
            loaded = self._load(fs, path, asked)
        except OSError as exc:
            if exc.errno in _CONNECTION_ERRNOS:
                self.volume.report(False)
            return _error_response(exc)
        if asked:  # a fresh cache hit says nothing about the volume
            self.volume.report(True)
        if loaded is MISSING:
            return NOT_FOUND
        if statmod.S_ISREG(loaded.mode):
            return self._file(fs, request, path, loaded)
        loaded.close()
        if statmod.S_ISDIR(loaded.mode):
            return self._directory(fs, request, path)
        return FORBIDDEN

    def _load(self, fs: int, path: bytes, asked: Optional[list] = None):
        """``path`` as a cached :class:`Entry`, :data:`MISSING`, or :class:`Opened`.

        Raises ``OSError`` for failures other than "no such file". Appends to
        ``asked`` when the volume was asked (not answered from the cache alone).
        """
        def revalidate(p: bytes):
            if asked is not None:
                asked.append(p)
            return self._real(fs, p)[1]

        cached = self.cache.lookup(path, revalidate)
        if cached is not None:
            return cached
        if asked is not None:
            asked.append(path)
        try:
            real, _ = self._real(fs, path)
            fd = gfapi.open_file(fs, real)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.cache.remember_missing(path)
                return MISSING
            raise
        try:
            st = gfapi.fstat(fd)
            for _ in range(CONSISTENT_READ_ATTEMPTS):
                if not statmod.S_ISREG(st.st_mode) or st.st_size > self.cache.max_file:
                    if self.local is not None and statmod.S_ISREG(st.st_mode) and self.local.admits(st.st_size):
                        entry = self._copy_locally(path, fd, st)
                        if entry is not None:
                            gfapi.close(fd)
                            return entry
                    return Opened(fd, st)
                content = read_all(fd, st.st_size)
                after = gfapi.fstat(fd)
                if len(content) == st.st_size and identity_of(after) == identity_of(st):
                    break  # one version of the file, read whole
                st = after
            else:
                self.cache.forget(path)
                raise gfapi.GlusterError(errno.EAGAIN, f"{os.fsdecode(path)} kept changing while it was read")
        except BaseException:
            gfapi.close(fd)
            raise
        gfapi.close(fd)
        return self.cache.store(path, st, content)

    def _copy_locally(self, path: bytes, fd: int, st) -> Optional[Entry]:
        """An :class:`Entry` for ``path`` whose bytes are a local copy (made now
        from ``fd`` unless a worker already made it), or None (not copied)."""
        local = self.local
        assert local is not None
        identity = identity_of(st)
        name = local.name_of(self.volume.spec.volume, path, identity)
        copy = local.existing(name, st.st_size, path)
        if copy is None:
            copy = local.fill(name, st.st_size, path, lambda offset, count: gfapi.pread_bytes(fd, offset, count),
                              lambda: identity_of(gfapi.fstat(fd)) == identity)
        if copy is None:
            return None
        return self.cache.store(path, st, b"", local=copy)

    def _real(self, fs: int, path: bytes) -> Tuple[bytes, object]:
        """The path on the volume that ``path`` names, with no symlink left in it,
        and its stat: a bounded walk (:mod:`.paths`) from the cached real path of
        its directory. Raises ``OSError`` (``ENOENT`` for a refused symlink,
        ``ELOOP`` past the bounds)."""
        parent, _, name = path.rstrip(b"/").rpartition(b"/")
        real_parent, hops = self._real_dir(fs, parent or b"/")
        real, st, _ = paths.resolve(name, lambda p: gfapi.lstat(fs, p), lambda p: gfapi.readlink(fs, p),
                                    follow=self.symlinks, base=real_parent, hops=hops)
        _refuse_hidden(real)
        return real, st

    def _real_dir(self, fs: int, path: bytes) -> Tuple[bytes, int]:
        """``(real path, symlinks followed)`` of directory ``path``, kept in the
        cache for its freshness bound."""
        if path == b"/":
            return path, 0
        known = self.cache.kept(("dir", path))
        if known is not None:
            return known
        return self._resolve_dir(fs, path)

    def _resolve_dir(self, fs: int, path: bytes) -> Tuple[bytes, int]:
        """Walk directory ``path`` on the volume and keep the result (see :meth:`_real_dir`)."""
        key = ("dir", path)
        real, st, hops = paths.resolve(path, lambda p: gfapi.lstat(fs, p), lambda p: gfapi.readlink(fs, p),
                                       follow=self.symlinks)
        if not statmod.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "not a directory")
        _refuse_hidden(real)
        self.cache.keep(key, (real, hops), len(real))
        return real, hops

    def _file(self, fs: int, request: Request, path: bytes, loaded, retried: bool = False) -> Response:
        content_type = self.mime.lookup(path)
        encoding = ""
        if self.precompressed:
            accept = request.header("HTTP_ACCEPT_ENCODING")
            if accept:
                loaded, encoding = self._pick_encoding(fs, path, accept, loaded)
        try:
            return self._file_response(request, loaded, content_type, encoding)
        except LocalGone as gone:  # evicted since validated: make a new copy (or stream), once
            self.cache.forget(gone.path)
            if retried:
                return unavailable(1)
            try:
                again = self._load(fs, path)
            except OSError as exc:
                return _error_response(exc)
            if again is MISSING:
                return NOT_FOUND
            if not statmod.S_ISREG(again.mode):
                again.close()
                return FORBIDDEN
            return self._file(fs, request, path, again, retried=True)
        except BaseException:
            if isinstance(loaded, Opened):
                loaded.close()
            raise

    def _pick_encoding(self, fs: int, path: bytes, accept: str, loaded):
        for coding, suffix in ENCODINGS:
            if not http.accepts_encoding(accept, coding):
                continue
            try:
                variant = self._load(fs, path + suffix)
            except OSError:
                continue
            if variant is MISSING:
                continue
            if statmod.S_ISREG(variant.mode):
                if isinstance(loaded, Opened):
                    loaded.close()
                return variant, coding
            variant.close()
        return loaded, ""

    def _describe(self, loaded, content_type: Optional[str], encoding: str):
        """``(size, mtime, etag, headers, validators)`` of a file; headers are
        the native plugin's first ones, validators the ones we add."""
        if isinstance(loaded, Entry):
            ino, size, mtime_ns, ctime_ns = loaded.identity
            mtime = loaded.mtime
        else:
            ino, size, mtime_ns, ctime_ns = identity_of(loaded.st)
            mtime = loaded.st.st_mtime
        etag = http.make_etag(ino, size, mtime_ns, ctime_ns, encoding)
        headers = []
        if content_type:
            try:
                headers.append(http.header("Content-Type", content_type))
            except http.HeaderError:
                pass  # a mime table line we cannot send: no type, as for an unknown extension
        headers.append(http.header("Last-Modified", http.http_date(mtime)))
        validators = [http.header("Accept-Ranges", "bytes"), http.header("ETag", etag)]
        if encoding:
            validators.append(http.header("Content-Encoding", encoding))
        if self.cache_control:
            validators.append(http.header("Cache-Control", self.cache_control))
        if self.precompressed:
            validators.append(http.header("Vary", "Accept-Encoding"))
        return size, mtime, etag, tuple(headers), tuple(validators)

    def _file_response(self, request: Request, loaded, content_type: Optional[str], encoding: str) -> Response:
        if isinstance(loaded, Entry):  # a cached file: describe it once per coding and type
            description = loaded.extra.get((encoding, content_type))
            if description is None:
                description = self.cache.memo(loaded, (encoding, content_type),
                                              lambda: self._describe(loaded, content_type, encoding))
        else:
            description = self._describe(loaded, content_type, encoding)
        size, mtime, etag, base, added = description
        headers, validators = list(base), list(added)

        def finish(response: Response) -> Response:
            if isinstance(loaded, Opened):
                loaded.close()
            return response

        verdict = http.evaluate_preconditions(request.method, request.headers or {}, etag, mtime)
        if verdict == 304:
            return finish(Response("304 Not Modified", tuple(http.not_modified_headers(headers + validators))))
        if verdict == 412:
            return finish(PRECONDITION_FAILED)

        status, start, length = "200 OK", 0, size
        range_header = request.header("HTTP_RANGE")
        if range_header and http.if_range_allows(request.header("HTTP_IF_RANGE"), etag, mtime):
            wanted = http.parse_range(range_header, size)
            if wanted is http.UNSATISFIABLE:
                return finish(Response("416 Range Not Satisfiable",
                                       (http.header("Content-Range", http.unsatisfied_range(size)),
                                        http.header("Content-Length", "0")) + tuple(validators)))
            if isinstance(wanted, tuple):
                start, end = wanted
                status, length = "206 Partial Content", end - start
                validators.append(http.header("Content-Range", http.content_range(start, end, size)))
        headers.append(http.header("Content-Length", "%d" % length))
        headers.extend(validators)
        if request.method == "HEAD" or length == 0:
            return finish(Response(status, tuple(headers)))
        if isinstance(loaded, Entry):
            if loaded.local is not None:
                body = self._local_body(loaded.local, start, length)
                return Response(status, tuple(headers), body, entry=loaded if length == size else None)
            content = loaded.content
            if length == size:
                return Response(status, tuple(headers), (content,), entry=loaded)
            return Response(status, tuple(headers), (content[start:start + length],))
        return Response(status, tuple(headers), FileBody(loaded.fd, start, length, promised=identity_of(loaded.st),
                                                         name=request.script_name + request.path))

    def _local_body(self, copy: LocalCopy, start: int, length: int):
        """Bytes ``[start, start + length)`` of a local copy: the open copy
        (the whole file: sendfile, see :meth:`__call__`; a big range: read in
        chunks), or a range below :data:`SENDFILE_MIN` read into one bytes
        object. Raises :class:`LocalGone`."""
        assert self.local is not None
        body = self.local.open(copy, start, length)
        if body is None:
            raise LocalGone(copy.path)
        if body.whole or length >= SENDFILE_MIN:
            return body
        try:
            data = body.read(length)
        finally:
            body.close()
        if len(data) != length:
            raise LocalGone(copy.path)
        return (data,)

    def _directory(self, fs: int, request: Request, path: bytes) -> Response:
        if not request.path.endswith(b"/"):
            location = http.location(request.script_name + path + b"/", request.query)
            return Response("301 Moved Permanently", (http.header("Location", location),
                                                      http.header("Content-Type", "text/plain"),
                                                      http.header("Content-Length", "0")))
        base = path if path.endswith(b"/") else path + b"/"
        if self.index:
            index_path = base + self.index.encode()
            try:
                loaded = self._load(fs, index_path)
            except OSError:
                loaded = MISSING
            if loaded is not MISSING:
                if statmod.S_ISREG(loaded.mode):
                    return self._file(fs, request, index_path, loaded)
                loaded.close()
        if not self.autoindex:
            return FORBIDDEN
        try:
            page = self._listing(fs, request.script_name, base, http.listing_order(request.query))
        except OSError as exc:
            return _error_response(exc)
        headers = (http.header("Content-Type", "text/html; charset=utf-8"),
                   http.header("Content-Length", "%d" % len(page)),
                   http.header("Content-Security-Policy", LISTING_CSP))
        return Response("200 OK", headers, () if request.method == "HEAD" else (page,))

    def _listing(self, fs: int, script_name: bytes, base: bytes,
                 order: Tuple[str, bool] = ("name", False)) -> bytes:
        """The autoindex page of directory ``base`` in ``order`` (``(column,
        descending)``, from the query: :func:`.http.listing_order`): kept in
        the cache for its freshness bound, made by one thread at a time, at
        most :data:`MAX_LISTING` rows (the first in that order; a note tells
        how many more there are), read from the directory with memory for
        those rows only. Dotfiles are left out unless the mount has ``dotfiles=true``;
        the volume's internal names (:data:`HIDDEN_NAMES`) always are."""
        key = ("index", script_name, base, order)
        page = self.cache.kept(key)
        if page is not None:
            return page
        with self._listing_lock:
            page = self.cache.kept(key)
            if page is not None:
                return page
            real, _ = self._real(fs, base)
            total = 0

            def rows():
                nonlocal total
                for name, st in gfapi.listdir_stat(fs, real):
                    if name in HIDDEN_NAMES or (name.startswith(b".") and not self.dotfiles):
                        continue
                    total += 1
                    yield os.fsdecode(name), statmod.S_ISDIR(st.st_mode), st.st_size, st.st_mtime

            entries = http.select_listing(rows(), MAX_LISTING, *order)
            page = http.render_index(os.fsdecode(script_name + base), entries, omitted=total - len(entries),
                                     sort=order[0], descending=order[1])
            self.cache.keep(key, page, len(page))
            return page

    # -- background revalidation -------------------------------------------

    def start_refresher(self, log, hot_answers: bool = False) -> None:
        """Keep this worker's hot cache entries validated from a background
        thread (:mod:`.refresher`); call once per worker, after fork. With
        ``hot_answers`` (one worker of the instance), the instance's hot
        answers too."""

        def handle() -> int:
            """The volume's handle; ``OSError(ENOTCONN)`` while it is unavailable."""
            try:
                return self.volume.handle()
            except Unavailable:
                raise OSError(errno.ENOTCONN, "volume unavailable") from None

        def stat(path: bytes):
            fs = handle()
            return self._real(fs, path)[1]

        def refresh_kept(key) -> None:
            if not (isinstance(key, tuple) and key[0] == "dir"):
                return  # listings just expire
            try:
                self._resolve_dir(self.volume.handle(), key[1])
            except (OSError, Unavailable):
                self.cache.forget(key)

        def stat_dir(parent: bytes, names: List[bytes]) -> Dict[bytes, object]:
            """The stat of those of ``names`` that directory ``parent`` lists as
            non-symlinks (what :func:`stat` would return for them), from one
            listing read at most :data:`LISTING_PER_NAME` entries per name far."""
            fs = handle()
            real_parent = self._real_dir(fs, parent)[0]
            wanted, found = set(names), {}
            with contextlib.closing(gfapi.listdir_stat(fs, real_parent)) as entries:
                for count, (name, st) in enumerate(entries, 1):
                    if name in wanted and not statmod.S_ISLNK(st.st_mode):
                        found[name] = st
                    if len(found) == len(wanted) or count >= LISTING_PER_NAME * len(wanted):
                        break
            return found

        also = None
        answers = self.hot_answers
        if hot_answers and answers is not None:
            def also(pool) -> None:
                answers.refresh_once(stat, pool, stat_dir)

        refresher.start(self.volume.spec.mountpoint, self.cache, stat, refresh_kept, log, also)

    # -- WSGI ---------------------------------------------------------------

    def __call__(self, environ, start_response):
        hot = self.hot.answer(environ)
        if hot is not None:
            self.cache.hits += 1  # a ready answer is a cache hit too (metrics)
            entry, status, headers, body = hot
            if self.hot_answers is not None:
                self._publish(environ, entry, status, headers)
            if entry.local is None:
                start_response(status, list(headers))
                return body
            copy = self.local.open(entry.local, 0, entry.size) if self.local is not None else None
            if copy is not None:
                start_response(status, list(headers))
                return self._send_local(environ, copy)
            self.hot.forget(environ)  # evicted: the full path makes a new copy
        request = Request(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "").encode("latin-1"),
            script_name=environ.get("SCRIPT_NAME", "").encode("latin-1"),
            query=environ.get("QUERY_STRING", ""),
            headers=environ,
        )
        try:
            response = self.offload.run(self.respond, request)
        except OffloadTimeout as exc:
            self._log(f"worker {self._worker_id()}: {request.method} {environ.get('PATH_INFO', '')}: {exc}; "
                      f"answering 503")
            response = unavailable(1)
        start_response(response.status, list(response.headers))
        payload = response.body
        if response.entry is not None and self.hot_answers is not None:
            self._publish(environ, response.entry, response.status, response.headers)
        if type(payload) is LocalBody:
            if response.entry is not None:
                self.hot.remember(environ, response.entry, response.status, response.headers, None)
            return self._send_local(environ, payload)
        if isinstance(payload, FileBody):
            payload.abort = lambda exc: self._abort_transfer(start_response, exc)
        if response.entry is not None and isinstance(payload, tuple):
            self.hot.remember(environ, response.entry, response.status, response.headers, payload)
        return self.offload.wrap_body(payload, f"{request.method} {environ.get('PATH_INFO', '')}")

    def _publish(self, environ, entry: Entry, status: str, headers) -> None:
        """Offer this answer to the instance's hot answers (the C side sends it
        again while it is fresh; :meth:`.hotanswers.HotAnswers.publish` decides)."""
        assert self.hot_answers is not None

        def body() -> Optional[bytes]:
            if entry.local is None:
                return entry.content
            copy = self.local.open(entry.local, 0, entry.size) if self.local is not None else None
            if copy is None:
                return None
            try:
                return copy.read(entry.size)
            finally:
                copy.close()

        self.hot_answers.publish(environ, entry.path, entry, status, headers, body)

    @staticmethod
    def _send_local(environ, body: LocalBody):
        """A whole local copy goes to uWSGI's sendfile (``wsgi.file_wrapper``)."""
        if body.whole:
            wrapper = environ.get("wsgi.file_wrapper")
            if wrapper is not None:
                # headers and body leave in two writes: without TCP_NODELAY a small body
                # waits for the client's delayed ACK (40 ms) on a kept-alive connection
                no_delay()
                return wrapper(body)
        return body

    def _abort_transfer(self, start_response, exc: TransferAborted) -> None:
        """End a response whose body cannot be sent as promised, so that no
        client (nor uWSGI's cache) takes it for complete: one log line, then

        * headers not sent yet (uWSGI accepts a new ``start_response``): the
          answer becomes a ``503``, which ``cachestore`` does not keep; when
          nothing of uWSGI buffers responses that is all;
        * otherwise the connection is shut down now (``shutdown``, so the fd
          stays uWSGI's to close): the client sees the body end short of its
          ``Content-Length``, at once, even on a keep-alive connection;
        * outside uWSGI the exception goes to the server.
        """
        self._log(f"worker {self._worker_id()}: {exc}")
        try:
            start_response("503 Service Unavailable",
                           [("Content-Type", "text/plain"), ("Retry-After", "1"), ("Content-Length", "0")])
            replaced = True
        except Exception:  # noqa: BLE001 - uWSGI: IOError("headers already sent"); others: AssertionError
            replaced = False
        if replaced and not self.response_rewriter:
            return
        if self.connection_fd is not None:
            shutdown_connection(self.connection_fd())
            return
        if not replaced:
            raise exc


def shutdown_connection(fd: int) -> None:
    """Shut a connection down both ways without closing ``fd`` itself."""
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()


class NoMount:
    """The default app when no mount has mountpoint ``/``: native's 404."""

    def __call__(self, environ, start_response):
        start_response(NOT_FOUND.status, list(NOT_FOUND.headers))
        return NOT_FOUND.body
