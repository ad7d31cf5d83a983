"""The uWSGI side: loaded by uWSGI's Python plugin with ``module = uwsgi_gluster.plugin``.

On import it reads this instance's glusterfs settings (see :mod:`.config`),
builds one :class:`~.responder.MountApp` per ``glusterfs-mount``, each behind
an :class:`~.endpoints.Front` (our health and metrics paths, per-mount
metrics), and hands them to uWSGI as ``uwsgi.applications`` keyed by
mountpoint, which uWSGI matches against ``SCRIPT_NAME``/``UWSGI_APPID`` like
the native plugin's apps (the ``/`` mount is the default app). Each worker
connects its volumes right after fork (or at import under ``lazy-apps``),
never in the master.

uWSGI's Python loader names the first app of the dictionary after the
mountpoint it was loaded under (not after its key): the launcher loads this
module with ``mount = /=uwsgi_gluster.plugin:applications``, so the default
app shows as ``/`` in the stats server (with ``module =`` it shows as ``''``).

Where the settings come from: uWSGI's own resolved option list
(:mod:`.options`), whichever launcher runs it. They were already checked in
the master by :mod:`.check`; a ConfigError here (the module loaded without the
check) is still logged as one line and stops the process.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import uwsgi

from . import gfapi, hotanswers, localcache, malloc
from .aio import Direct, Offloaded, loop_from_options
from .cache import FileCache
from .config import ConfigError, Settings, settings_from_options
from .endpoints import Endpoints, Front
from .health import Health
from .log import STATS_SIGNAL, log, worker_id
from .metrics import GAUGE_SIGNAL, MountMetrics, Sink, mount_names, render_prometheus
from .mime import MimeTypes
from .options import resolved_options
from .responder import MountApp, NoMount
from .routing import response_rewriter
from .volume import Volume

#: what uWSGI's Python loader serves: {mountpoint: app}, set by :func:`load`
applications: dict = {}

#: Per-worker in-memory budget when the local cache holds the bigger files.
MEMORY_MAX_BYTES = 8 << 20

def build_apps(settings: Settings, sink: Optional[Sink] = None, rewriter: Optional[str] = None,
               local: Optional[localcache.LocalCache] = None, offload: Optional[Any] = None):
    """``({mountpoint_bytes: wsgi_app}, volumes, metrics)``: the apps for
    uwsgi.applications, each a :class:`Front`, and what each worker starts.

    The ``/`` mount (or :class:`NoMount`) comes first, always under ``/``:
    the Python plugin makes the first entry uWSGI's default app (the one for
    requests no mountpoint matches), which natively is the ``/`` mount
    wherever it is configured. ``sink`` receives the metrics. ``rewriter``:
    the option of the instance that may store or rewrite responses (no
    precompressed variants are served then, see :mod:`.routing`). ``local``:
    the instance's local content cache (:mod:`.localcache`), if any; each
    worker then keeps only small files in memory. ``offload``: where the
    mounts run libgfapi work (:mod:`.aio`; None: in the request's thread).
    """
    sink = sink or Sink()
    mime = MimeTypes.from_files(settings.mimefiles, log=log)
    if rewriter and any(spec.options.get("precompressed", True) for spec in settings.mounts):
        log(f"precompressed variants are not served: {rewriter} may store or rewrite responses "
            f"without their Content-Encoding")
    names = mount_names(settings)
    volumes = []
    metrics = []
    mounts = {}
    for index, (spec, name) in enumerate(zip(settings.mounts, names)):
        log(f"mounting {spec.mountpoint} ...")
        volume = Volume(spec, connect_timeout=settings.connect_timeout)
        volumes.append(volume)
        cache = None
        if local is not None:
            cache = FileCache(max_bytes=MEMORY_MAX_BYTES, max_file=localcache.DEFAULT_MEMORY_MAX_FILE)
        app = MountApp(volume, mime, cache=cache, local=local, response_rewriter=rewriter,
                       connection_fd=getattr(uwsgi, "connection_fd", None), offload=offload)
        counted = MountMetrics(name, app.cache, volume, sink, worker_id)
        metrics.append(counted)
        mounts[spec.mountpoint.encode()] = (app, counted)
        log(f"GlusterFS app/mountpoint {index} ({spec.mountpoint}) volume {spec.volume}, "
            f"servers {';'.join(map(str, spec.servers)) or '-'}")

    def render() -> Optional[bytes]:
        if names and not sink.has(names[0].counter("bytes_sent")):
            return None  # not declared (./uwsgi): no figures rather than zeros
        return render_prometheus(names, getattr(uwsgi, "numproc", 1), sink.get)

    endpoints = Endpoints(settings.health_path, Health(volumes), settings.metrics_path, render)
    if local is not None and hotanswers.eligible([spec.mountpoint for spec in settings.mounts], rewriter,
                                                 localcache.getenv):
        app = mounts[b"/"][0]
        try:
            # in memory (tmpfs) wherever the copies are: a hot answer's open, read
            # and revalidation are metadata work a disk file system journals
            parent = local.directory_in(hotanswers.BASE, fresh=worker_id() == 0)
            app.hot_answers = hotanswers.HotAnswers.create(parent, freshness=app.cache.freshness,
                                                           precompressed=app.precompressed)
        except OSError as exc:
            log(f"hot answers off: {exc}")
        else:
            os.environ[hotanswers.DIR_ENV] = app.hot_answers.directory
    root = mounts.pop(b"/", None)
    apps = {b"/": Front(root[0], endpoints, root[1]) if root else Front(NoMount(), endpoints)}
    apps.update((key, Front(app, endpoints, counted)) for key, (app, counted) in mounts.items())
    return apps, volumes, metrics


def start_worker(volumes, metrics=()) -> None:
    """In a new worker: connect the volumes, then zero its gauges."""
    for volume in volumes:
        volume.connect()
    for counted in metrics:
        counted.started()


def start_refreshers(apps) -> None:
    """One background revalidation thread per mount, in this worker; worker 1's
    also keeps the instance's hot answers validated."""
    for front in apps.values():
        app = getattr(front, "app", front)
        if isinstance(app, MountApp):
            app.start_refresher(log, hot_answers=worker_id() == 1)


def _install_post_fork(apps, volumes, metrics) -> None:
    previous = getattr(uwsgi, "post_fork_hook", None)

    def post_fork():
        if previous:
            previous()
        start_worker(volumes, metrics)
        start_refreshers(apps)

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


def _register_gauge_timer(metrics) -> None:
    """Every second, in every worker, set the metrics' gauges (master only)."""
    if not metrics or not uwsgi.masterpid() or getattr(uwsgi, "add_timer", None) is None:
        return

    def refresh(_signum: int = 0) -> None:
        for counted in metrics:
            counted.refresh()

    try:
        uwsgi.register_signal(GAUGE_SIGNAL, "workers", refresh)
        uwsgi.add_timer(GAUGE_SIGNAL, 1)
    except Exception as exc:  # noqa: BLE001 - a taken signal number must not stop serving
        log(f"uWSGI signal {GAUGE_SIGNAL} not registered for the metrics' gauges: {exc}")


def load() -> None:
    malloc.tune()  # inherited by the workers: before their threads exist
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
    local = None
    if settings.mounts:
        instance = (uwsgi.masterpid() if hasattr(uwsgi, "masterpid") else 0) or os.getpid()
        local = localcache.from_settings(settings.local_cache, instance, fresh=worker_id() == 0, log=log)
    apps, volumes, metrics = build_apps(settings, Sink(uwsgi), rewriter, local, offload)
    applications.update(apps)
    uwsgi.applications = applications
    _register_stats_signal()
    _register_gauge_timer(metrics)
    if worker_id() > 0:  # lazy-apps: we are already in the worker
        start_worker(volumes, metrics)
        start_refreshers(apps)
    else:
        _install_post_fork(apps, volumes, metrics)


load()
