"""The C plugin (profiles/plugins/glusterfs.c) built for pyuwsgi, loaded by the launcher.

Contract:

* :func:`plugin_path` is where ``scripts/uwsgi_build.py pyplugin`` (run by
  ``make pyplugin``, part of ``make``, ``make test`` and ``make run``) writes
  ``glusterfs_plugin.so``, compiled with pyuwsgi's own
  ``--cflags`` against the headers of the same uWSGI version: inside the
  environment, ``<sys.prefix>/lib/uwsgi-gluster/``, or the file named by the
  environment variable :data:`PATH_ENV`. Next to it, ``glusterfs_plugin.json``
  (:func:`stamp`) names the pyuwsgi file it was built for.
* :func:`load` makes it loadable by uWSGI inside pyuwsgi, or says why not:
  it checks the stamp against the pyuwsgi module imported now (same version,
  same file, same size and mtime: a reinstalled pyuwsgi needs a rebuild),
  promotes pyuwsgi's symbols (``uwsgi``, the response API ...) to the global
  scope, which Python's RTLD_LOCAL import of extensions keeps them out of, and
  dlopen()s the plugin once with every symbol resolved (RTLD_NOW), so a
  plugin that cannot load is found here, not by uWSGI. uWSGI's own dlopen()
  of the same path then returns the same, already loaded, library.
* When it is not loaded, the launcher keeps the reason in :data:`not_loaded`
  and :func:`report_not_loaded` logs it as one ``[glusterfs]`` line, called by
  the start-up check (:mod:`.check`) once it passed: a refused config still
  logs exactly one line, and uWSGI's client commands (``--stop PIDFILE`` ...)
  none.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

#: names another glusterfs_plugin.so to load (or a missing file, to serve from Python)
PATH_ENV = "UWSGI_GLUSTER_PYPLUGIN"
#: why the launcher runs without the C plugin (None: loaded, or not the launcher)
not_loaded: Optional[str] = None
STAMP_SUFFIX = ".json"


def plugin_path() -> Path:
    """Where the launcher looks for the plugin built for this environment's pyuwsgi."""
    named = os.environ.get(PATH_ENV)
    if named:
        return Path(named)
    return Path(sys.prefix) / "lib" / "uwsgi-gluster" / "glusterfs_plugin.so"


def stamp(pyuwsgi_file: str, version: str) -> Dict[str, Union[str, int]]:
    """What identifies the pyuwsgi a plugin was built for."""
    st = os.stat(pyuwsgi_file)
    return {"pyuwsgi_version": version, "pyuwsgi_file": os.path.realpath(pyuwsgi_file),
            "pyuwsgi_size": st.st_size, "pyuwsgi_mtime_ns": st.st_mtime_ns}


def stamp_path(plugin: Path) -> Path:
    return plugin.with_suffix(STAMP_SUFFIX)


@dataclass(frozen=True)
class Loaded:
    """The plugin is loaded: ``path`` is what uWSGI's ``--plugin`` gets."""
    path: str


@dataclass(frozen=True)
class NotLoaded:
    """Why not, for the launcher's one ``[glusterfs]`` log line."""
    reason: str


def load(pyuwsgi_file: str, version: str, plugin: Optional[Path] = None) -> Union[Loaded, NotLoaded]:
    """Load ``plugin`` (default :func:`plugin_path`) for the pyuwsgi at
    ``pyuwsgi_file``; never raises."""
    plugin = plugin or plugin_path()
    if not plugin.is_file():
        return NotLoaded(f"no C plugin at {plugin} (make pyplugin builds it)")
    try:
        with open(stamp_path(plugin)) as f:
            built_for = json.load(f)
    except (OSError, ValueError) as exc:
        return NotLoaded(f"{stamp_path(plugin)}: {exc}")
    try:
        now = stamp(pyuwsgi_file, version)
    except OSError as exc:
        return NotLoaded(f"pyuwsgi: {exc}")
    if built_for != now:
        return NotLoaded(f"{plugin} was built for another pyuwsgi (rebuild it: make pyplugin)")
    try:
        ctypes.CDLL(pyuwsgi_file, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
        ctypes.CDLL(str(plugin), mode=os.RTLD_GLOBAL)
    except OSError as exc:
        return NotLoaded(f"{plugin} does not load: {exc}")
    return Loaded(str(plugin.absolute()))


def report_not_loaded() -> None:
    """Log why the C plugin is not loaded, once, if the launcher said so."""
    global not_loaded
    if not_loaded is not None:
        from .log import log

        log(f"{not_loaded}: every request is answered in Python")
        not_loaded = None
