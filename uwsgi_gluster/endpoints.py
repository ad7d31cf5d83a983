"""What uWSGI calls for every mountpoint: our own paths first, then the mount, counted.

Contract:

* :class:`Front` wraps one mount's WSGI app (or the 404 app when no mount is
  at ``/``). A request whose full path (``SCRIPT_NAME`` + ``PATH_INFO``) is
  the ``glusterfs-health`` path is answered by :class:`~.health.Health`, the
  ``glusterfs-metrics`` path by the Prometheus text of :mod:`.metrics` (``503``
  when this uWSGI has no glusterfs metrics; ``GET`` and ``HEAD`` only, else
  ``405``), whichever app uWSGI picked: these paths
  never reach a volume and hide a file of that name.
* Every other request goes to the wrapped app unchanged; when it has started
  its response, the status and the body bytes it announced
  (``Content-Length``; 0 for ``HEAD`` and bodiless statuses) are counted in
  the mount's :class:`~.metrics.MountMetrics`. The body iterable is returned
  as it is (uWSGI's file wrapper and offloading keep working).
"""

from __future__ import annotations

from typing import Callable, Optional

from . import http
from .health import Health

Render = Callable[[], Optional[bytes]]


class Endpoints:
    """The instance's own paths: ``health_path`` -> :class:`Health`, ``metrics_path`` -> ``render()``."""

    def __init__(self, health_path: Optional[str], health: Health,
                 metrics_path: Optional[str], render: Render):
        self.health_path = health_path
        self.health = health
        self.metrics_path = metrics_path
        self.render = render

    def answer(self, path: str, method: str):
        """``(status, headers, body)`` for one of our paths, or None."""
        if path != self.health_path and path != self.metrics_path:
            return None
        if method not in ("GET", "HEAD"):
            return ("405 Method Not Allowed", (http.header("Allow", "GET, HEAD"),
                                               http.header("Content-Type", "text/plain"),
                                               http.header("Content-Length", "18")), b"Method Not Allowed")
        if path == self.health_path:
            return self.health.response(method)
        body = self.render()
        if body is None:
            text = b"the glusterfs metrics are not declared in this uWSGI (run it with uwsgi-gluster)\n"
            return ("503 Service Unavailable", (http.header("Content-Type", "text/plain"),
                                                http.header("Content-Length", "%d" % len(text))),
                    b"" if method == "HEAD" else text)
        headers = (http.header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                   http.header("Content-Length", "%d" % len(body)), http.header("Cache-Control", "no-store"))
        return "200 OK", headers, b"" if method == "HEAD" else body


class Front:
    def __init__(self, app, endpoints: Optional[Endpoints], metrics=None):
        self.app = app
        self.endpoints = endpoints
        self.metrics = metrics

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        if self.endpoints is not None:
            answer = self.endpoints.answer(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), method)
            if answer is not None:
                status, headers, body = answer
                start_response(status, list(headers))
                return [body] if body else []
        if self.metrics is None:
            return self.app(environ, start_response)
        metrics = self.metrics

        def counting_start_response(status, headers, exc_info=None):
            code = int(status[:3]) if status[:3].isdigit() else 0
            length = 0
            if method != "HEAD" and code not in (204, 304):
                for name, value in headers:
                    if name.lower() == "content-length":
                        length = int(value) if value.isdigit() else 0
                        break
            metrics.record(code, length)
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        return self.app(environ, counting_start_response)
