"""Is every mount's volume usable from this worker? The ``glusterfs-health`` answer.

Contract:

* :meth:`Health.failing` asks each mount's :class:`~.volume.Volume` now, never
  from memory: a volume without a connected handle in this process is failing
  (asking starts a reconnect, as a request would); a connected one must answer
  a lookup of :data:`PROBE_PATH` within :data:`PROBE_TIMEOUT` seconds ("no
  such file" is the healthy answer; md-cache is off, so it reaches a brick).
  A connection error is reported to the volume like any request's, so a
  handle that keeps failing is replaced. At most one
  probe per volume runs at a time: while one is still waiting, the volume
  counts as failing and no other thread is started.
* :meth:`Health.response` is ``200`` with one ``ok`` line per mount when none
  fails, else ``503`` with ``Retry-After: 1`` and one line per failing mount
  (``mountpoint volume: reason``), ``text/plain``, never cached. It is
  answered by whichever worker gets the request, from that worker's own
  connections.
"""

from __future__ import annotations

import errno
import threading
from typing import List, Optional, Sequence, Tuple

from . import gfapi, http
from .volume import Unavailable, Volume

#: seconds a connected volume has to answer the probe
PROBE_TIMEOUT = 1.0
#: looked up by the probe: a name no volume has, so the lookup must reach a
#: brick (libgfapi answers a stat of ``/`` from its root inode without asking)
PROBE_PATH = b"/.uwsgi-gluster-health-probe"

Headers = Tuple[Tuple[str, str], ...]


class _Probe:
    """One volume's probe thread and its outcome."""

    def __init__(self) -> None:
        self.thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None


class Health:
    def __init__(self, volumes: Sequence[Volume], probe_timeout: float = PROBE_TIMEOUT):
        self.volumes = tuple(volumes)
        self.probe_timeout = probe_timeout
        self._probes = {id(volume): _Probe() for volume in self.volumes}
        self._lock = threading.Lock()

    def _check(self, volume: Volume) -> Optional[str]:
        """None if ``volume`` is usable now, else why not."""
        try:
            fs = volume.handle()
        except Unavailable:
            return "not connected"
        probe = self._probes[id(volume)]
        with self._lock:
            if probe.thread is not None and probe.thread.is_alive():
                return "no answer yet to the previous probe"
            probe.error = None

            def run() -> None:
                try:
                    gfapi.lstat(fs, PROBE_PATH)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:  # ENOENT: a brick answered, the volume works
                        probe.error = exc
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                    probe.error = exc

            probe.thread = threading.Thread(target=run, name="glusterfs-health", daemon=True)
            probe.thread.start()
        probe.thread.join(self.probe_timeout)
        if probe.thread.is_alive():
            return f"no answer within {self.probe_timeout:g} s"
        if probe.error is not None:
            if isinstance(probe.error, OSError):
                volume.report(False)
                return f"error: {probe.error.strerror or probe.error}"
            return f"error: {probe.error}"
        volume.report(True)
        return None

    def failing(self) -> List[Tuple[Volume, str]]:
        """``[(volume, reason)]`` of the mounts not usable now, in mount order."""
        out = []
        for volume in self.volumes:
            reason = self._check(volume)
            if reason is not None:
                out.append((volume, reason))
        return out

    def response(self, method: str) -> Tuple[str, Headers, bytes]:
        """``(status, headers, body)``; ``method`` HEAD gives no body."""
        failing = self.failing()
        if failing:
            status = "503 Service Unavailable"
            lines = [f"{v.spec.mountpoint} {v.spec.volume}: {reason}" for v, reason in failing]
            extra: Headers = (http.header("Retry-After", "1"),)
        else:
            status = "200 OK"
            lines = [f"{v.spec.mountpoint} {v.spec.volume}: ok" for v in self.volumes]
            extra = ()
        body = ("\n".join(lines) + "\n").encode("utf-8", "replace")
        headers = (http.header("Content-Type", "text/plain; charset=utf-8"),
                   http.header("Content-Length", "%d" % len(body)),
                   http.header("Cache-Control", "no-store")) + extra
        return status, headers, b"" if method == "HEAD" else body
