"""Every ``glusterfs-*`` setting of one uWSGI instance, from the values uWSGI resolved.

This module parses no config file: its input is uWSGI's own resolved option
list, ``[(key, value), ...]`` in order (see :mod:`.options`), and it only turns
those values into validated, immutable :class:`Settings`.

Contract:

* :func:`settings_from_options` takes the resolved pairs and returns a
  :class:`Settings`, or raises :class:`ConfigError`.
* uWSGI does not keep the file and line of an option, so a
  :class:`ConfigError` names the option, its ordinal among the values of that
  key (``glusterfs-mount #2``), the value and the problem, plus the config
  files the instance was given; start-up must stop on it.
* Mount values are parsed like uWSGI's ``uwsgi_kvlist_parse`` (``,`` between
  items, ``=`` between key and value, ``\\`` escapes), but unknown keys, empty
  values, bad ports and volume names libgfapi refuses are errors instead of
  being ignored.
* :data:`OPTIONS` is every ``glusterfs-*`` option with its one-line help (the
  launcher's ``--help``; the C stub in profiles/plugins/glusterfs.c declares
  the same keys).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

DEFAULT_PORT = 24007
MOUNT_KEY = "glusterfs-mount"
TIMEOUT_KEY = "glusterfs-timeout"
CONNECT_TIMEOUT_KEY = "glusterfs-connect-timeout"
HEALTH_KEY = "glusterfs-health"
METRICS_KEY = "glusterfs-metrics"
LOCAL_CACHE_KEY = "glusterfs-local-cache"
LOCAL_CACHE_DIR_KEY = "glusterfs-local-cache-dir"
LOCAL_CACHE_MAX_FILE_KEY = "glusterfs-local-cache-max-file"
MIMEFILE_KEYS = ("mimefile", "mime-file")
DEFAULT_MIMEFILE = "/etc/mime.types"
DEFAULT_CONNECT_TIMEOUT = 10
#: every glusterfs-* option: key -> one-line help
OPTIONS = {
    MOUNT_KEY: "virtual mount the specified glusterfs volume in a uri "
               "(mountpoint=/x,volume=v,server=host:port[;host:port...] or volfile=...)",
    TIMEOUT_KEY: "timeout for glusterfs async mode (native meaning; accepted, 0 and up, "
                 "unused: no async mode here)",
    CONNECT_TIMEOUT_KEY: f"seconds a worker waits for a volfile server to answer "
                         f"(default {DEFAULT_CONNECT_TIMEOUT})",
    HEALTH_KEY: "answer this path (e.g. /_health) with 200 when every mount's volume is connected, "
                "503 and the failing mounts otherwise (default: off)",
    METRICS_KEY: "answer this path (e.g. /_metrics) with the glusterfs metrics in Prometheus text format "
                 "(default: off)",
    LOCAL_CACHE_KEY: "byte budget of the instance's local content cache shared by all workers, "
                     "e.g. 256M or 1G; 0 turns it off (default 256M)",
    LOCAL_CACHE_DIR_KEY: "directory (tmpfs or local disk) holding the local content cache (default /dev/shm)",
    LOCAL_CACHE_MAX_FILE_KEY: "largest file the local content cache copies, e.g. 64M (default 64M)",
}
#: keys whose value names a config file the instance was given
CONFIG_FILE_KEYS = ("ini", "yaml", "yml", "xml", "json", "js", "config", "inherit")
# uWSGI keeps ints in a C int (glusterfs-timeout is uwsgi_opt_set_int natively)
INT_MAX = 2**31 - 1
MAX_CONNECT_TIMEOUT = 3600
MAX_SIZE = 1 << 50
_VOLUME_NAME = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """A configuration problem; ``str()`` names which option, where and what.

    ``where`` says which value (``glusterfs-mount #2``, or a source such as a
    file and line for errors found elsewhere), ``key`` the option.
    """

    def __init__(self, where: str, key: str, problem: str, value: Optional[str] = None,
                 sources: Sequence[str] = ()):
        self.where = where
        self.key = key
        self.problem = problem
        self.value = value
        shown = f" = {value!r}" if value is not None else ""
        text = f"[glusterfs] {where}{shown}: {problem}"
        if where != key and not where.startswith(key + " "):
            text = f"[glusterfs] {where}: {key}{shown}: {problem}"
        if sources:
            text += f" (config: {', '.join(sources)})"
        super().__init__(text)


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
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """All glusterfs settings of one instance.

    ``timeout`` is ``glusterfs-timeout`` (native meaning: async-mode reads;
    kept, not used), ``connect_timeout`` the seconds a worker waits for a
    volfile server, ``sources`` the config files the instance was given,
    ``health_path`` / ``metrics_path`` the request paths answered by
    :mod:`.endpoints` (None: off).
    """

    mounts: Tuple[MountSpec, ...]
    timeout: Optional[int] = None
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT
    mimefiles: Tuple[str, ...] = (DEFAULT_MIMEFILE,)
    sources: Tuple[str, ...] = ()
    health_path: Optional[str] = None
    metrics_path: Optional[str] = None
    local_cache: LocalCacheSettings = field(default_factory=lambda: LocalCacheSettings())


@dataclass(frozen=True)
class LocalCacheSettings:
    """The ``glusterfs-local-cache*`` options; None where not given (the
    ``GLUSTERFS_LOCAL_CACHE_*`` environment variables or the defaults apply)."""

    size: Optional[int] = None
    directory: Optional[str] = None
    max_file: Optional[int] = None


def parse_size(text: str) -> int:
    """``"256M"``, ``"1G"``, ``"65536"``, ``"0"`` -> bytes (K/M/G/T are powers of 1024)."""
    value = text.strip().upper()
    scale = 1
    if value[-1:] in ("K", "M", "G", "T"):
        scale = 1 << {"K": 10, "M": 20, "G": 30, "T": 40}[value[-1]]
        value = value[:-1]
    if not value.isdigit() or int(value) * scale > MAX_SIZE:
        raise ValueError(f"expected a size such as 256M, got {text!r}")
    return int(value) * scale


def _parse_size_option(key: str, where: str, value: str, sources: Sequence[str]) -> int:
    try:
        return parse_size(value)
    except ValueError:
        raise ConfigError(where, key, "expected a size in bytes, or with K, M, G or T (powers of 1024) "
                          "such as 256M", value=value, sources=sources) from None


def _parse_directory(key: str, where: str, value: str, sources: Sequence[str]) -> str:
    if not value.startswith("/") or "\0" in value:
        raise ConfigError(where, key, "expected an absolute directory path", value=value, sources=sources)
    return value


# -- kvlist -----------------------------------------------------------------

def split_kvlist(value: str, list_sep: str = ",", kv_sep: str = "=") -> List[Tuple[str, Optional[str]]]:
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
    result: List[Tuple[str, Optional[str]]] = []
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


def parse_mount(value: str, where: str = MOUNT_KEY, sources: Sequence[str] = ()) -> MountSpec:
    """Parse one ``glusterfs-mount`` value; raise :class:`ConfigError` if unusable."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(where, MOUNT_KEY, problem, value=value, sources=sources)

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
    if not _VOLUME_NAME.fullmatch(found["volume"]):
        raise fail(f"volume name {found['volume']!r} is not one libgfapi accepts "
                   f"(letters, digits, '_' and '-' only)")
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


