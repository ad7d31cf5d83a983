"""uWSGI's own resolved option list, read from inside the running uWSGI process.

uWSGI resolves its whole configuration language itself (ini logic, ``for`` /
``endfor``, ``if-env`` ..., ``%()`` / ``$()`` / ``@()`` placeholders, yaml, xml,
json, ``UWSGI_*`` environment variables, ``file.ini:section``, the embedded
config of ``./uwsgi``) into one ordered list, ``uwsgi.exported_opts``: every
``key = value`` it applied, repeats included, in order. That list is the one
source of truth for every ``glusterfs-*`` setting; this package has no config
parser of its own.

How the list is read: uWSGI's exported C function ``show_config()`` (the one
behind ``--show-config``) logs it, one ``uwsgi_log()`` call per option, and
``uwsgi_log`` does exactly one ``write(2, ...)`` per call (optionally prefixed
by a date with ``log-date`` / ``log-strftime``). :func:`resolved_options`
points fd 2 at one end of a ``SOCK_DGRAM`` socketpair for the duration of the
call, so each ``write`` arrives as one datagram: values are exact, even with
newlines in them. A reader thread drains the other end while the call runs
(ctypes releases the GIL), so a long list never blocks the writer. Datagrams
that are not part of the listing (another thread logging at that moment) are
written back to the real stderr.

Contract:

* :func:`resolved_options` returns ``[(key, value), ...]`` in uWSGI's order
  (a flag given without a value reads ``"true"``); it works in the master and
  in workers, under ``pyuwsgi`` (the ``uwsgi-gluster`` launcher) and in a
  ``uwsgi`` binary (``./uwsgi``, a distribution's uwsgi with our plugin).
* Outside uWSGI it raises :class:`NotInUwsgi`.
* :func:`parse_listing` is the pure part: datagrams in, pairs out.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading
from typing import Iterable, List, Optional, Tuple

START = b"\n;uWSGI instance configuration\n[uwsgi]\n"
END = b";end of configuration\n\n"
_STOP = b"\0uwsgi-gluster-end-of-listing\0"
# A datagram larger than the socket's send buffer would be refused (EMSGSIZE):
# 8 MiB covers any value uWSGI itself can hold in one config line.
_BUFFER = 8 << 20


class NotInUwsgi(RuntimeError):
    """Not running inside a uWSGI process: there is no resolved option list."""


_embedded = False


def mark_embedded() -> None:
    """Say that this interpreter runs inside a uWSGI binary even though uWSGI has
    not made its ``uwsgi`` module yet (the C plugin's post_init hook)."""
    global _embedded
    _embedded = True


def _core_library() -> ctypes.CDLL:
    """The loaded object holding uWSGI's core: pyuwsgi's extension or the binary."""
    pyuwsgi = sys.modules.get("pyuwsgi")
    if pyuwsgi is not None and getattr(pyuwsgi, "__file__", None):
        return ctypes.CDLL(pyuwsgi.__file__)
    if "uwsgi" not in sys.modules and not _embedded:
        raise NotInUwsgi("not running inside uWSGI")
    return ctypes.CDLL(None)


def parse_listing(datagrams: Iterable[bytes]) -> Tuple[List[Tuple[str, str]], List[bytes]]:
    """Split the datagrams of one ``show_config()`` call.

    Returns ``(options, others)``: the ``(key, value)`` pairs between the
    start and end markers, and every datagram that was not part of the
    listing (to be written back to stderr). The date prefix, if any, is the
    text before the start marker in the first listing datagram; later ones
    have a prefix of the same length (uWSGI's date formats are fixed-width).
    """
    options: List[Tuple[str, str]] = []
    others: List[bytes] = []
    prefix: Optional[bytes] = None
    done = False
    for data in datagrams:
        if prefix is None:
            at = data.find(START)
            if at < 0:
                others.append(data)
                continue
            prefix = data[:at]
            continue
        # the date prefix can change during the listing (a second ticks): only
        # its length and its " - " separator stay the same
        if done or len(data) <= len(prefix) or data[len(prefix) - 3:len(prefix)] != prefix[-3:]:
            others.append(data)
            continue
        body = data[len(prefix):]
        if body == END:
            done = True
            continue
        if not body.endswith(b"\n") or b" = " not in body:
            others.append(data)
            continue
        key, _, value = body[:-1].partition(b" = ")
        options.append((os.fsdecode(key), os.fsdecode(value)))
    if prefix is None or not done:
        raise RuntimeError("uWSGI's show_config() listing was not complete")
    return options, others


def resolved_options() -> List[Tuple[str, str]]:
    """Every option uWSGI resolved for this instance, in order (see module doc)."""
    show_config = _core_library().show_config
    show_config.restype = None
    show_config.argtypes = []
    writer, reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    received: List[bytes] = []
    with writer, reader:
        for sock, opt in ((writer, socket.SO_SNDBUF), (reader, socket.SO_RCVBUF)):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, _BUFFER)
            except OSError:
                pass

        def drain() -> None:
            while True:
                data = reader.recv(_BUFFER)
                if data == _STOP:
                    return
                received.append(data)

        thread = threading.Thread(target=drain, name="uwsgi-gluster-options", daemon=True)
        thread.start()
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(writer.fileno(), 2)
            try:
                show_config()
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
            writer.send(_STOP)
            thread.join()
    options, others = parse_listing(received)
    for data in others:
        os.write(2, data)
    return options


__all__ = ["NotInUwsgi", "parse_listing", "resolved_options"]
