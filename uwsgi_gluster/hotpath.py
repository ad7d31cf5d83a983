"""The shortest way through Python for the commonest request: a plain ``GET``
of a small file held in the worker's memory cache.

Contract:

* :meth:`HotResponses.remember` keeps, under the raw ``PATH_INFO``, a
  ``200`` answer the responder built from a cache :class:`~.cache.Entry`
  (its body, or None for an entry whose bytes are a local copy: the caller
  opens the copy again) for a request :func:`plain` accepts (``GET``, no
  ``Range``, no conditional header, and no ``Accept-Encoding`` when the mount
  serves precompressed variants): the answer depends on nothing else.
* :meth:`HotResponses.answer` gives that answer again only while its entry
  is still held by the cache and fresh (validated less than ``freshness``
  seconds ago, the cache's own rule); it marks the entry used (so the
  background refresher keeps it validated) and otherwise forgets it: the
  request then takes the full path, which revalidates.
* At most :data:`MAX_HOT` answers per mount per worker; when full, all are
  dropped (they come back on the next request for each).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

MAX_HOT = 2048
#: Request headers (environ keys) that make an answer depend on more than the path.
_CONDITIONAL = ("HTTP_RANGE", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_MATCH",
                "HTTP_IF_UNMODIFIED_SINCE", "HTTP_IF_RANGE")

Answer = Tuple[Any, str, Sequence[Tuple[str, str]], Optional[Tuple[bytes, ...]]]


def plain(environ: Mapping[str, Any], precompressed: bool) -> bool:
    """Is this a request whose answer depends on its path only?"""
    if environ.get("REQUEST_METHOD") != "GET":
        return False
    for key in _CONDITIONAL:
        if key in environ:
            return False
    return not (precompressed and "HTTP_ACCEPT_ENCODING" in environ)


class HotResponses:
    def __init__(self, freshness: float, precompressed: bool, clock: Callable[[], float] = time.monotonic):
        self.freshness = freshness
        self.precompressed = precompressed
        self._clock = clock
        self._answers: Dict[str, Answer] = {}

    def answer(self, environ: Mapping[str, Any]) -> Optional[Answer]:
        path = environ.get("PATH_INFO", "")
        found = self._answers.get(path)
        if found is None or not plain(environ, self.precompressed):
            return None
        entry = found[0]
        if entry.cached and self._clock() - entry.validated_at < self.freshness:
            entry.used = True
            return found
        self._answers.pop(path, None)
        return None

    def remember(self, environ: Mapping[str, Any], entry: Any, status: str, headers: Sequence[Tuple[str, str]],
                 body: Optional[Tuple[bytes, ...]]) -> None:
        if status != "200 OK" or not plain(environ, self.precompressed):
            return
        if len(self._answers) >= MAX_HOT:
            self._answers.clear()
        self._answers[environ.get("PATH_INFO", "")] = (entry, status, headers, body)

    def forget(self, environ: Mapping[str, Any]) -> None:
        self._answers.pop(environ.get("PATH_INFO", ""), None)

    def __len__(self) -> int:
        return len(self._answers)
