"""The ``uwsgi-gluster`` console script (also installed as ``uwsgi``): uWSGI run by pyuwsgi.

Contract: ``uwsgi-gluster ARGS`` behaves like ``uwsgi ARGS`` with the native
glusterfs plugin loaded. It reads no config file itself: uWSGI resolves the
configuration, and the plugin reads what uWSGI resolved (:mod:`.options`).
The launcher only

* rewrites the options pyuwsgi does not know (``--glusterfs-*``, ``--cap``)
  in place into uWSGI's ``--set key=value``, so their order relative to
  ``--ini`` and other sources is kept;
* loads the C plugin built for pyuwsgi (:mod:`.cplugin`, ``--plugin``
  first of all arguments, so a user's ``plugins = glusterfs`` finds the name
  taken and never loads a distribution's native ``glusterfs_plugin.so``): its
  request hook gets modifier1 27, answers fresh hot answers in C and hands
  every other request to the Python plugin, as in ``./uwsgi``. When it is
  missing or does not load, one ``[glusterfs]`` line says why (after the
  start-up check passed) and modifier1 27
  is remapped to the Python plugin (``remap-modifier`` + ``route-run =
  setmodifier1:0``): every request is answered in Python;
* adds what loads the Python side: ``--mount /=uwsgi_gluster.plugin:applications``,
  ``--shared-import uwsgi_gluster.check`` (the master-side start-up check), the ``asap`` hook that honours ``cap``
  (:mod:`.asap`), the ``master-start`` hook of :mod:`.reload` (with
  ``enable-threads``), and ``--binary-path`` pointing at this script, so emperor
  vassals and reloads run through it too;
* answers ``--help`` (our options, then uWSGI's, under our program name) and
  ``--version`` (ours and uWSGI's) itself;
* lets SIGINT end the process until uWSGI installs its own handlers (uWSGI's
  parser can loop for ever on a self-referential placeholder, in C code that
  never returns to Python's deferred signal handling).

uWSGI's client commands (``--connect-and-read``, ``--reload PIDFILE``,
``--stop PIDFILE`` ...) act immediately while uWSGI reads its command line,
so they pass through untouched. An argv :func:`uwsgi_argv` made (a reload
re-executing this script) keeps its user part and gets the plugin arguments
of the C plugin found now.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from typing import List, Optional, Sequence

from . import __version__
from .config import OPTIONS
from .hotanswers import ACTIVE_ENV as HOT_ACTIVE_ENV

#: options pyuwsgi does not know, handed to uWSGI as ``--set key=value``
SET_OPTIONS = (*OPTIONS, "cap")
ASAP_HOOK = "call:PyRun_SimpleString import uwsgi_gluster.asap"
# `mount = /=module:applications` rather than `module =`: uWSGI's Python loader
# names the first app after the mountpoint it was loaded under, so the default
# app shows as `/` in the stats server instead of `''` (see uwsgi_gluster.plugin)
# MASTER_START_ARGS: uwsgi_gluster.reload makes SIGHUP a chain reload under
# lazy-apps (new connections answered while workers drain); enable-threads makes
# the master give up the GIL before master-start, so the hook's Ensure/Release
# pair is always right (and Python threads, e.g. the volume's reconnect thread,
# run between requests in every mode)
# (not imported here: importing uwsgi_gluster.reload inside uWSGI is what runs it)
RELOAD_HOOKS = ("call:PyGILState_Ensure", "call:PyRun_SimpleString import uwsgi_gluster.reload",
                "callint:PyGILState_Release 1")
MASTER_START_ARGS = ["--enable-threads", *(arg for hook in RELOAD_HOOKS for arg in ("--hook-master-start", hook))]
#: after the user's arguments; with the C plugin, the same without remap-modifier
PLUGIN_ARGS = ["--remap-modifier", "0:27", "--shared-import", "uwsgi_gluster.check",
               "--mount", "/=uwsgi_gluster.plugin:applications", *MASTER_START_ARGS]
C_PLUGIN_ARGS = PLUGIN_ARGS[2:]
# ROUTE_ARGS: remap-modifier hands modifier1 27 requests to the Python plugin's
# request handler, but uWSGI still looks up exception hooks by the request's
# modifier1, and 27 has none: a Python exception would be neither logged nor
# cleared, and the response's close() would then run with it still pending
# (every C call in it failing with SystemError: glfs_close skipped, a lock left
# taken). Setting modifier1 back to 0 as the first route fixes both; a client
# that goes away is logged by uWSGI's core, so no Python exception is made for it.
# PROTOCOL_ROUTE: uWSGI writes the request's protocol token, as sent, at the head
# of the status line; a request line like "GET / x\nSet-Cookie:a=1 HTTP/1.1"
# would make it start the response with a header of the client's choosing
# (behind a bare LF). A request whose SERVER_PROTOCOL is not HTTP/N[.N] (or
# absent: uWSGI then writes HTTP/1.0) is closed without an answer (`break:`
# writes nothing; any answer would echo the token again). HTTP/1.1 jumps past
# that rule after a plain comparison: uWSGI compiles a regexp condition's
# pattern on every request.
PROTOCOL_ROUTE = ["--route-if", "equal:${SERVER_PROTOCOL};HTTP/1.1 goto:glusterfs-protocol-ok",
                  "--route-if-not", r"regexp:${SERVER_PROTOCOL};^(HTTP/[0-9](\.[0-9])?)?$ break:",
                  "--route-label", "glusterfs-protocol-ok"]
ROUTE_ARGS = ["--route-run", "setmodifier1:0", *PROTOCOL_ROUTE, "--disable-write-exception"]
# With the C plugin its request hook sets modifier1 0 itself (profiles/plugins/glusterfs.c)
C_ROUTE_ARGS = ROUTE_ARGS[2:]


def script_path() -> str:
    """The ``uwsgi-gluster`` executable uWSGI must exec for vassals and reloads."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) in ("uwsgi-gluster", "uwsgi") and os.access(argv0, os.X_OK):
        return os.path.abspath(argv0)
    bindir = os.path.dirname(sys.executable)
    return shutil.which("uwsgi-gluster", path=bindir) or shutil.which("uwsgi-gluster") or "uwsgi-gluster"


