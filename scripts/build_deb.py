#!/usr/bin/env python3
"""Build ``uwsgi-gluster_<version>_<arch>.deb`` for the distribution's uwsgi.

The package replaces Debian's ``uwsgi-plugin-glusterfs``: it puts our
``glusterfs_plugin.so`` (built by the installed uwsgi with ``--build-plugin``
from ``packaging/plugin``, so it matches that uwsgi's ABI) in Debian's plugin
directory, and the ``uwsgi_gluster`` package plus the ``gfapi`` binding
(PyPI ``gfapi``, the version pinned in setup.cfg) in the system Python's
``dist-packages``. Nothing else is downloaded: the binding comes through pip,
uwsgi-src and the compiler are Debian packages (``scripts/gluster-env
install``).

Usage: ``scripts/build_deb.py [--uwsgi /usr/bin/uwsgi] [--pip PIP] [--out DIR] [--binding DIR]
[--workdir DIR]``
(``make deb``). Prints the path of the .deb it wrote.
"""

from __future__ import annotations

import argparse
import configparser
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "uwsgi-gluster"
REPLACED = "uwsgi-plugin-glusterfs"
PLUGIN_DIR = "usr/lib/uwsgi/plugins"  # where Debian's uwsgi-plugin-* put their plugins
DIST_PACKAGES = "usr/lib/python3/dist-packages"
DOC_DIR = f"usr/share/doc/{PACKAGE}"
MAN_PAGE = "usr/share/man/man1/uwsgi_glusterfs.1.gz"
MAINTAINER = "uwsgi-gluster maintainers <maintainers@users.noreply.r-seed-bc9c9d73.example>"


class BuildError(Exception):
    pass


