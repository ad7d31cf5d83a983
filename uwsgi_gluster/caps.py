"""uWSGI's ``cap`` key for the ``uwsgi-gluster`` launcher (pyuwsgi has no ``--cap``).

pyuwsgi is built without libcap: there, ``cap = ...`` would silently become a
placeholder and ``uid = ...`` would drop every capability. This module makes
the key work, or stops start-up with a message naming the key and the line.

Contract, for :mod:`uwsgi_gluster.launcher`: the launcher makes uWSGI import
:mod:`uwsgi_gluster.asap` at its ``asap`` hook (right after uWSGI resolved
its configuration, before it binds sockets or switches user), which calls
``apply_caps(resolved_options())`` and, on :class:`CapError`, logs its one
line and exits 1. Everything the plugin needs is imported before the switch,
so it stays usable even if the new user cannot read the interpreter's files.

``apply_caps`` does nothing when no ``cap`` is given. With ``cap`` (the last
value uWSGI resolved wins, as in uWSGI) it needs root, then does in this process what
uWSGI's own ``--cap`` does, before pyuwsgi starts: keeps the listed
capabilities across the switch to ``uid``/``gid`` (the last ``uid``/``gid``
given; names or numbers), drops all others, and raises them in the ambient
set too, so a reload that re-executes Python keeps them. pyuwsgi then runs
as that user (it skips its own uid/gid step when not root), master and
workers alike, holding exactly those capabilities.

The one difference from the built ``./uwsgi``: sockets are bound after the
switch, so ports below 1024 need ``cap = net_bind_service`` (which is what
the key is normally for). Keys that must run as root before the switch
(``chroot``, ``master-as-root``, ``unshare``...) cannot be combined with
``cap`` here: :class:`CapError` names them; use ``./uwsgi`` (``make``) then.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import grp
import os
import pwd
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from .config import ConfigError

# Linux capability numbers (linux/capability.h), named as uWSGI names them.
CAP_NAMES = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
    "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
    "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
    "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
    "lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
    "wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
)
CAP_IDS = {name: i for i, name in enumerate(CAP_NAMES)}

# Keys uWSGI acts on as root before dropping privileges: with them, the early
# switch done here would change their meaning, so they are refused with cap.
# (`mount` itself loads an app under a mountpoint, as the launcher does: allowed.)
ROOT_PHASE_KEYS = (
    "master-as-root", "chroot", "pivot-root", "pivot_root", "unshare", "setns", "setns-socket",
    "namespace", "ns", "jail", "jail2", "hook-as-root", "exec-as-root", "call-as-root",
    "mount-as-root", "umount-as-root", "refork-as-root",
)

PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class CapError(ConfigError):
    """``cap`` cannot be honoured; ``str()`` names where, the key and why."""


@dataclass(frozen=True)
class CapRequest:
    caps: Tuple[int, ...]
    uid: Optional[int]
    gid: Optional[int]
    user: Optional[str]
    where: str


def parse_caps(value: str, where: str) -> Tuple[int, ...]:
    """``net_bind_service,sys_nice`` or numbers -> capability numbers."""
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if item.isdigit():
            number = int(item)
        else:
            number = CAP_IDS.get(item.lower().removeprefix("cap_"), -1)
        if not 0 <= number < len(CAP_NAMES):
            raise CapError(where, "cap", f"unknown capability {item!r}")
        out.append(number)
    if not out:
        raise CapError(where, "cap", "no capability given")
    return tuple(sorted(set(out)))


def cap_request(options: Sequence[Tuple[str, str]]) -> Optional[CapRequest]:
    """What ``cap``/``uid``/``gid`` ask for in uWSGI's resolved ``(key, value)``
    pairs (None without ``cap``).

    Raises :class:`CapError` for a bad value or a key that cannot go with cap.
    """
    cap = uid = gid = None
    root_phase = []
    counts: dict = {}
    for key, value in options:
        counts[key] = counts.get(key, 0) + 1
        where = f"{key} #{counts[key]}"
        if key == "cap":
            cap = (value, where)
        elif key == "uid":
            uid = (value, where)
        elif key == "gid":
            gid = (value, where)
        elif key in ROOT_PHASE_KEYS:
            root_phase.append((key, where))
    if cap is None:
        return None
    value, where = cap
    caps = parse_caps(value, where)
    if root_phase:
        names = ", ".join(f"{k} ({w})" for k, w in root_phase)
        raise CapError(where, "cap", f"uwsgi-gluster applies cap before uWSGI starts, which cannot go with "
                                     f"{names}; build and use ./uwsgi (make) for that configuration")
    user = None
    uid_n = gid_n = None
    if uid is not None:
        try:
            entry = pwd.getpwuid(int(uid[0])) if uid[0].isdigit() else pwd.getpwnam(uid[0])
            uid_n, user = entry.pw_uid, entry.pw_name
        except KeyError:
            if not uid[0].isdigit():
                raise CapError(uid[1], "uid", f"no such user {uid[0]!r}") from None
            uid_n = int(uid[0])
    if gid is not None:
        try:
            gid_n = int(gid[0]) if gid[0].isdigit() else grp.getgrnam(gid[0]).gr_gid
        except KeyError:
            raise CapError(gid[1], "gid", f"no such group {gid[0]!r}") from None
    return CapRequest(caps=caps, uid=uid_n, gid=gid_n, user=user, where=where)


check_cap_supported = cap_request  # the name the launcher's brief used


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(ret: int, what: str, where: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise CapError(where, "cap", f"{what} failed: {os.strerror(err)}")


def set_caps(caps: Sequence[int], where: str = "cap") -> None:
    """Make ``caps`` this process's effective, permitted and inheritable set
    (all others dropped) and raise them in the ambient set."""
    libc = _libc()
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for cap in caps:
        word, bit = divmod(cap, 32)
        for field in ("effective", "permitted", "inheritable"):
            setattr(data[word], field, getattr(data[word], field) | (1 << bit))
    _check(libc.capset(ctypes.byref(header), data), "capset()", where)
    for cap in caps:
        _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0),
               f"prctl(PR_CAP_AMBIENT_RAISE, {CAP_NAMES[cap]})", where)


def apply_caps(options: Sequence[Tuple[str, str]]) -> Optional[CapRequest]:
    """Honour ``cap`` (see the module doc) or raise :class:`CapError`; None without cap."""
    req = cap_request(options)
    if req is None:
        return None
    if os.getuid() != 0 and req.uid is not None and os.getuid() == req.uid:
        return req  # a reload: the switch and the ambient caps were kept across exec
    if os.getuid() != 0:
        raise CapError(req.where, "cap", "needs uwsgi-gluster started as root "
                                         "(a process that is not root cannot raise capabilities)")
    libc = _libc()
    _check(libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0), "prctl(PR_SET_KEEPCAPS)", req.where)
    if req.gid is not None:
        if req.user:
            os.initgroups(req.user, req.gid)
        else:
            os.setgroups([req.gid])
        os.setgid(req.gid)
    if req.uid is not None:
        os.setuid(req.uid)
    set_caps(req.caps, req.where)
    names = ",".join(CAP_NAMES[c] for c in req.caps)
    print(f"[glusterfs] {req.where}: running as uid {os.getuid()} gid {os.getgid()} "
          f"with capabilities {names}", flush=True)
    return req
