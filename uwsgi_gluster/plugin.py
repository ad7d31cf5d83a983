"""The uWSGI side: loaded by uWSGI's Python plugin with ``module = uwsgi_gluster.plugin``.

On import it reads this instance's glusterfs settings (see :mod:`.config`),
builds one :class:`~.responder.MountApp` per ``glusterfs-mount`` and hands
them to uWSGI as ``uwsgi.applications`` keyed by mountpoint, which uWSGI
matches against ``SCRIPT_NAME``/``UWSGI_APPID`` like the native plugin's apps
(the ``/`` mount is the default app). Each worker connects its volumes right
after fork (or at import under ``lazy-apps``), never in the master.

Where the settings come from: the JSON argv that :mod:`.launcher` leaves in
``UWSGI_GLUSTER_ARGV``, else this process's own command line
(``/proc/self/cmdline``), which is how a ``uwsgi`` binary built with our
profile runs it.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from typing import List, Optional

import uwsgi

from . import gfapi
from .config import ConfigError, Settings, iter_options, read_settings
from .log import STATS_SIGNAL, log, worker_id
from .mime import MimeTypes
from .responder import MountApp, NoMount
from .routing import command_line_options, response_rewriter
from .volume import Volume

ARGV_ENV = "UWSGI_GLUSTER_ARGV"


def instance_argv() -> List[str]:
    """uWSGI's argv (without the program name) this instance was started with."""
    if os.environ.get(ARGV_ENV):
        return json.loads(os.environ[ARGV_ENV])
    with open("/proc/self/cmdline", "rb") as handle:
        args = [os.fsdecode(a) for a in handle.read().split(b"\0") if a]
    return args[1:]


def find_response_rewriter(argv: List[str]) -> Optional[str]:
    """The first option of this instance that may store or rewrite responses."""
    return response_rewriter(itertools.chain(iter_options(argv), command_line_options(argv)))


def build_apps(settings: Settings, rewriter: Optional[str] = None):
    """``{mountpoint_bytes: wsgi_app}`` for uwsgi.applications, and the volumes."""
    mime = MimeTypes.from_files(settings.mimefiles, log=log)
    apps, volumes = {}, []
    if rewriter and any(spec.options.get("precompressed", True) for spec in settings.mounts):
        log(f"precompressed variants are not served: {rewriter} may store or rewrite responses "
            f"without their Content-Encoding")
    for index, spec in enumerate(settings.mounts):
        log(f"mounting {spec.mountpoint} ...")
        volume = Volume(spec, connect_timeout=settings.timeout)
        volumes.append(volume)
        apps[spec.mountpoint.encode()] = MountApp(volume, mime, response_rewriter=rewriter,
                                                  connection_fd=getattr(uwsgi, "connection_fd", None))
        log(f"GlusterFS app/mountpoint {index} ({spec.mountpoint}) volume {spec.volume}, "
            f"servers {';'.join(map(str, spec.servers)) or '-'}")
    if b"/" not in apps:
        apps[b""] = NoMount()
    return apps, volumes


def connect_all(volumes) -> None:
    for volume in volumes:
        volume.connect()


def _install_post_fork(volumes) -> None:
    previous = getattr(uwsgi, "post_fork_hook", None)

    def post_fork():
        if previous:
            previous()
        connect_all(volumes)

    uwsgi.post_fork_hook = post_fork


def log_open_files(_signum: int = 0) -> None:
    log(f"worker {worker_id()} open files: {gfapi.open_files()}")


def _register_stats_signal() -> None:
    register = getattr(uwsgi, "register_signal", None)
    if register is None or not uwsgi.masterpid():  # uWSGI signals need the master
        return
    try:
        register(STATS_SIGNAL, "workers", log_open_files)
    except Exception as exc:  # noqa: BLE001 - a taken signal number must not stop serving
        log(f"uWSGI signal {STATS_SIGNAL} not registered for open-file stats: {exc}")


def load() -> None:
    argv = instance_argv()
    try:
        settings = read_settings(argv)
        rewriter = find_response_rewriter(argv)
    except ConfigError as exc:
        log(str(exc).replace("[glusterfs] ", "", 1))
        sys.exit(1)
    if not settings.mounts:
        log("no glusterfs-mount configured: every request will get 404")
    apps, volumes = build_apps(settings, rewriter)
    uwsgi.applications = apps
    _register_stats_signal()
    if worker_id() > 0:  # lazy-apps: we are already in the worker
        connect_all(volumes)
    else:
        _install_post_fork(volumes)


load()
