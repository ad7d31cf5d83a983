"""Log lines in uWSGI's style, through uWSGI's logger when running inside it."""

from __future__ import annotations

import sys

try:  # inside uWSGI (pyuwsgi or an embedded Python plugin)
    import uwsgi as _uwsgi
except ImportError:  # plain Python: tests, tools
    _uwsgi = None


def log(message: str) -> None:
    """Write one ``[glusterfs] ...`` line to uWSGI's log (stderr outside uWSGI)."""
    line = f"[glusterfs] {message}"
    if _uwsgi is not None and hasattr(_uwsgi, "log"):
        _uwsgi.log(line)
    else:
        print(line, file=sys.stderr, flush=True)


def worker_id() -> int:
    """uWSGI's id of this worker (0 in the master or outside uWSGI)."""
    if _uwsgi is not None and hasattr(_uwsgi, "worker_id"):
        return _uwsgi.worker_id()
    return 0
