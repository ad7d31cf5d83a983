"""The uWSGI side: loaded by uWSGI's Python plugin with ``module = uwsgi_gluster.plugin``.

On import it reads this instance's glusterfs settings (see :mod:`.config`),
builds one :class:`~.responder.MountApp` per ``glusterfs-mount`` and hands
them to uWSGI as ``uwsgi.applications`` keyed by mountpoint, which uWSGI
matches against ``SCRIPT_NAME``/``UWSGI_APPID`` like the native plugin's apps
(the ``/`` mount is the default app). Each worker connects its volumes right
after fork (or at import under ``lazy-apps``), never in the master.

Where the settings come from: uWSGI's own resolved option list
(:mod:`.options`), whichever launcher runs it. They were already checked in
the master by :mod:`.check`; a ConfigError here (the module loaded without the
check) is still logged as one line and stops the process.
"""

from __future__ import annotations

import os
from typing import Optional

import uwsgi

from . import gfapi
from .aio import Direct, Offloaded, loop_from_options
from .config import ConfigError, Settings, settings_from_options
from .log import STATS_SIGNAL, log, worker_id
from .mime import MimeTypes
from .options import resolved_options
from .responder import MountApp, NoMount
from .routing import response_rewriter
from .volume import Volume


def build_apps(settings: Settings, rewriter: Optional[str] = None, offload=None):
    """``{mountpoint_bytes: wsgi_app}`` for uwsgi.applications, and the volumes.

    The ``/`` mount (or :class:`NoMount`) comes first: the Python plugin makes
    the first entry uWSGI's default app (the one for requests no mountpoint
    matches), which natively is the ``/`` mount wherever it is configured.
    """
    mime = MimeTypes.from_files(settings.mimefiles, log=log)
    apps, volumes = {}, []
    if rewriter and any(spec.options.get("precompressed", True) for spec in settings.mounts):
        log(f"precompressed variants are not served: {rewriter} may store or rewrite responses "
            f"without their Content-Encoding")
    for index, spec in enumerate(settings.mounts):
        log(f"mounting {spec.mountpoint} ...")
        volume = Volume(spec, connect_timeout=settings.connect_timeout)
        volumes.append(volume)
        apps[spec.mountpoint.encode()] = MountApp(volume, mime, response_rewriter=rewriter,
                                                  connection_fd=getattr(uwsgi, "connection_fd", None),
                                                  offload=offload)
        log(f"GlusterFS app/mountpoint {index} ({spec.mountpoint}) volume {spec.volume}, "
            f"servers {';'.join(map(str, spec.servers)) or '-'}")
    default = apps.pop(b"/", None) or NoMount()
    return {b"/" if isinstance(default, MountApp) else b"": default, **apps}, volumes


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
    try:
        options = resolved_options()
        settings = settings_from_options(options)
        rewriter = response_rewriter(options)
    except ConfigError as exc:
        log(str(exc).replace("[glusterfs] ", "", 1))
        os._exit(1)
    if not settings.mounts:
        log("no glusterfs-mount configured: every request will get 404")
    gevent_mode, timeout = loop_from_options(options)
    offload: Offloaded | Direct = Direct()
    if gevent_mode:
        offload = pooled = Offloaded(timeout)
        log(f"gevent mode: libgfapi calls run on {pooled.size} threads per worker, each wait bounded "
            f"to {timeout} s")
    apps, volumes = build_apps(settings, rewriter, offload)
    uwsgi.applications = apps
    _register_stats_signal()
    if worker_id() > 0:  # lazy-apps: we are already in the worker
        connect_all(volumes)
    else:
        _install_post_fork(volumes)


load()
