"""Per-mount figures kept in uWSGI's own metrics subsystem.

Every figure is a uWSGI metric, so it lives in uWSGI's shared memory (one
value for all workers, aggregated in place), shows in the stats server's JSON
(``stats = ...``, ``"metrics"``), goes to every stats/metrics pusher and
``metrics-dir``, and can have uWSGI thresholds and alarms. :func:`render_prometheus`
writes the same values in the Prometheus text format for the
``glusterfs-metrics`` path.

Contract:

* :func:`declarations` (pure) names the metrics of an instance from its
  :class:`~.config.Settings` and its number of worker processes: per mount
  ``glusterfs.<key>.<figure>`` (``<key>`` from :func:`mount_key`), plus the
  instance-wide ``glusterfs.open_fds``. Counters are plain uWSGI counters that
  every worker increments; gauges hold a per-process value, so each has one
  child per worker (``<gauge>.worker.<N>``, set by that worker only, reset when
  it starts) and the gauge itself is their ``sum`` (uWSGI's collector, run by
  the master every second).
* :func:`declare` registers them in the running uWSGI before
  ``uwsgi_setup_metrics()`` (the ``uwsgi-gluster`` launcher's ``asap`` hook;
  ``./uwsgi`` has no point where Python runs that early, so it has no
  glusterfs metrics): it turns the
  metrics subsystem on (``enable-metrics``) and calls uWSGI's own
  ``uwsgi_register_keyval_metric`` with the same ``name=...,type=...`` text a
  ``metric = `` option takes. Ours come first in uWSGI's list, which keeps the
  by-name lookups of ``uwsgi.metric_inc`` short. When the metrics subsystem is
  on only because of us (:func:`user_wants_uwsgi_metrics` is false), uWSGI's
  seven per-core metrics are left out (``metrics-no-cores``): uWSGI makes them
  for every core of every worker in the master, about 30 KB a core that every
  worker inherits (``gevent = 1000`` x 4 processes: 120 MB of each worker's
  RSS, and 28,000 metrics the master collects every second).
* :class:`MountMetrics` counts one mount's requests in a worker; counters
  are written to uWSGI at once (no buffering: the stats server is exact as
  soon as a response has started), the worker's gauges at most every
  :data:`GAUGE_INTERVAL` s by requests and every second by a uWSGI timer
  (:data:`GAUGE_SIGNAL`, with a master). Without the metrics subsystem (another launcher,
  nothing declared) every call is a no-op.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from .config import Settings

PREFIX = "glusterfs"
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
#: per-mount counters: figure -> (Prometheus name, help)
COUNTERS = {
    **{f"requests_{c}": ("uwsgi_gluster_requests_total", f"responses with a {c} status") for c in STATUS_CLASSES},
    "bytes_sent": ("uwsgi_gluster_bytes_sent_total",
                   "body bytes of the responses started (Content-Length of GET answers)"),
    "cache_hits": ("uwsgi_gluster_cache_hits_total", "lookups answered by the worker cache without the volume"),
    "cache_misses": ("uwsgi_gluster_cache_misses_total", "lookups the worker cache did not hold"),
    "cache_revalidations": ("uwsgi_gluster_cache_revalidations_total",
                            "cached entries checked against the volume (one stat) after the freshness bound"),
    "volume_errors": ("uwsgi_gluster_volume_errors_total",
                      "requests answered 503 because the volume failed or was unreachable"),
    "reconnects": ("uwsgi_gluster_reconnects_total", "connections made again after a lost or failed one"),
}
#: per-mount gauges (sum over the workers): figure -> (Prometheus name, help)
GAUGES = {
    "cache_bytes": ("uwsgi_gluster_cache_bytes", "bytes held by the workers' caches (as charged to the budget)"),
    "connected_workers": ("uwsgi_gluster_connected_workers", "workers holding a connected handle of the volume"),
}
OPEN_FDS = f"{PREFIX}.open_fds"
#: seconds between two gauge updates made by requests
GAUGE_INTERVAL = 0.25
#: the uWSGI signal (a 1 s timer, raised in every worker) that refreshes the
#: workers' gauges between requests; needs the master
GAUGE_SIGNAL = 121
OPEN_FDS_HELP = ("uwsgi_gluster_open_fds", "glfds open in all workers (files being sent), all mounts together")

_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")


def mount_key(mountpoint: str) -> str:
    """The part of a metric name that stands for a mount: ``/`` -> ``root``,
    ``/a/b`` -> ``a_b``; characters uWSGI refuses in metric names become ``_``."""
    inner = mountpoint.strip("/")
    return _NAME_UNSAFE.sub("_", inner.replace("/", "_")) if inner else "root"


@dataclass(frozen=True)
class MountNames:
    """The uWSGI metric names of one mount."""

    mountpoint: str
    volume: str
    key: str

    def counter(self, figure: str) -> str:
        return f"{PREFIX}.{self.key}.{figure}"

    def gauge(self, figure: str) -> str:
        return f"{PREFIX}.{self.key}.{figure}"

    def worker_gauge(self, figure: str, worker: int) -> str:
        return f"{PREFIX}.{self.key}.{figure}.worker.{worker}"


def mount_names(settings: Settings) -> List[MountNames]:
    """One :class:`MountNames` per mount, keys made unique (``_2``, ``_3``...)."""
    names, used = [], set()
    for spec in settings.mounts:
        key = base = mount_key(spec.mountpoint)
        n = 1
        while key in used:
            n += 1
            key = f"{base}_{n}"
        used.add(key)
        names.append(MountNames(spec.mountpoint, spec.volume, key))
    return names


def declarations(settings: Settings, workers: int) -> List[str]:
    """The ``metric = `` texts (uWSGI keyval syntax) of this instance, children
    before the gauges that sum them."""
    workers = max(1, workers)
    out: List[str] = []

    def gauge(name: str) -> None:
        children = [f"{name}.worker.{w}" for w in range(1, workers + 1)]
        out.extend(f"name={child},type=gauge" for child in children)
        out.append(f"name={name},type=gauge,collector=sum,children={';'.join(children)}")

    for names in mount_names(settings):
        out.extend(f"name={names.counter(figure)},type=counter" for figure in COUNTERS)
        for figure in GAUGES:
            gauge(names.gauge(figure))
    if settings.mounts:
        gauge(OPEN_FDS)
    return out


def worker_count(options: Iterable[Tuple[str, str]]) -> int:
    """uWSGI's number of workers from the resolved options (``processes`` /
    ``workers``, last wins; 1 when absent or not a number)."""
    count = 1
    for key, value in options:
        if key in ("processes", "workers"):
            try:
                count = max(1, int(value))
            except ValueError:
                pass
    return count


def _uwsgi_library():
    import ctypes

    module = sys.modules.get("pyuwsgi")
    return ctypes.CDLL(module.__file__) if module is not None and getattr(module, "__file__", None) \
        else ctypes.CDLL(None)


#: options that turn uWSGI's metrics subsystem on (uWSGI 2.0's UWSGI_OPT_METRICS:
#: metric*, metrics-*, alarm-metric, stats-push, rrdtool, zabbix-template), by
#: name or prefix: a user who gives one wants uWSGI's metrics as uWSGI makes them
_UWSGI_METRICS_OPTIONS = ("enable-metrics", "metric", "alarm-metric", "stats-push", "rrdtool", "zabbix-template")


def user_wants_uwsgi_metrics(options: Iterable[Tuple[str, str]]) -> bool:
    """Did the configuration itself turn uWSGI's metrics subsystem on
    (``enable-metrics``, any ``metric*`` option, a stats pusher...)?"""
    return any(key.startswith(_UWSGI_METRICS_OPTIONS) and value.strip().lower() not in ("false", "0", "no", "off")
               for key, value in options)


def declare(settings: Settings, workers: int, user_metrics: bool = False) -> int:
    """Register this instance's metrics in the running uWSGI (before
    ``uwsgi_setup_metrics()``, i.e. at the ``asap`` hook); returns how many.
    ``user_metrics``: the configuration turned uWSGI's metrics on itself
    (:func:`user_wants_uwsgi_metrics`); else uWSGI's per-core metrics are left
    out (``metrics-no-cores``)."""
    import ctypes

    texts = declarations(settings, workers)
    if not texts:
        return 0
    lib = _uwsgi_library()
    lib.uwsgi_metric_find_by_name.argtypes = [ctypes.c_char_p]
    lib.uwsgi_metric_find_by_name.restype = ctypes.c_void_p
    if lib.uwsgi_metric_find_by_name(b"worker.0.requests"):
        # uwsgi_setup_metrics() already ran (it registers worker.N.*): a metric
        # registered now would have no shared memory behind it
        raise RuntimeError("too late: uWSGI has already set up its metrics")
    lib.uwsgi_manage_opt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.uwsgi_manage_opt.restype = ctypes.c_int
    lib.uwsgi_register_keyval_metric.argtypes = [ctypes.c_char_p]
    lib.uwsgi_register_keyval_metric.restype = ctypes.c_void_p
    if not lib.uwsgi_manage_opt(b"enable-metrics", b"true"):
        raise RuntimeError("uWSGI has no enable-metrics option")
    if not user_metrics and not lib.uwsgi_manage_opt(b"metrics-no-cores", b"true"):
        raise RuntimeError("uWSGI has no metrics-no-cores option")
    for text in texts:
        # uWSGI keeps the pointer to some of the parsed parts: keep the bytes alive
        _KEEP.append(ctypes.create_string_buffer(text.encode()))
        if not lib.uwsgi_register_keyval_metric(_KEEP[-1]):
            raise RuntimeError(f"uWSGI refused metric {text!r}")
    return len(texts)


_KEEP: List[object] = []


class Sink:
    """uWSGI's metric calls; ``uwsgi`` None (or without metrics) makes every call a no-op."""

    def __init__(self, module=None):
        self._inc: Optional[Callable] = getattr(module, "metric_inc", None)
        self._set: Optional[Callable] = getattr(module, "metric_set", None)
        self._get: Optional[Callable] = getattr(module, "metric_get", None)

    def inc(self, name: str, value: int) -> None:
        if self._inc is not None and value:
            self._inc(name, value)

    def set(self, name: str, value: int) -> None:
        if self._set is not None:
            self._set(name, value)

    def get(self, name: str) -> int:
        return self._get(name) if self._get is not None else 0

    def has(self, name: str) -> bool:
        """Is ``name`` a declared metric of this uWSGI (``metric_inc`` by 0 succeeds)?"""
        return self._inc is not None and bool(self._inc(name, 0))


