#!/usr/bin/env python3
"""Build a real ``uwsgi`` binary from a uWSGI build profile (issue 3).

    scripts/uwsgi_build.py [--profile NAME|PATH] [--output ./uwsgi] [--venv .venv]
    scripts/uwsgi_build.py pkg-config      # print glusterfs-api's flags as JSON
    scripts/uwsgi_build.py pyplugin [--venv .venv]   # glusterfs_plugin.so for the venv's pyuwsgi

``make`` runs the first form with ``UWSGI_PROFILE`` (default ``glusterfs``, i.e.
``profiles/glusterfs.ini``; a path to another profile file works too).

What it does:

1. asks ``pkg-config`` (honouring ``PKG_CONFIG_PATH``) for ``glusterfs-api``:
   cflags, libs, libdir; exits with a message naming PKG_CONFIG_PATH when the
   package is not found;
2. downloads the pinned uWSGI source distribution from PyPI with pip
   (``pip download --no-deps --no-binary :all: uwsgi==X``, X being the
   ``pyuwsgi==X`` pin of setup.cfg) into the cache, never into the repository;
3. unpacks it in ``$UWSGI_GLUSTER_CACHE`` (default ``/var/cache/uwsgi-gluster``)
   under a key hashing the profile, the pinned version, the interpreter, gcc,
   the pkg-config answer and this script, and builds there with
   ``uwsgiconfig.py --build`` run by the project's interpreter (so the embedded
   Python plugin is the venv's Python). A later run with the same key reuses
   the compiled objects: uwsgiconfig.py's own incremental build only relinks;
4. renders the profile's ``embed_config`` with build-time lines (the venv as
   ``home``, its site-packages and the package's directory as ``pythonpath``,
   ``env = UWSGI_GLUSTER_LIBGFAPI=<libdir>/libgfapi.so.0``) and links libgfapi
   with an rpath to pkg-config's libdir, so the libgfapi pkg-config pointed at
   is the one mapped at run time (ctypes' ``CDLL("libgfapi.so.0")`` returns the
   already loaded library);
5. checks the result against the profile's ``[uwsgi-gluster]`` section
   (``require_cflags``/``forbid_cflags`` against ``uwsgi --cflags``,
   ``require_options`` against ``uwsgi --help``) and fails loudly otherwise;
6. copies the binary to ``--output``.

``pyplugin`` (``make pyplugin``, part of ``make``, ``make test`` and ``make run``)
builds profiles/plugins/glusterfs.c as
``glusterfs_plugin.so`` for the venv's pyuwsgi, which the ``uwsgi-gluster``
launcher loads (uwsgi_gluster/cplugin.py): compiled with exactly the CFLAGS
pyuwsgi reports (``pyuwsgi.run(['--cflags'])``: uwsgi.h's struct layouts
depend on them) against the headers of the pinned uWSGI sdist, which must be
pyuwsgi's version (refused otherwise); written with its stamp into
``<venv>/lib/uwsgi-gluster/`` and checked to load into pyuwsgi.
"""

from __future__ import annotations

import argparse
import configparser
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PKG_CONFIG_PACKAGE = "glusterfs-api"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = "/var/cache/uwsgi-gluster"
# Fixed names inside the build tree: the embedded config's symbol names derive
# from its path, and they are compiled into core/uwsgi.o, so keeping the path
# constant lets a changed config (another clone, another venv) be relinked only.
EMBED_NAME = "uwsgi_gluster_embed.ini"
PROFILE_NAME = "uwsgi_gluster_profile.ini"
PLUGIN_DIR = "uwsgi_gluster_plugins"


class BuildError(Exception):
    """A failure with a message meant for the person running make."""


def pinned_uwsgi_version(setup_cfg: Path = REPO / "setup.cfg") -> str:
    """The uWSGI version to build: the ``pyuwsgi==X`` pin of setup.cfg's
    ``install_requires``, the one place the project pins uWSGI (so ``./uwsgi``
    and the ``uwsgi-gluster`` launcher run the same uWSGI)."""
    cfg = configparser.ConfigParser()
    if not cfg.read(setup_cfg):
        raise BuildError(f"cannot read {setup_cfg}")
    requires = cfg.get("options", "install_requires", fallback="")
    pins = re.findall(r"^\s*pyuwsgi\s*==\s*([0-9][0-9A-Za-z.]*)\s*$", requires, re.MULTILINE)
    if len(pins) != 1:
        raise BuildError(f"{setup_cfg}: install_requires must pin pyuwsgi exactly once (pyuwsgi==X.Y.Z), "
                         f"found {pins or 'none'}")
    return pins[0]


