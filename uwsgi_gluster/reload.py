"""Graceful reloads that keep answering: SIGHUP reloads the workers one at a time.

Run in the master at uWSGI's ``master-start`` hook (the launcher and ./uwsgi's
embedded config add ``--hook-master-start`` lines that take the GIL, import this
module and give the GIL back; ``enable-threads`` makes the master hold no GIL
there, always).

Why: with ``lazy-apps``, uWSGI's SIGHUP sends every worker SIGHUP at once; each
stops accepting and finishes its requests (up to ``worker-reload-mercy``) before
it is respawned, so while slow downloads are in flight no worker accepts a new
connection, for up to the mercy (60 s by default). uWSGI's chain reload (the
master FIFO's ``c``, ``touch-chain-reload``) does the same one worker at a time,
going on to the next only once the respawned one accepts: the others keep
answering new connections meanwhile. With ``lazy-apps`` both load the same code
and config (the master is not re-executed in either), so the only difference is
who answers during the reload.

Contract: :func:`install` does nothing unless the master runs with ``lazy-apps``
(or ``lazy``) and at least 2 processes; then it points the master's SIGHUP
handler at uWSGI's own ``uwsgi_chain_reload`` (a C function that only sets the
chain flag; no Python runs in the signal handler) and logs one line. Without
``lazy-apps`` SIGHUP keeps its meaning (re-execute the whole instance, which
rereads the config files). ``touch-reload`` is uWSGI's own reload of every
worker at once (the master calls it directly); the C plugin (./uwsgi, and the
launcher when it loaded it) watches its files as ``touch-chain-reload`` files
under the same rule; elsewhere use
``touch-chain-reload``.
"""

from __future__ import annotations

import ctypes
import signal
import sys
from typing import Sequence, Tuple

TRUE = ("1", "true", "yes", "on", "y", "t", "")

def wanted(options: Sequence[Tuple[str, str]]) -> bool:
    """``lazy-apps`` (or ``lazy``) on, and 2 or more processes."""
    lazy = False
    processes = 1
    for key, value in options:
        if key in ("lazy-apps", "lazy"):
            lazy = value.strip().lower() in TRUE
        elif key in ("processes", "workers", "p"):
            try:
                processes = int(value)
            except ValueError:
                pass
    return lazy and processes >= 2


def install(options: Sequence[Tuple[str, str]]) -> bool:
    """Make SIGHUP a chain reload if :func:`wanted`; True if it did."""
    if not wanted(options):
        return False
    from .log import log
    from .options import _core_library

    chain = ctypes.cast(_core_library().uwsgi_chain_reload, ctypes.c_void_p).value
    libc = ctypes.CDLL(None, use_errno=True)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    if libc.signal(signal.SIGHUP, chain) == ctypes.c_void_p(-1).value:
        log(f"cannot make SIGHUP a chain reload (errno {ctypes.get_errno()}): it reloads every worker at once")
        return False
    log("SIGHUP reloads the workers one at a time (lazy-apps: chain reload); the others keep answering")
    return True


def main() -> None:
    from .options import resolved_options

    try:
        install(resolved_options())
    except Exception as exc:  # noqa: BLE001 - a reload nicety must never stop the master
        from .log import log

        log(f"SIGHUP keeps reloading every worker at once ({type(exc).__name__}: {exc})")


if "uwsgi" in sys.modules:
    main()
