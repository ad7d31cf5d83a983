"""Run by the ``uwsgi-gluster`` launcher at uWSGI's ``asap`` hook: honour ``cap``,
declare the glusterfs metrics.

pyuwsgi has no ``--cap``; :mod:`.caps` does its work in this process. The
``asap`` hook runs right after uWSGI resolved its whole configuration and
before it binds sockets or switches user, which is exactly where ``cap`` must
act. The launcher installs it as
``--hook-asap "call:PyRun_SimpleString import uwsgi_gluster.asap"`` (uWSGI's
``call`` hook looks the C symbol up in the process; the GIL is held, since
pyuwsgi.run was called from Python).

The metrics (:mod:`.metrics`) must be registered before uWSGI allocates the
shared memory of its metrics, which it does after this hook.

Contract: importing it inside uWSGI either returns or logs one ``[glusterfs]``
line and exits with status 1. A bad glusterfs setting is left to :mod:`.check`
(no metrics are declared then).
"""

from __future__ import annotations

import sys


def main() -> None:
    """``cap``, then the metrics (the launcher's ``asap`` hook, under pyuwsgi)."""
    from .caps import CapError, apply_caps
    from .log import fatal
    from .options import resolved_options

    try:
        apply_caps(resolved_options())
    except CapError as exc:
        fatal(str(exc).replace("[glusterfs] ", "", 1))
    except Exception as exc:  # noqa: BLE001 - never a traceback at start-up
        fatal(f"cap: {type(exc).__name__}: {exc}")
    declare_metrics()


_declared = False


def declare_metrics(embedded: bool = False) -> None:
    """Declare the glusterfs metrics once per process. Also called, with
    ``embedded``, by the C plugin (profiles/plugins/glusterfs.c) after the
    Python plugin's init and before uWSGI sets up its metrics, in ./uwsgi and a
    distribution's uwsgi (where uWSGI's ``uwsgi`` module does not exist yet)."""
    global _declared
    if _declared:
        return
    _declared = True
    from .config import ConfigError, settings_from_options
    from .log import fatal
    from .metrics import declare, user_wants_uwsgi_metrics, worker_count
    from .options import mark_embedded, resolved_options

    if embedded:
        mark_embedded()

    options = resolved_options()
    try:
        settings = settings_from_options(options)
    except ConfigError:
        return  # uwsgi_gluster.check reports it and stops the instance
    try:
        declare(settings, worker_count(options), user_wants_uwsgi_metrics(options))
    except Exception as exc:  # noqa: BLE001 - never a traceback at start-up
        fatal(f"metrics: {type(exc).__name__}: {exc}")


if "pyuwsgi" in sys.modules:
    main()