UWSGI_VERSION = pinned_uwsgi_version()


def log(msg: str) -> None:
    print(f"[uwsgi-build] {msg}", file=sys.stderr, flush=True)


# -- pkg-config -----------------------------------------------------------------

def pkg_config(package: str = PKG_CONFIG_PACKAGE, env=None) -> dict:
    """Return ``{"cflags", "libs", "libdir", "libgfapi"}`` for ``package``.

    Honours ``PKG_CONFIG_PATH`` (pkg-config reads it from the environment).
    Raises :class:`BuildError` with a message naming PKG_CONFIG_PATH when the
    package is not found.
    """
    env = dict(os.environ if env is None else env)
    exe = shutil.which("pkg-config", path=env.get("PATH"))
    if exe is None:
        raise BuildError("pkg-config is not installed (apt-get install pkg-config; "
                         "scripts/gluster-env install does it)")

    def ask(*args: str) -> str:
        proc = subprocess.run([exe, *args, package], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            where = env.get("PKG_CONFIG_PATH")
            where = f"PKG_CONFIG_PATH={where!r}" if where else "PKG_CONFIG_PATH is not set"
            said = proc.stderr.strip().splitlines()
            raise BuildError(
                f"pkg-config cannot find {package} ({where}).\n"
                f"  Install libglusterfs-dev, or set PKG_CONFIG_PATH to the directory holding "
                f"{package}.pc of the GlusterFS you want,\n"
                f"  e.g. PKG_CONFIG_PATH=/opt/glusterfs/lib/pkgconfig make\n"
                f"  (pkg-config said: {said[-1] if said else 'nothing'})")
        return proc.stdout.strip()

    info = {
        "cflags": ask("--cflags"),
        "libs": ask("--libs"),
        "libdir": ask("--variable=libdir"),
    }
    libdir = Path(info["libdir"])
    for name in ("libgfapi.so.0", "libgfapi.so"):
        if (libdir / name).exists():
            info["libgfapi"] = str(libdir / name)
            break
    else:
        raise BuildError(f"{package}.pc says libdir={libdir}, but there is no libgfapi.so.0 in it "
                         f"(PKG_CONFIG_PATH={env.get('PKG_CONFIG_PATH', '')!r})")
    return info



# -- profile --------------------------------------------------------------------

def resolve_profile(name: str) -> Path:
    """``glusterfs`` -> profiles/glusterfs.ini; anything with a slash or ending
    in .ini is a path (relative to the current directory)."""
    if "/" in name or name.endswith(".ini"):
        path = Path(name)
    else:
        path = REPO / "profiles" / f"{name}.ini"
    if not path.is_file():
        raise BuildError(f"uWSGI build profile not found: {path} (UWSGI_PROFILE={name!r})")
    return path.resolve()


def read_profile(path: Path) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    with open(path) as f:
        cp.read_file(f)
    if not cp.has_section("uwsgi"):
        raise BuildError(f"{path}: a uWSGI build profile needs a [uwsgi] section")
    return cp


def plugin_sources(profile_path: Path) -> list:
    """Absolute paths of the profile's ``[uwsgi-gluster] plugin_sources``."""
    cp = read_profile(profile_path)
    out = []
    for rel in _csv(cp.get("uwsgi-gluster", "plugin_sources", fallback="")):
        src = (profile_path.parent / rel).resolve()
        if not src.is_file() or src.suffix != ".c":
            raise BuildError(f"{profile_path}: plugin source {src} is not a .c file")
        out.append(src)
    return out


def _csv(value: str) -> list:
    return [v.strip() for v in value.split(",") if v.strip()]


def render(profile_path: Path, info: dict, venv: Path) -> tuple[str, str, dict]:
    """Return (profile text for uwsgiconfig.py, embedded config text, checks)."""
    cp = read_profile(profile_path)
    u = cp["uwsgi"]
    checks = {k: _csv(cp.get("uwsgi-gluster", k, fallback=""))
              for k in ("require_cflags", "forbid_cflags", "require_options", "forbid_plugins")}
    # One-file plugins shipped with the profile: copied into the build tree (so
    # no object file lands in the clone) and appended to embedded_plugins.
    extra = [f"{Path(src).stem}={PLUGIN_DIR}/{Path(src).name}" for src in plugin_sources(profile_path)]
    if extra:
        u["embedded_plugins"] = "+, " + ", ".join(extra) if not u.get("embedded_plugins") \
            else u["embedded_plugins"] + ", " + ", ".join(extra)
    for key in ("main_plugin", "embedded_plugins", "plugins"):
        named = [p.split("=")[0].strip().lstrip("+") for p in _csv(u.get(key, ""))]
        bad = sorted(set(named) & set(checks["forbid_plugins"]))
        if bad:
            raise BuildError(f"{profile_path}: {key} names {', '.join(bad)}, which this profile forbids")

    embed = ""
    if u.get("embed_config"):
        template = (profile_path.parent / u["embed_config"]).resolve()
        if not template.is_file():
            raise BuildError(f"{profile_path}: embed_config {template} not found")
        embed = build_time_lines(info, venv) + template.read_text()
        u["embed_config"] = EMBED_NAME
    lines = ["; rendered by scripts/uwsgi_build.py from %s" % profile_path, "[uwsgi]"]
    for key, value in u.items():
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n", embed, checks


def build_time_lines(info: dict, venv: Path) -> str:
    """The embedded config's lines that depend on this machine and clone."""
    py = venv_python(venv)
    probe = subprocess.run(
        [str(py), "-c",
         "import json, sysconfig, importlib.util as u, os\n"
         "spec = u.find_spec('uwsgi_gluster')\n"
         "pkg = os.path.dirname(os.path.dirname(spec.origin)) if spec and spec.origin else ''\n"
         "print(json.dumps({'purelib': sysconfig.get_path('purelib'), 'pkg': pkg}))"],
        capture_output=True, text=True, check=True)
    paths = json.loads(probe.stdout)
    out = ["[uwsgi]",
           "; --- written at build time by scripts/uwsgi_build.py ---",
           f"home = {venv}",
           f"pythonpath = {paths['purelib']}"]
    if paths["pkg"]:
        out.append(f"pythonpath = {paths['pkg']}")
    out.append(f"env = UWSGI_GLUSTER_LIBGFAPI={info['libgfapi']}")
    out.append("; --- from the profile's embed_config template ---")
    return "\n".join(out) + "\n"


def python_libdir(python: Path) -> str:
    """Where the interpreter's shared libpython lives ('' for a static one)."""
    return _output([str(python), "-c", "import sysconfig as s; "
                    "print(s.get_config_var('LIBDIR') if s.get_config_var('Py_ENABLE_SHARED') else '')"])


def is_default_libdir(path: str) -> bool:
    """True for directories the dynamic linker searches anyway (no rpath needed)."""
    real = os.path.realpath(path)
    defaults = {"/lib", "/usr/lib", "/lib64", "/usr/lib64"}
    triplet = _output(["gcc", "-dumpmachine"])
    if triplet:
        defaults |= {f"/lib/{triplet}", f"/usr/lib/{triplet}"}
    return real in {os.path.realpath(d) for d in defaults}


def venv_python(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        raise BuildError(f"no Python environment at {venv} (run `make venv` first)")
    return py


# -- cache key ------------------------------------------------------------------

def _output(cmd) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def cache_key(profile_path: Path, info: dict, venv: Path) -> str:
    cp = read_profile(profile_path)
    h = hashlib.sha256()

    def add(label, data):
        h.update(label.encode() + b"\0" + (data if isinstance(data, bytes) else str(data).encode()) + b"\0")

    add("uwsgi", UWSGI_VERSION)
    add("profile", profile_path.read_bytes())
    if cp["uwsgi"].get("inherit"):
        add("inherit", cp["uwsgi"]["inherit"])  # resolved inside the pinned source: covered by the version
    add("builder", Path(__file__).read_bytes())
    for src in plugin_sources(profile_path):
        add("plugin", src.name.encode() + b"\0" + src.read_bytes())
    if cp["uwsgi"].get("embed_config"):  # what render() embeds: its template, then machine lines (below)
        add("embed", (profile_path.parent / cp["uwsgi"]["embed_config"]).resolve().read_bytes())
    add("python", _output([str(venv_python(venv)), "-c",
                           "import sys, sysconfig; print(sys.version, sys.abiflags, "
                           "sysconfig.get_path('include'), sysconfig.get_config_var('LIBDIR'), "
                           "sysconfig.get_config_var('LDLIBRARY'), sysconfig.get_config_var('Py_ENABLE_SHARED'))"]))
    add("pkg-config", json.dumps({k: info[k] for k in ("cflags", "libs", "libdir", "libgfapi")}, sort_keys=True))
    add("gcc", _output(["gcc", "-dumpfullversion", "-dumpmachine"]))
    for var in ("CC", "CFLAGS", "LDFLAGS", "CPPFLAGS"):
        add(var, os.environ.get(var, ""))
    return h.hexdigest()[:20]


# -- build ------------------------------------------------------------------------

def fetch_sdist(cache: Path, python: Path) -> Path:
    sdist_dir = cache / "sdist"
    sdist = sdist_dir / f"uwsgi-{UWSGI_VERSION}.tar.gz"
    if not sdist.exists():
        sdist_dir.mkdir(parents=True, exist_ok=True)
        log(f"downloading uwsgi=={UWSGI_VERSION} source from PyPI")
        subprocess.run([str(python), "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"uwsgi=={UWSGI_VERSION}", "-d", str(sdist_dir)], check=True)
    if not sdist.exists():
        raise BuildError(f"pip download did not produce {sdist}")
    return sdist


def unpack(sdist: Path, dest: Path) -> Path:
    src = dest / f"uwsgi-{UWSGI_VERSION}"
    if (src / "uwsgiconfig.py").exists():
        return src
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".unpack-"))
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(tmp)
    (tmp / src.name).rename(src)
    shutil.rmtree(tmp)
    return src


def write_if_changed(path: Path, text: str) -> None:
    # uwsgiconfig.py recompiles everything when a file in buildconf/ or the
    # cflags change; our files live outside buildconf/, rewritten only if needed.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def check_cflags_has_cap_header() -> None:
    probe = subprocess.run(["gcc", "-E", "-x", "c", "-", "-o", os.devnull],
                           input="#include <sys/capability.h>\n", capture_output=True, text=True)
    if probe.returncode != 0:
        raise BuildError("sys/capability.h not found: uWSGI would silently build without --cap. "
                         "Install libcap-dev (scripts/gluster-env install does it)")


def build(profile_name: str, output: Path, venv: Path, cache: Path, jobs: int | None = None) -> Path:
    profile_path = resolve_profile(profile_name)
    info = pkg_config()
    log(f"glusterfs-api from pkg-config: libdir={info['libdir']}")
    python = venv_python(venv)
    key = cache_key(profile_path, info, venv)
    workdir = cache / key
    workdir.mkdir(parents=True, exist_ok=True)
    profile_text, embed_text, checks = render(profile_path, info, venv)
    if "UWSGI_CAP" in checks["require_cflags"]:
        check_cflags_has_cap_header()

    with open(workdir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        src = unpack(fetch_sdist(cache, python), workdir)
        write_if_changed(src / PROFILE_NAME, profile_text)
        if embed_text:
            write_if_changed(src / EMBED_NAME, embed_text)
        for plugin in plugin_sources(profile_path):
            (src / PLUGIN_DIR).mkdir(exist_ok=True)
            write_if_changed(src / PLUGIN_DIR / plugin.name, plugin.read_text())
        env = dict(os.environ)
        env.pop("UWSGI_PROFILE", None)  # ours names profiles/, uwsgiconfig.py's names buildconf/
        env["UWSGI_BIN_NAME"] = "uwsgi"
        # libgfapi linked in (not only via ctypes) with an rpath (DT_RPATH, so it also
        # covers libgfapi's own dependencies) to pkg-config's libdir: the GlusterFS that
        # pkg-config pointed at is the one every process maps.
        # The interpreter's own libdir goes first: otherwise a libgfapi libdir such as
        # /usr/lib/<triplet> would make the system libpython win over the venv's.
        rpaths = [d for d in (python_libdir(python), info["libdir"]) if d and not is_default_libdir(d)]
        ldflags = [f"-Wl,-rpath,{d}" for d in rpaths] + [
            "-Wl,--disable-new-dtags", f"-L{info['libdir']}", "-Wl,--no-as-needed", "-lgfapi"]
        env["LDFLAGS"] = " ".join(shlex.split(env.get("LDFLAGS", "")) + ldflags)
        if jobs:
            env["CPUCOUNT"] = str(jobs)
        state = "cached objects" if (src / "core" / "uwsgi.o").exists() else "cold"
        log(f"building uWSGI {UWSGI_VERSION} ({state}) in {src}")
        logfile = workdir / "build.log"
        with open(logfile, "w") as out:
            proc = subprocess.run([str(python), "uwsgiconfig.py", "--build", "./" + PROFILE_NAME],
                                  cwd=src, env=env, stdout=out, stderr=subprocess.STDOUT)
        if proc.returncode != 0 or not (src / "uwsgi").exists():
            tail = logfile.read_text().splitlines()[-30:]
            raise BuildError("uWSGI build failed; last lines of %s:\n%s" % (logfile, "\n".join(tail)))
        verify(src / "uwsgi", checks)
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
        shutil.copy2(src / "uwsgi", tmp)
        os.replace(tmp, output)
        (workdir / "last-used").touch()
    prune(cache, keep=workdir)
    log(f"built {output} (cache {workdir})")
    return output


def prune(cache: Path, keep: Path, max_age_days: float = 30) -> None:
    """Remove other build trees in the cache unused for ``max_age_days``."""
    import time
    limit = time.time() - max_age_days * 86400
    for d in cache.iterdir():
        if d == keep or not (d / "lock").exists() or len(d.name) != 20:
            continue
        stamp = d / "last-used"
        if (stamp.stat().st_mtime if stamp.exists() else d.stat().st_mtime) > limit:
            continue
        with open(d / "lock") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            log(f"pruning unused build tree {d}")
            shutil.rmtree(d, ignore_errors=True)


def verify(binary: Path, checks: dict) -> None:
    cflags = subprocess.run([str(binary), "--cflags"], capture_output=True, text=True).stdout
    flags = {f[2:].split("=")[0] for f in cflags.split() if f.startswith("-D")}
    missing = [c for c in checks["require_cflags"] if c not in flags]
    if missing:
        raise BuildError(f"{binary} was built without {', '.join(missing)} (see its --cflags); "
                         f"for UWSGI_CAP install libcap-dev, for UWSGI_PCRE2/UWSGI_ROUTING libpcre2-dev")
    present = [c for c in checks["forbid_cflags"] if c in cflags.upper()]
    if present:
        raise BuildError(f"{binary} was built with {', '.join(present)}, which the profile forbids")
    helptext = subprocess.run([str(binary), "--help"], capture_output=True, text=True).stdout
    absent = [o for o in checks["require_options"] if f"--{o} " not in helptext and f"--{o}\n" not in helptext]
    if absent:
        raise BuildError(f"{binary} --help lacks {', '.join('--' + o for o in absent)}")


def pyuwsgi_build_info(python: Path) -> tuple[str, str, list]:
    """(pyuwsgi's file, its version, its CFLAGS split as argv items)."""
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, json, pyuwsgi\n"
         "print(json.dumps([pyuwsgi.__file__, m.version('pyuwsgi')]))"],
        capture_output=True, text=True)
    if probe.returncode != 0:
        raise BuildError(f"pyuwsgi is not importable by {python}: {probe.stderr.strip()[-300:]}")
    pyuwsgi_file, version = json.loads(probe.stdout)
    cflags = subprocess.run([str(python), "-c", "import pyuwsgi; pyuwsgi.run(['--cflags'])"],
                            capture_output=True, text=True).stdout.strip()
    flags = shlex.split(cflags)
    built = [f.split("=", 1)[1].strip('"') for f in flags if f.startswith("-DUWSGI_VERSION=")]
    if not flags or built != [version]:
        raise BuildError(f"pyuwsgi {version} reports CFLAGS for uWSGI {built or 'unknown'}: {cflags[:200]!r}")
    return pyuwsgi_file, version, flags


def build_pyplugin(venv: Path, cache: Path, source: Path = REPO / "profiles" / "plugins" / "glusterfs.c") -> Path:
    """Build ``<venv>/lib/uwsgi-gluster/glusterfs_plugin.so`` for the venv's pyuwsgi."""
    python = venv_python(venv)
    pyuwsgi_file, version, cflags = pyuwsgi_build_info(python)
    if version != UWSGI_VERSION:
        raise BuildError(f"pyuwsgi {version} in {venv} is not the pinned uWSGI {UWSGI_VERSION}: "
                         f"the plugin must be compiled against the headers of pyuwsgi's own version")
    workdir = cache / f"pyplugin-{UWSGI_VERSION}"
    workdir.mkdir(parents=True, exist_ok=True)
    out_dir = venv / "lib" / "uwsgi-gluster"
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / "glusterfs_plugin.so"
    with open(workdir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        src = unpack(fetch_sdist(cache, python), workdir)
        tmp = output.with_name(f".{output.name}.tmp{os.getpid()}")
        # -I. in pyuwsgi's CFLAGS is the uWSGI source tree: compile from there
        cmd = ["gcc", *cflags, "-DUWSGI_GLUSTER_PYUWSGI", "-shared", "-o", str(tmp), str(source)]
        proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
        if proc.returncode != 0 or not tmp.exists():
            raise BuildError(f"compiling {source} for pyuwsgi failed:\n{proc.stderr[-3000:]}")
    if proc.stderr.strip():
        log(proc.stderr.strip())
    # the stamp first, the plugin last: a plugin without its stamp is never loaded
    stamp_file = output.with_suffix(".json")
    load_check = subprocess.run(
        [str(python), "-c",
         "import json, sys, pyuwsgi\n"
         "from pathlib import Path\n"
         "from uwsgi_gluster import cplugin\n"
         "stamp = cplugin.stamp(pyuwsgi.__file__, sys.argv[2])\n"
         "Path(sys.argv[3]).write_text(json.dumps(stamp, sort_keys=True) + '\\n')\n"
         "got = cplugin.load(pyuwsgi.__file__, sys.argv[2], Path(sys.argv[1]))\n"
         "print(getattr(got, 'reason', ''))\n"
         "sys.exit(0 if isinstance(got, cplugin.Loaded) else 1)",
         str(tmp), version, str(tmp.with_suffix(".json"))],
        capture_output=True, text=True)
    if load_check.returncode != 0:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".json").unlink(missing_ok=True)
        raise BuildError(f"the plugin built for pyuwsgi does not load: {load_check.stdout.strip()} "
                         f"{load_check.stderr.strip()[-1000:]}")
    os.replace(tmp.with_suffix(".json"), stamp_file)
    os.replace(tmp, output)
    log(f"built {output} for pyuwsgi {version} ({pyuwsgi_file})")
    return output


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", nargs="?", default="build", choices=("build", "pkg-config", "key", "pyplugin"))
    ap.add_argument("--profile", default=os.environ.get("UWSGI_PROFILE") or "glusterfs")
    ap.add_argument("--output", default=str(REPO / "uwsgi"))
    ap.add_argument("--venv", default=str(REPO / ".venv"))
    ap.add_argument("--cache", default=os.environ.get("UWSGI_GLUSTER_CACHE") or DEFAULT_CACHE)
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        if args.command == "pkg-config":
            print(json.dumps(pkg_config(), indent=2))
        elif args.command == "pyplugin":
            build_pyplugin(Path(args.venv).absolute(), Path(args.cache))
        elif args.command == "key":
            venv = Path(args.venv).absolute()
            print(cache_key(resolve_profile(args.profile), pkg_config(), venv))
        else:
            build(args.profile, Path(args.output).absolute(), Path(args.venv).absolute(),
                  Path(args.cache), args.jobs)
    except BuildError as e:
        print(f"uwsgi_build: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