#: the plugin's modules, imported before uWSGI runs (and before a ``cap`` user switch)
PRELOADED = ("aio", "cache", "caps", "config", "endpoints", "gfapi", "health", "http", "log", "metrics", "mime",
             "options", "responder", "volume")


def default_args(c_plugin: Optional[str] = None) -> List[str]:
    """Placed before the user's arguments, so any value the user gives wins.

    ``c_plugin``: the path of the loaded C plugin (:mod:`.cplugin`), or None
    to answer modifier1 27 in Python. A 64 KiB request buffer lets over-long
    paths reach the plugin and get a 4xx instead of uWSGI's 4 KiB buffer
    dropping the connection.
    """
    plugin = ["--plugin", c_plugin] if c_plugin else []
    return [*plugin, "--binary-path", script_path(), "--hook-asap", ASAP_HOOK, "--buffer-size", "65535",
            *(C_ROUTE_ARGS if c_plugin else ROUTE_ARGS)]


def plugin_args(c_plugin: Optional[str] = None) -> List[str]:
    """Placed after the user's arguments."""
    return C_PLUGIN_ARGS if c_plugin else PLUGIN_ARGS


def rewrite_own_options(argv: Sequence[str]) -> List[str]:
    """``--glusterfs-mount X`` / ``--glusterfs-mount=X`` (and every key of
    :data:`SET_OPTIONS`) become ``--set glusterfs-mount=X`` in place."""
    out: List[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if name.startswith("--") and name[2:] in SET_OPTIONS:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                value = ""
            out += ["--set", f"{name[2:]}={value}"]
        else:
            out.append(arg)
        i += 1
    return out


def uwsgi_argv(argv: Sequence[str], c_plugin: Optional[str] = None) -> List[str]:
    """The argv pyuwsgi runs: ours rewritten, plus what loads the plugin.

    An argv this function made (a reload re-executing this script, with or
    without a C plugin then) keeps its user part and gets ``c_plugin``'s
    arguments."""
    argv = list(argv)
    earlier = argv[1] if argv[:1] == ["--plugin"] and len(argv) > 1 else None
    prefix, suffix = default_args(earlier), plugin_args(earlier)
    if argv[:len(prefix)] == prefix and argv[len(argv) - len(suffix):] == suffix \
            and len(argv) >= len(prefix) + len(suffix):
        return default_args(c_plugin) + argv[len(prefix):len(argv) - len(suffix)] + plugin_args(c_plugin)
    return default_args(c_plugin) + rewrite_own_options(argv) + plugin_args(c_plugin)


def load_c_plugin(pyuwsgi_file: str) -> Optional[str]:
    """The C plugin's path for ``--plugin`` when it loads, else None (the
    reason is logged after the start-up check, :func:`.cplugin.report_not_loaded`)."""
    from . import cplugin

    got = cplugin.load(pyuwsgi_file, uwsgi_version())
    if isinstance(got, cplugin.Loaded):
        return got.path
    cplugin.not_loaded = got.reason
    return None


def uwsgi_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyuwsgi")
    except PackageNotFoundError:
        return "unknown"


def print_help() -> None:
    """Our options, then uWSGI's own list (asked from pyuwsgi in a child,
    without its usage line, which names the interpreter)."""
    import subprocess

    print("Usage: uwsgi-gluster [options...]  (uWSGI with the glusterfs plugin)")
    print("glusterfs options (in any config uWSGI reads: ini, yaml, xml, json, UWSGI_* env, command line):")
    for key, text in OPTIONS.items():
        print(f"    {'--' + key:<40}{text}")
    print("uWSGI options:", flush=True)
    done = subprocess.run([sys.executable, "-c", "import pyuwsgi; pyuwsgi.run(['--help'])"],
                          stdout=subprocess.PIPE, check=False)
    lines = done.stdout.decode(errors="replace").splitlines(keepends=True)
    sys.stdout.write("".join(line for line in lines if not line.startswith("Usage: ")))
    sys.stdout.flush()


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A reload re-executes binary_path (this script) with pyuwsgi's original
    # argv, whose first item is this script again (after the interpreter).
    if argv and os.path.basename(argv[0]) in ("uwsgi-gluster", "uwsgi") and os.path.isfile(argv[0]) \
            and os.path.realpath(argv[0]) == os.path.realpath(script_path()):
        argv = argv[1:]
    if "--version" in argv:
        print(f"uwsgi-gluster {__version__}\nuWSGI {uwsgi_version()}", flush=True)
        return 0
    # Default SIGINT: a parser hang (self-referential placeholder) must stay
    # interruptible; uWSGI installs its own handlers once it runs.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if "--help" in argv or "-h" in argv or "--usage" in argv:
        print_help()
        return 0
    # Everything the plugin imports is loaded now, as root: after a `cap` user
    # switch the interpreter's own files may no longer be readable. Not
    # .check, .asap and .reload: importing them is what runs them, inside uWSGI.
    import importlib.util  # also what .check needs

    import pyuwsgi

    for name in PRELOADED:
        importlib.import_module(f"{__package__}.{name}")
    # set by the C plugin's init (hot answers are read): never inherited
    os.environ.pop(HOT_ACTIVE_ENV, None)
    args = uwsgi_argv(argv, load_c_plugin(pyuwsgi.__file__))

    return pyuwsgi.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