# -- from uWSGI's resolved option list -------------------------------------------

def config_sources(options: Sequence[Tuple[str, str]]) -> Tuple[str, ...]:
    """The config files named in the resolved options (``ini``, ``yaml``...), in order."""
    seen: List[str] = []
    for key, value in options:
        if key in CONFIG_FILE_KEYS and value not in seen:
            seen.append(value)
    return tuple(seen)


def _parse_int(key: str, where: str, value: str, low: int, high: int, sources: Sequence[str]) -> int:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(where, key, f"expected a whole number of seconds from {low} to {high}",
                          value=value, sources=sources)
    return int(text)


_ENDPOINT_PATH = re.compile(r"/[!$&'()*+,;=:@A-Za-z0-9._~/-]{0,254}")


def _parse_endpoint_path(key: str, where: str, value: str, sources: Sequence[str]) -> str:
    if not _ENDPOINT_PATH.fullmatch(value) or "//" in value or value.endswith("/") and value != "/" \
            or any(part in (".", "..") for part in value.split("/")):
        raise ConfigError(where, key, "expected a plain absolute URL path such as /_health "
                          "(no query, no '.'/'..' segments, no trailing '/', at most 255 characters)",
                          value=value, sources=sources)
    if value == "/":
        raise ConfigError(where, key, "'/' would hide every file of the / mount", value=value, sources=sources)
    return value


