"""The start-up check: every glusterfs setting, in the master, before any worker exists.

Imported by uWSGI's Python plugin as a ``shared-import`` (the launcher passes
``--shared-import uwsgi_gluster.check``; ./uwsgi's embedded config has the same
line). Shared imports run in the master before workers are forked, also under
``lazy-apps``, so a bad value stops the instance instead of making workers
that answer 503 for ever.

Contract: importing this module inside uWSGI either returns (the settings are
usable; an unreachable server is an outage, not a config error: the workers
start, answer 503 and reconnect) or logs exactly one line ``[glusterfs] ...``
and ends the process with exit status 1 (``os._exit`` after flushing: no
traceback, no worker). It checks:

* every ``glusterfs-*`` value (:func:`.config.settings_from_options`): mount
  syntax, volume names libgfapi refuses, numbers out of range;
* ``gevent = N`` when the gevent module cannot be imported;
* ``gevent = N`` together with an ``http11-socket`` (or ``protocol = http11``):
  uWSGI 2.0's gevent loop and its HTTP/1.1 keep-alive sockets do not work
  together (a few requests a second, then libev's ``epoll_modify: I/O watcher
  with invalid fd`` assertion kills the worker);
* a volfile that cannot be read;
* each mounted volume on its servers, in forked children that connect and
  ``_exit`` without ``glfs_fini``, all within one deadline: a server that
  answers "no such volume" is an error naming the volume and the server.

Once it passed, it logs the launcher's one line saying why the C plugin is not
loaded, if it is not (:func:`.cplugin.report_not_loaded`).
"""

from __future__ import annotations

import errno
import importlib.util
import os
import signal
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from .config import ConfigError, MountSpec, Server, Settings, settings_from_options
from .log import fatal, log

#: seconds the volume probe waits at most for all servers together
PROBE_DEADLINE = 5.0
_UNKNOWN = 255  # child exit code: the probe failed in some other way


class StartupError(Exception):
    """A setting that stops start-up; ``str()`` is the line to log (without ``[glusterfs]``)."""


def check_gevent(options: Sequence[Tuple[str, str]]) -> None:
    """``gevent = N`` needs the gevent module in this interpreter."""
    for key, value in options:
        if key == "gevent" and importlib.util.find_spec("gevent") is None:
            raise StartupError(f"gevent = {value!r}: the gevent module cannot be imported in the Python "
                               f"at {sys.prefix} (pip install gevent there, or remove the gevent option)")


#: options that make uWSGI speak HTTP/1.1 with keep-alive on a socket
_HTTP11_KEYS = ("http11-socket",)
_PROTOCOL_KEYS = ("protocol", "socket-protocol")


def check_gevent_sockets(options: Sequence[Tuple[str, str]]) -> None:
    """``gevent = N`` (N > 0) cannot serve an ``http11-socket``: uWSGI 2.0's
    gevent loop drops to a few requests a second on it and a worker dies on
    libev's ``epoll_modify`` assertion. ``http-socket`` (or uWSGI's ``http``
    router in front, which keeps the clients' connections alive) works."""
    gevent = next((value for key, value in reversed(options) if key == "gevent"), None)
    try:
        if gevent is None or int(gevent.strip()) <= 0:
            return
    except ValueError:
        return
    for key, value in options:
        if key in _HTTP11_KEYS or (key in _PROTOCOL_KEYS and value.strip() == "http11"):
            raise StartupError(f"gevent = {gevent!r} with {key} = {value!r}: uWSGI's gevent loop cannot serve "
                               f"HTTP/1.1 keep-alive sockets (its workers stall and die on a libev assertion); "
                               f"use http-socket, or uWSGI's http router in front (http = ..., see README "
                               f"\"Many clients\")")


def check_volfiles(settings: Settings) -> None:
    for mount in settings.mounts:
        if mount.volfile and not os.access(mount.volfile, os.R_OK):
            raise StartupError(f"{mount.where}: volfile {mount.volfile!r} of mountpoint {mount.mountpoint} "
                               f"cannot be read")


def _probe_child(volume: str, server: Server) -> None:
    """In a forked child: connect to ``volume`` on ``server``; exit 0 or the errno."""
    code = _UNKNOWN
    try:
        from . import gfapi

        fs = gfapi.new(volume)
        gfapi.set_volfile_server(fs, server.transport, server.host, server.port)
        gfapi.init(fs)
        code = 0
    except OSError as exc:
        code = exc.errno if exc.errno and 0 < exc.errno < _UNKNOWN else _UNKNOWN
    except BaseException:  # noqa: BLE001 - the child must end here whatever happens
        code = _UNKNOWN
    os._exit(code)  # no glfs_fini: it takes seconds and the process ends anyway


def probe_volumes(mounts: Sequence[MountSpec],
                  deadline: float = PROBE_DEADLINE) -> Dict[Tuple[int, int], Optional[int]]:
    """Connect to every (mount, server) pair at once, each in a forked child.

    Returns ``{(mount index, server index): errno}``: 0 connected, an errno
    when ``glfs_init`` failed, None when no answer came within ``deadline``.
    """
    children: Dict[int, Tuple[int, int]] = {}
    results: Dict[Tuple[int, int], Optional[int]] = {}
    for m, mount in enumerate(mounts):
        for s, server in enumerate(mount.servers):
            pid = os.fork()
            if pid == 0:
                _probe_child(mount.volume, server)
            children[pid] = (m, s)
            results[(m, s)] = None
    end = time.monotonic() + deadline
    while children and time.monotonic() < end:
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                results[children.pop(pid)] = os.waitstatus_to_exitcode(status)
        if children:
            time.sleep(0.02)
    for pid in children:  # no answer in time: an outage, not a config error
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    return results


def check_volumes(settings: Settings, deadline: float = PROBE_DEADLINE) -> List[str]:
    """Raise :class:`StartupError` for a volume a server says does not exist.

    Returns log lines for mounts no server answered for (start-up goes on).
    """
    mounts = [m for m in settings.mounts if m.servers]
    results = probe_volumes(mounts, min(deadline, settings.connect_timeout))
    notes = []
    for m, mount in enumerate(mounts):
        codes = [results[(m, s)] for s in range(len(mount.servers))]
        if 0 in codes:
            continue
        for s, code in enumerate(codes):
            if code == errno.ENOENT:
                raise StartupError(f"{mount.where}: volume {mount.volume!r} does not exist on "
                                   f"{mount.servers[s]} (mountpoint {mount.mountpoint})")
        notes.append(f"no server answered for volume {mount.volume} (mountpoint {mount.mountpoint}) at "
                     f"start-up; its workers answer 503 and keep reconnecting")
    return notes


def run(options: Sequence[Tuple[str, str]], probe: bool = True) -> Settings:
    """Every check above; raises :class:`ConfigError` or :class:`StartupError`."""
    settings = settings_from_options(options)
    check_gevent(options)
    check_gevent_sockets(options)
    check_volfiles(settings)
    if probe:
        for note in check_volumes(settings):
            log(note)
    return settings


def main() -> None:
    from .options import resolved_options

    try:
        run(resolved_options())
    except ConfigError as exc:
        fatal(str(exc).replace("[glusterfs] ", "", 1))
    except StartupError as exc:
        fatal(str(exc))
    except Exception as exc:  # noqa: BLE001 - never a traceback at start-up
        fatal(f"start-up check failed: {type(exc).__name__}: {exc}")
    # the config is good: now the launcher's note that it runs without its C plugin
    from .cplugin import report_not_loaded

    report_not_loaded()


if "uwsgi" in sys.modules:
    main()
