"""Log lines in uWSGI's style, through uWSGI's logger when running inside it."""

from __future__ import annotations

import sys

try:  # inside uWSGI (pyuwsgi or an embedded Python plugin)
    import uwsgi as _uwsgi
except ImportError:  # plain Python: tests, tools
    _uwsgi = None

#: The uWSGI signal on which every worker logs ``[glusterfs] worker N open files: K``
#: (glfds opened and not yet closed; see ``gfapi.open_files``). Raise it with e.g.
#: ``touch-signal = /run/uwsgi-gluster.stats 120`` or ``signal-timer = 120 60``.
STATS_SIGNAL = 120


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