def settings_from_options(options: Sequence[Tuple[str, str]]) -> Settings:
    """All glusterfs settings from uWSGI's resolved ``(key, value)`` pairs, in order.

    ``glusterfs-mount`` values are kept in order, every one; for
    ``glusterfs-timeout`` and ``glusterfs-connect-timeout`` the last value
    wins (as uWSGI's ``uwsgi_opt_set_int`` does), but each is checked; so
    for ``glusterfs-health`` and ``glusterfs-metrics`` (URL paths) and the
    ``glusterfs-local-cache*`` options.
    """
    sources = config_sources(options)
    mounts: List[MountSpec] = []
    counts: Dict[str, int] = {}
    timeout: Optional[int] = None
    connect_timeout = DEFAULT_CONNECT_TIMEOUT
    mimefiles: List[str] = []
    paths: Dict[str, Optional[str]] = {HEALTH_KEY: None, METRICS_KEY: None}
    local: Dict[str, Any] = {}
    for key, value in options:
        if key not in OPTIONS and key not in MIMEFILE_KEYS:
            continue
        counts[key] = counts.get(key, 0) + 1
        where = f"{key} #{counts[key]}"
        if key == MOUNT_KEY:
            mounts.append(parse_mount(value, where, sources))
        elif key == TIMEOUT_KEY:
            timeout = _parse_int(key, where, value, 0, INT_MAX, sources)
        elif key == CONNECT_TIMEOUT_KEY:
            connect_timeout = _parse_int(key, where, value, 1, MAX_CONNECT_TIMEOUT, sources)
        elif key in paths:
            paths[key] = _parse_endpoint_path(key, where, value, sources)
        elif key == LOCAL_CACHE_KEY:
            local["size"] = _parse_size_option(key, where, value, sources)
        elif key == LOCAL_CACHE_MAX_FILE_KEY:
            local["max_file"] = _parse_size_option(key, where, value, sources)
        elif key == LOCAL_CACHE_DIR_KEY:
            local["directory"] = _parse_directory(key, where, value, sources)
        elif key in MIMEFILE_KEYS:
            mimefiles.append(value)
    seen: Dict[str, str] = {}
    for mount in mounts:
        if mount.mountpoint in seen:
            raise ConfigError(mount.where, MOUNT_KEY,
                              f"mountpoint {mount.mountpoint!r} is already mounted by {seen[mount.mountpoint]}",
                              sources=sources)
        seen[mount.mountpoint] = mount.where
    health, metrics = paths[HEALTH_KEY], paths[METRICS_KEY]
    if health is not None and health == metrics:
        raise ConfigError(f"{METRICS_KEY} #{counts[METRICS_KEY]}", METRICS_KEY,
                          f"same path as {HEALTH_KEY}", value=metrics, sources=sources)
    return Settings(mounts=tuple(mounts), timeout=timeout, connect_timeout=connect_timeout,
                    mimefiles=tuple(mimefiles) or (DEFAULT_MIMEFILE,), sources=sources,
                    health_path=health, metrics_path=metrics, local_cache=LocalCacheSettings(**local))


def read_settings() -> Settings:
    """The settings of the uWSGI instance this code runs in (see :mod:`.options`)."""
    from .options import resolved_options

    return settings_from_options(resolved_options())