def run(cmd: List[str], **kw) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def project_metadata() -> Dict[str, str]:
    """The package version (``uwsgi_gluster.__version__``) and the gfapi pin (setup.cfg)."""
    init = (REPO / "uwsgi_gluster" / "__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if not version:
        raise BuildError("no __version__ in uwsgi_gluster/__init__.py")
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    requires = cfg.get("options", "install_requires").split()
    gfapi = next(r for r in requires if r.startswith("gfapi=="))
    return {"version": version.group(1), "gfapi": gfapi}


def uwsgi_abi(uwsgi: str) -> str:
    """Debian's uwsgi-core ``Provides: uwsgi-abi-<md5 of its uwsgi.h>``: a plugin
    built against that header depends on exactly this ABI."""
    header = subprocess.run([uwsgi, "--dot-h"], capture_output=True, check=True).stdout
    return "uwsgi-abi-" + hashlib.md5(header).hexdigest()


def build_plugin(uwsgi: str, workdir: Path) -> Path:
    """glusterfs_plugin.so from packaging/plugin, hardened and stripped like dh would."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    flags = {name: run(["dpkg-buildflags", "--get", name]).strip() for name in ("CPPFLAGS", "LDFLAGS")}
    env["CFLAGS"] = " ".join(filter(None, [flags["CPPFLAGS"], env.get("CFLAGS", "")]))
    # -z now (lintian's hardening-no-bindnow): uWSGI dlopen()s plugins with RTLD_NOW anyway
    env["LDFLAGS"] = " ".join(filter(None, [flags["LDFLAGS"], "-Wl,-z,now", env.get("LDFLAGS", "")]))
    run([uwsgi, "--build-plugin", str(REPO / "packaging" / "plugin")], cwd=workdir, env=env)
    plugin = workdir / "glusterfs_plugin.so"
    # dh_strip's flags; the `uwsgi` ELF section (requires=python3) is kept
    run(["strip", "--remove-section=.comment", "--remove-section=.note", "--strip-unneeded", str(plugin)])
    if "requires=python3" not in run(["readelf", "-p", "uwsgi", str(plugin)]):
        raise BuildError(f"{plugin} lost its uwsgi section (requires=python3)")
    return plugin


def shlib_depends(plugin: Path, workdir: Path) -> str:
    """libc6 (>= x) from dpkg-shlibdeps, which wants a debian/control to exist."""
    fake = workdir / "shlibdeps"
    (fake / "debian").mkdir(parents=True, exist_ok=True)
    (fake / "debian" / "control").write_text(f"Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n")
    out = run(["dpkg-shlibdeps", "-O", str(plugin)], cwd=fake)
    return out.strip().partition("=")[2]


def fetch_binding(pip: str, gfapi: str, workdir: Path) -> Path:
    """A directory holding ``gluster/gfapi`` of PyPI's ``gfapi`` (pinned version)."""
    target = workdir / "gfapi"
    shutil.rmtree(target, ignore_errors=True)
    run([pip, "install", "-q", "--no-deps", "--no-compile", "--target", str(target), gfapi])
    return target


def install_python(root: Path, binding: Path) -> None:
    site = root / DIST_PACKAGES
    shutil.copytree(REPO / "uwsgi_gluster", site / "uwsgi_gluster",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # the binding: only gluster/gfapi. gluster/__init__.py (a pkgutil namespace)
    # belongs to Debian's glusterfs-common; without it, gluster is an implicit
    # namespace package, so gluster.gfapi imports either way.
    if not (binding / "gluster" / "gfapi" / "api.py").is_file():
        raise BuildError(f"{binding} holds no gluster/gfapi binding")
    shutil.copytree(binding / "gluster" / "gfapi", site / "gluster" / "gfapi",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def gzip_n(source: bytes, dest: Path) -> None:
    """gzip -9n: no name or timestamp, so the .deb is reproducible."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(source)


def install_docs(root: Path, meta: Dict[str, str]) -> None:
    packaging = REPO / "packaging" / "debian"
    doc = root / DOC_DIR
    doc.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(packaging / "copyright", doc / "copyright")
    changelog = (packaging / "changelog").read_text()
    if not changelog.startswith(f"{PACKAGE} ({meta['version']})"):
        raise BuildError(f"packaging/debian/changelog does not start with version {meta['version']} "
                         "(uwsgi_gluster.__version__)")
    gzip_n(changelog.encode(), doc / "changelog.gz")
    gzip_n((REPO / "README.rst").read_bytes(), doc / "README.rst.gz")
    gzip_n((packaging / "uwsgi_glusterfs.1").read_bytes(), root / MAN_PAGE)


def install_command(root: Path) -> None:
    """``uwsgi_glusterfs``, as uwsgi-plugin-glusterfs has it: uwsgi-core under a
    name that makes it load the glusterfs plugin (postinst also offers it as an
    alternative for /usr/bin/uwsgi, at the native package's priority)."""
    command = root / "usr" / "bin" / "uwsgi_glusterfs"
    command.parent.mkdir(parents=True, exist_ok=True)
    command.symlink_to("uwsgi-core")


def control_fields(root: Path, meta: Dict[str, str], arch: str, abi: str, libc: str) -> str:
    size_kib = sum((p.stat().st_size + 1023) // 1024 for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    depends = ", ".join(filter(None, [libc, "uwsgi-core (>= 2.0.21)", abi, "uwsgi-plugin-python3",
                                      "libgfapi0", "python3 (>= 3.9)"]))
    return (f"Package: {PACKAGE}\n"
            f"Version: {meta['version']}\n"
            f"Architecture: {arch}\n"
            f"Maintainer: {MAINTAINER}\n"
            f"Installed-Size: {size_kib}\n"
            f"Depends: {depends}\n"
            f"Conflicts: {REPLACED}\n"
            f"Replaces: {REPLACED}\n"
            f"Provides: {REPLACED}\n"
            "Section: httpd\n"
            "Priority: optional\n"
            "Description: uWSGI glusterfs plugin, served from Python through libgfapi\n"
            " A drop-in replacement for uwsgi-plugin-glusterfs: `plugins = glusterfs`\n"
            " in an existing uWSGI ini loads this plugin, which hands modifier1 27\n"
            " requests to the uwsgi_gluster Python package (through the python3\n"
            " plugin). It serves the files of GlusterFS volumes over HTTP through\n"
            " libgfapi, configured by the same glusterfs-mount options, with\n"
            " validated caching, ranges, conditional requests and ETags.\n")


def write_debian_dir(root: Path, control: str) -> None:
    debian = root / "DEBIAN"
    debian.mkdir(parents=True, exist_ok=True)
    (debian / "control").write_text(control)
    for script in ("postinst", "prerm"):
        shutil.copyfile(REPO / "packaging" / "debian" / script, debian / script)
        (debian / script).chmod(0o755)
    sums = []
    for path in sorted(p for p in root.rglob("*")
                       if p.is_file() and not p.is_symlink() and "DEBIAN" not in p.relative_to(root).parts):
        sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(root)}\n")
    (debian / "md5sums").write_text("".join(sums))


def normalise_modes(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif path.parent.name != "DEBIAN" or path.name in ("control", "md5sums"):
            path.chmod(0o644)


def build(uwsgi: str, pip: str, out: Path, binding: Optional[Path] = None,
          workdir: Path = REPO / "build" / "deb") -> Path:
    meta = project_metadata()
    arch = run(["dpkg", "--print-architecture"]).strip()
    root = workdir / "root"
    shutil.rmtree(root, ignore_errors=True)
    plugin = build_plugin(uwsgi, workdir / "plugin")
    libc = shlib_depends(plugin, workdir)
    (root / PLUGIN_DIR).mkdir(parents=True)
    shutil.copyfile(plugin, root / PLUGIN_DIR / plugin.name)
    install_python(root, binding or fetch_binding(pip, meta["gfapi"], workdir))
    install_docs(root, meta)
    install_command(root)
    normalise_modes(root)
    write_debian_dir(root, control_fields(root, meta, arch, uwsgi_abi(uwsgi), libc))
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"{PACKAGE}_{meta['version']}_{arch}.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)])
    return deb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uwsgi", default="/usr/bin/uwsgi", help="the uwsgi to build the plugin for")
    parser.add_argument("--pip", default=str(REPO / ".venv" / "bin" / "pip"), help="pip that fetches gfapi")
    parser.add_argument("--out", type=Path, default=REPO, help="directory for the .deb")
    parser.add_argument("--binding", type=Path, help="take gluster/gfapi from this directory (a site-packages "
                        "where that gfapi is installed) instead of installing it with pip")
    parser.add_argument("--workdir", type=Path, default=REPO / "build" / "deb", help="build directory")
    args = parser.parse_args(argv)
    try:
        print(build(args.uwsgi, args.pip, args.out, args.binding, args.workdir))
    except BuildError as exc:
        print(f"build_deb: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
