"""Every ``glusterfs-*`` setting of one uWSGI instance, read the way uWSGI reads it.

uWSGI itself keeps only the last value of a key it does not know (``uwsgi.opt``),
so this module reads the instance's configuration on its own: the ``--ini``
files named on the command line (with ``file:section``, nested ``ini =`` lines
and ``%(placeholder)`` / ``%d`` / ``%n`` expansion), and ``--glusterfs-*``
options given on the command line, in the order uWSGI would apply them.

Contract:

* :func:`read_settings` takes uWSGI's argv (without the program name) and
  returns a :class:`Settings`, or raises :class:`ConfigError`.
* A :class:`ConfigError` names the source (file and line, or the command-line
  argument), the key and the problem; start-up must stop on it.
* Mount values are parsed like uWSGI's ``uwsgi_kvlist_parse`` (``,`` between
  items, ``=`` between key and value, ``\\`` escapes), but unknown keys, empty
  values and bad ports are errors instead of being ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Optional, Sequence, Tuple

DEFAULT_PORT = 24007
MOUNT_KEY = "glusterfs-mount"
TIMEOUT_KEY = "glusterfs-timeout"
MIMEFILE_KEYS = ("mimefile", "mime-file")
DEFAULT_MIMEFILE = "/etc/mime.types"


class ConfigError(Exception):
    """A configuration problem; ``str()`` names where, which key and what."""

    def __init__(self, where: str, key: str, problem: str):
        self.where = where
        self.key = key
        self.problem = problem
        super().__init__(f"[glusterfs] {where}: {key}: {problem}")


@dataclass(frozen=True)
class Server:
    """One volfile server: ``tcp`` host and port, or a ``unix`` socket path."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        if self.transport == "unix":
            return self.host
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MountSpec:
    """One ``glusterfs-mount``: which volume to serve under which mountpoint.

    ``options`` holds the optional per-mount HTTP settings (see
    :data:`MOUNT_OPTIONS`), already validated and converted.
    """

    mountpoint: str
    volume: str
    servers: Tuple[Server, ...] = ()
    volfile: Optional[str] = None
    where: str = "?"
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    mounts: Tuple[MountSpec, ...]
    timeout: Optional[int] = None
    mimefiles: Tuple[str, ...] = (DEFAULT_MIMEFILE,)


# -- kvlist -----------------------------------------------------------------