class MountMetrics:
    """Counts one mount's requests in this worker into uWSGI's metrics.

    ``cache`` and ``volume`` are read after each request: their counters
    (``hits``, ``misses``, ``revalidations``; ``errors``, ``reconnects``) are
    pushed as deltas, their gauges (``size_bytes``; ``connected``) as this
    worker's child value.
    """

    #: the counters read from the cache and the volume after each request
    PUSHED = ("cache_hits", "cache_misses", "cache_revalidations", "volume_errors", "reconnects")

    def __init__(self, names: MountNames, cache, volume, sink: Sink, worker: Callable[[], int]):
        self.names = names
        self.cache = cache
        self.volume = volume
        self.sink = sink
        self._worker = worker
        self._class_names = {k: names.counter(f"requests_{k}xx") for k in range(2, 6)}
        self._bytes_name = names.counter("bytes_sent")
        self._pushed_names = tuple(names.counter(figure) for figure in self.PUSHED)
        self._pushed: Tuple[int, ...] = self._sources()
        self._gauge_names: Tuple[str, ...] = ()
        self._gauges: Optional[Tuple[int, ...]] = None
        self._next_gauges = 0.0

    def _sources(self) -> Tuple[int, ...]:
        cache, volume = self.cache, self.volume
        return (cache.hits, cache.misses, cache.revalidations, volume.errors, volume.reconnects)

    def started(self) -> None:
        """A worker starts: forget what a previous process pushed, zero its gauges."""
        self._pushed = self._sources()
        worker = self._worker()
        self._gauge_names = () if worker <= 0 else (
            self.names.worker_gauge("cache_bytes", worker), self.names.worker_gauge("connected_workers", worker),
            f"{OPEN_FDS}.worker.{worker}")
        self._gauges = None
        self._set_gauges()

    def record(self, status: int, body_bytes: int) -> None:
        """One response started: its status and the body bytes it announced.
        The gauges are refreshed too, at most every :data:`GAUGE_INTERVAL` s
        (and every second by :meth:`refresh`, from a uWSGI timer)."""
        name = self._class_names.get(status // 100)
        if name is not None:
            self.sink.inc(name, 1)
        if body_bytes:
            self.sink.inc(self._bytes_name, body_bytes)
        now = self._sources()
        if now != self._pushed:
            for counter, new, old in zip(self._pushed_names, now, self._pushed):
                if new != old:
                    self.sink.inc(counter, new - old)
            self._pushed = now
        clock = time.monotonic()
        if clock >= self._next_gauges:
            self._next_gauges = clock + GAUGE_INTERVAL
            self._set_gauges()

    def refresh(self) -> None:
        """Set this worker's gauges now (a file stream that ended, a cache
        entry that expired: nothing else would tell uWSGI between requests)."""
        self._set_gauges()

    def _set_gauges(self) -> None:
        if not self._gauge_names:
            return
        from .gfapi import open_files

        values = (self.cache.size_bytes, int(self.volume.connected), open_files())
        if values != self._gauges:
            for name, value, old in zip(self._gauge_names, values, self._gauges or (None,) * 3):
                if value != old:
                    self.sink.set(name, value)
            self._gauges = values


def _labels(**labels: str) -> str:
    def esc(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}"


def render_prometheus(mounts: Sequence[MountNames], workers: int, get: Callable[[str], int]) -> bytes:
    """The Prometheus text exposition (format 0.0.4) of the metrics of
    ``mounts``, read with ``get(uwsgi_name)``; gauges are summed from the
    workers' children (fresher than the master's once-a-second sum)."""
    lines: List[str] = []
    seen = set()

    def head(name: str, help_text: str, kind: str) -> None:
        if name not in seen:
            seen.add(name)
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")

    for figure, (name, help_text) in COUNTERS.items():
        kind_help = "responses by status class" if figure.startswith("requests_") else help_text
        head(name, kind_help, "counter")
        for m in mounts:
            labels = {"mount": m.mountpoint, "volume": m.volume}
            if figure.startswith("requests_"):
                labels["class"] = figure.split("_", 1)[1]
            lines.append(f"{name}{_labels(**labels)} {get(m.counter(figure))}")
    for figure, (name, help_text) in GAUGES.items():
        head(name, help_text, "gauge")
        for m in mounts:
            total = sum(get(m.worker_gauge(figure, w)) for w in range(1, max(1, workers) + 1))
            lines.append(f"{name}{_labels(mount=m.mountpoint, volume=m.volume)} {total}")
    if mounts:
        name, help_text = OPEN_FDS_HELP
        head(name, help_text, "gauge")
        lines.append(f"{name} {sum(get(f'{OPEN_FDS}.worker.{w}') for w in range(1, max(1, workers) + 1))}")
    return ("\n".join(lines) + "\n").encode()
