"""Log lines in uWSGI's style, through uWSGI's logger when running inside it.

The ``uwsgi`` module is looked up at each call, not at import: the launcher
imports this module before pyuwsgi has created ``uwsgi``.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Optional


def _uwsgi() -> Optional[ModuleType]:
    module = sys.modules.get("uwsgi")
    if module is not None:
        return module
    try:
        import uwsgi  # present only inside uWSGI
    except ImportError:
        return None
    return uwsgi

#: The uWSGI signal on which every worker logs ``[glusterfs] worker N open files: K``
#: (glfds opened and not yet closed; see ``gfapi.open_files``). Raise it with e.g.
#: ``touch-signal = /run/uwsgi-gluster.stats 120`` or ``signal-timer = 120 60``.
STATS_SIGNAL = 120


def log(message: str) -> None:
    """Write one ``[glusterfs] ...`` line to uWSGI's log (stderr outside uWSGI)."""
    line = f"[glusterfs] {message}"
    module = _uwsgi()
    if module is not None and hasattr(module, "log"):
        module.log(line)
    else:
        print(line, file=sys.stderr, flush=True)


def worker_id() -> int:
    """uWSGI's id of this worker (0 in the master or outside uWSGI)."""
    module = _uwsgi()
    if module is not None and hasattr(module, "worker_id"):
        return module.worker_id()
    return 0


def fatal(message: str) -> None:
    """Log one ``[glusterfs] ...`` line and end the process with exit status 1
    (``os._exit`` after flushing: no traceback, no atexit, no cleanup that
    could log more)."""
    log(message)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(1)