def split_kvlist(value: str, list_sep: str = ",", kv_sep: str = "=") -> list:
    """Split ``k=v,k2=v2`` exactly like uWSGI: backslash escapes the next char.

    Returns ``[(key, value_or_None), ...]`` in order; an item without an
    unescaped ``kv_sep`` has value ``None``.
    """
    items, cur, escaped = [], [], False
    for ch in value:
        if escaped:
            cur.append(("lit", ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == list_sep:
            items.append(cur)
            cur = []
        else:
            cur.append(("raw", ch))
    if cur:
        items.append(cur)
    result = []
    for item in items:
        for i, (kind, ch) in enumerate(item):
            if kind == "raw" and ch == kv_sep:
                key = "".join(c for _, c in item[:i])
                val = "".join(c for _, c in item[i + 1:])
                result.append((key, val))
                break
        else:
            result.append(("".join(c for _, c in item), None))
    return result


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_nonneg_int(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a whole number of seconds, got {text!r}")
    return int(text)


def _parse_index(text: str) -> str:
    if not text or "/" in text or text in (".", ".."):
        raise ValueError(f"expected a plain file name, got {text!r}")
    return text


# Optional per-mount keys beyond the native plugin's: name -> (parser, default).
MOUNT_OPTIONS = {
    "max-age": (_parse_nonneg_int, None),
    "index": (_parse_index, "index.html"),
    "autoindex": (_parse_bool, False),
    "precompressed": (_parse_bool, True),
    "symlinks": (_parse_bool, True),
    "dotfiles": (_parse_bool, False),
}
NATIVE_KEYS = ("mountpoint", "server", "servers", "volfile", "volume")


def parse_server(text: str) -> Server:
    """``host:port`` is TCP (port 0 = 24007); text without a colon is a unix socket."""
    if ":" not in text:
        return Server("unix", text, 0)
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"server {text!r} has no host")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"server {text!r} has a bad port {port_text!r} (0-65535, 0 = {DEFAULT_PORT})")
    port = int(port_text) or DEFAULT_PORT
    return Server("tcp", host, port)


def parse_mount(value: str, where: str = "?") -> MountSpec:
    """Parse one ``glusterfs-mount`` value; raise :class:`ConfigError` if unusable."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(where, MOUNT_KEY, f"{problem} (in {value!r})")

    found = {}
    for key, val in split_kvlist(value):
        if val is None:
            if key.strip():
                raise fail(f"item {key!r} has no '=value'")
            continue
        if key not in NATIVE_KEYS and key not in MOUNT_OPTIONS:
            known = ", ".join(NATIVE_KEYS + tuple(MOUNT_OPTIONS))
            raise fail(f"unknown key {key!r} (known keys: {known})")
        if val == "":
            raise fail(f"key {key!r} has an empty value")
        found["server" if key == "servers" else key] = val

    missing = [k for k in ("mountpoint", "volume") if k not in found]
    if "server" not in found and "volfile" not in found:
        missing.append("server (or volfile)")
    if missing:
        raise fail("mount requires a mountpoint, a volume and at least one server or volfile; missing "
                   + ", ".join(missing))
    mountpoint = found["mountpoint"]
    if not mountpoint.startswith("/"):
        raise fail(f"mountpoint {mountpoint!r} must start with '/'")
    servers = []
    if "server" in found:
        for token in found["server"].split(";"):
            if not token:
                continue
            try:
                servers.append(parse_server(token))
            except ValueError as exc:
                raise fail(str(exc)) from None
    options = {}
    for name, (parser, default) in MOUNT_OPTIONS.items():
        if name in found:
            try:
                options[name] = parser(found[name])
            except ValueError as exc:
                raise fail(f"{name}: {exc}") from None
        else:
            options[name] = default
    return MountSpec(mountpoint=mountpoint, volume=found["volume"], servers=tuple(servers),
                     volfile=found.get("volfile"), where=where, options=options)


# -- uWSGI configuration sources ---------------------------------------------

_PLACEHOLDER = re.compile(r"%\(([^)]+)\)")


def _expand(value: str, path: str, known: Mapping[str, str]) -> str:
    """Expand the magic variables uWSGI expands in ini values that we can know."""
    absdir = os.path.dirname(os.path.abspath(path))
    magic = {
        "d": absdir + "/",
        "n": os.path.splitext(os.path.basename(path))[0],
        "e": os.path.splitext(path)[1].lstrip("."),
        "p": os.path.abspath(path),
        "s": os.path.basename(path),
        "c": os.path.basename(absdir),
        "%": "%",
    }
    value = _PLACEHOLDER.sub(lambda m: known.get(m.group(1), m.group(0)), value)
    return re.sub(r"%([dnepsc%])", lambda m: magic[m.group(1)], value)


def read_ini(spec: str, last_file: Optional[str] = None, depth: int = 0,
             known: Optional[dict] = None, origin: str = "command line") -> Iterator[Tuple[str, str, str]]:
    """Yield ``(key, value, where)`` for each line of section of an ini, in order.

    ``spec`` is ``file``, ``file:section`` or ``:section`` (the last file read);
    the default section is ``uwsgi``. Nested ``ini = ...`` keys are followed.
    ``known`` holds the values set so far, for ``%(name)`` expansion; it is
    shared with nested files (a placeholder must be set before it is used).
    ``origin`` says where ``spec`` was named, for errors.
    """
    path, section = spec, "uwsgi"
    if ":" in spec:
        path, _, sect = spec.rpartition(":")
        section = sect or section
        if not path:
            path = last_file or ""
    if depth > 16:
        raise ConfigError(f"{path}", "ini", "ini files include each other too deeply")
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().split("\n")
    except OSError as exc:
        raise ConfigError(origin, "ini", f"cannot read {path!r}: {exc.strerror}") from None
    current = ""
    known = {} if known is None else known
    for number, raw in enumerate(lines, 1):
        line = raw.strip(" \t\r")
        if not line or line[0] in ";#":
            continue
        if line[0] == "[":
            current = line[1:-1] if line.endswith("]") else line[1:]
            continue
        if current != section:
            continue
        key, _, value = line.partition("=")
        key, value = key.rstrip(" \t\r"), value.strip(" \t\r")
        value = _expand(value, path, known)
        known[key] = value
        where = f"{path} line {number}"
        if key == "ini":
            yield from read_ini(value, path, depth + 1, known, origin=where)
            continue
        yield key, value, where


_SOURCES_WITH_VALUE = {"--ini": "ini", "--glusterfs-mount": MOUNT_KEY, "--glusterfs-timeout": TIMEOUT_KEY,
                       "--mimefile": "mimefile", "--mime-file": "mimefile"}


def iter_options(argv: Sequence[str]) -> Iterator[Tuple[str, str, str]]:
    """Yield ``(key, value, where)`` for every setting in uWSGI's argv, in order."""
    i, last_ini, known = 0, None, {}
    while i < len(argv):
        arg = argv[i]
        name, eq, inline = arg.partition("=")
        if name in _SOURCES_WITH_VALUE:
            key = _SOURCES_WITH_VALUE[name]
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                raise ConfigError(f"command line argument {i + 1}", name.lstrip("-"), "needs a value")
            where = f"command line argument {i + 1} ({name})"
            if key == "ini":
                yield from read_ini(value, last_ini, known=known)
                last_ini = (value.rpartition(":")[0] if ":" in value else value) or last_ini
            else:
                yield key, value, where
        elif not arg.startswith("-") and arg.endswith(".ini") and i == len(argv) - 1:
            # `uwsgi file.ini`: uWSGI picks the loader from the extension.
            yield from read_ini(arg, known=known)
        i += 1


def read_settings(argv: Sequence[str]) -> Settings:
    """All glusterfs settings of the instance started with ``argv``."""
    mounts, timeout, mimefiles = [], None, []
    for key, value, where in iter_options(argv):
        if key == MOUNT_KEY:
            mounts.append(parse_mount(value, where))
        elif key == TIMEOUT_KEY:
            if not value.isdigit() or int(value) <= 0:
                raise ConfigError(where, TIMEOUT_KEY, f"expected a positive number of seconds, got {value!r}")
            timeout = int(value)
        elif key in MIMEFILE_KEYS:
            mimefiles.append(value)
    seen = {}
    for mount in mounts:
        if mount.mountpoint in seen:
            raise ConfigError(mount.where, MOUNT_KEY,
                              f"mountpoint {mount.mountpoint!r} is already mounted by {seen[mount.mountpoint]}")
        seen[mount.mountpoint] = mount.where
    return Settings(mounts=tuple(mounts), timeout=timeout,
                    mimefiles=tuple(mimefiles) or (DEFAULT_MIMEFILE,))
