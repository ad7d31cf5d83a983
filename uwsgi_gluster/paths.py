"""Turning a request path into a path on the volume, with bounded work.

Contract:

* :func:`normalize` resolves ``.``/``..`` lexically, never above ``/``.
* :func:`resolve` walks a normalized path component by component with
  ``lstat`` (one call per component) and follows symlinks itself, the way the
  kernel does: a relative target continues from the link's directory, an
  absolute one from the volume root, ``..`` never leaves the root (libgfapi's
  own rule, so the result names the same file libgfapi would open). It returns
  the path with no symlink left in it, and the final component's stat.
* The work one call can cause is bounded: at most :data:`MAX_SYMLINK_HOPS`
  symlinks followed (Linux's limit) and at most :data:`MAX_STEPS` components
  walked in all (the request's plus those of link targets). Beyond either,
  ``OSError(ELOOP)``, which the responder answers ``404``. With
  ``follow=False`` the first symlink raises :class:`SymlinkRefused`.
* A caller that resolved a directory before (and cached it under its
  freshness rule) walks on from its real path, passing the hops it took.
"""

from __future__ import annotations

import errno
import os
import stat as statmod
from typing import Any, Callable, List, Optional, Tuple

MAX_SYMLINK_HOPS = 40
MAX_STEPS = 256


class SymlinkRefused(OSError):
    """A symlink on the path of a mount with ``symlinks=false``."""

    def __init__(self, path: bytes):
        super().__init__(errno.ENOENT, f"symlink refused: {os.fsdecode(path)}")


def normalize(path: bytes) -> Optional[bytes]:
    """Resolve ``.``/``..`` lexically, never above ``/``; keep a trailing slash.

    Returns None if the path does not start with ``/``.
    """
    if not path.startswith(b"/"):
        return None
    parts: List[bytes] = []
    for part in path.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    trailing = path.endswith(b"/") or path.endswith(b"/.") or path.endswith(b"/..")
    joined = b"/" + b"/".join(parts)
    return joined + b"/" if trailing and parts else joined


def _join(parts: List[bytes]) -> bytes:
    return b"/" + b"/".join(parts)


def resolve(path: bytes, lstat: Callable[[bytes], Any], readlink: Callable[[bytes], bytes],
            follow: bool = True, base: bytes = b"/", hops: int = 0, max_hops: int = MAX_SYMLINK_HOPS,
            max_steps: int = MAX_STEPS) -> Tuple[bytes, Any, int]:
    """``(real_path, stat, hops)`` of normalized ``path``: ``real_path`` has no
    symlink in it, ``stat`` is ``lstat(real_path)`` and ``hops`` the symlinks
    followed. A relative ``path`` is walked from ``base``, a directory already
    resolved (its components are not looked at again) that took ``hops``.

    Raises what ``lstat``/``readlink`` raise (``ENOENT``, ``ENOTDIR``...),
    ``OSError(ELOOP)`` past the bounds, :class:`SymlinkRefused` for a symlink
    when not ``follow``.
    """
    done: List[bytes] = [] if path.startswith(b"/") else [part for part in base.split(b"/") if part]
    pending = list(reversed(path.split(b"/")))
    steps = 0
    st = None
    while pending:
        part = pending.pop()
        if part in (b"", b"."):
            continue
        steps += 1
        if steps > max_steps:
            raise OSError(errno.ELOOP, f"more than {max_steps} path components: {os.fsdecode(path)}")
        if part == b"..":
            if done:
                done.pop()
            st = None
            continue
        candidate = _join(done + [part])
        st = lstat(candidate)
        if not statmod.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        if not follow:
            raise SymlinkRefused(candidate)
        hops += 1
        if hops > max_hops:
            raise OSError(errno.ELOOP, f"more than {max_hops} symlinks: {os.fsdecode(path)}")
        target = readlink(candidate)
        if not target:
            raise OSError(errno.ENOENT, f"empty symlink: {os.fsdecode(candidate)}")
        if target.startswith(b"/"):
            done = []
        pending.extend(reversed(target.split(b"/")))
        st = None
    real = _join(done)
    if st is None:  # ended on the root, or after a ".."
        st = lstat(real)
    return real, st, hops
