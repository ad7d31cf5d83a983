"""The ``uwsgi-gluster`` console script: uWSGI's own command line, run by pyuwsgi.

Contract: ``uwsgi-gluster ARGS`` behaves like ``uwsgi ARGS`` with the native
glusterfs plugin loaded. It validates every glusterfs setting first (a bad one
stops start-up with exit status 1 and a message naming file, line and key),
removes the ``--glusterfs-*`` options pyuwsgi would not understand, then runs
uWSGI in this process with modifier1 27 routed to the Python plugin and
:mod:`uwsgi_gluster.plugin` loaded. The original argv travels in
``UWSGI_GLUSTER_ARGV`` so the plugin (and a reload) read the same settings.
"""

from __future__ import annotations

import json
import os
import sys
from typing import List, Optional, Sequence

from .config import ConfigError, read_settings

ARGV_ENV = "UWSGI_GLUSTER_ARGV"
OWN_OPTIONS = ("--glusterfs-mount", "--glusterfs-timeout")
PLUGIN_ARGS = ["--remap-modifier", "0:27", "--module", "uwsgi_gluster.plugin"]
# Defaults placed before the user's arguments, so any value the user gives wins.
# A 64 KiB request buffer lets over-long paths reach the plugin and get a 4xx
# instead of uWSGI's 4 KiB buffer dropping the connection.
# A reload re-execs uWSGI's binary path, which uWSGI takes from /proc/self/exe:
# the *resolved* interpreter, outside any virtualenv, where uwsgi_gluster cannot
# be imported. The interpreter path as invoked (sys.executable, e.g.
# .venv/bin/python) keeps the reloaded process in the same environment.
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
# writes nothing; any answer would echo the token again).
PROTOCOL_ROUTE = ["--route-if-not", r"regexp:${SERVER_PROTOCOL};^(HTTP/[0-9](\.[0-9])?)?$ break:"]
ROUTE_ARGS = ["--route-run", "setmodifier1:0", *PROTOCOL_ROUTE, "--disable-write-exception"]
DEFAULT_ARGS = ["--buffer-size", "65535", "--binary-path", sys.executable, *ROUTE_ARGS]


def uwsgi_argv(argv: Sequence[str]) -> List[str]:
    """``argv`` without our own options, plus what routes requests to the plugin."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name, eq, _ = arg.partition("=")
        if name in OWN_OPTIONS:
            skip = not eq
            continue
        out.append(arg)
    return DEFAULT_ARGS + out + PLUGIN_ARGS


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = read_settings(argv)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not settings.mounts and not any(a in ("--help", "-h", "--version") for a in argv):
        print("[glusterfs] no glusterfs-mount given (in the ini files or with --glusterfs-mount): "
              "nothing to serve", file=sys.stderr)
        return 1
    os.environ[ARGV_ENV] = json.dumps(argv)
    import pyuwsgi

    from .caps import CapError, apply_caps
    # Everything the plugin imports is loaded now, as root: after a `cap` user
    # switch the interpreter's own files may no longer be readable.
    from . import cache, http, mime, responder, volume  # noqa: F401

    try:
        apply_caps(argv)  # pyuwsgi has no --cap: switch user keeping the caps here
    except CapError as exc:
        print(exc, file=sys.stderr)
        return 1
    return pyuwsgi.run(uwsgi_argv(argv)) or 0


if __name__ == "__main__":
    sys.exit(main())
