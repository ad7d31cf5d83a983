"""Helpers for the distro tests (a module of its own: several test directories
have a conftest.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
THROWAWAY_ROOT = REPO / "scripts" / "throwaway-root"
#: the Debian packages scripts/gluster-env downloads for these tests
DEB_CACHE = Path(os.environ.get("UWSGI_GLUSTER_CACHE", "/var/cache/uwsgi-gluster")) / "debs"


def binding_dir() -> Path:
    """The site-packages directory holding the gluster.gfapi binding of this .venv."""
    import gluster.gfapi
    return Path(gluster.gfapi.__file__).resolve().parents[2]


def cached_deb(package: str) -> Path:
    """The cached .deb of a Debian package, same version as the installed uwsgi-core."""
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "uwsgi-core"], capture_output=True,
                             text=True, check=True).stdout
    found = sorted(DEB_CACHE.glob(f"{package}_{version}_*.deb"))
    if not found:
        raise AssertionError(f"no {package} {version} .deb in {DEB_CACHE}: run scripts/gluster-env install")
    return found[0]


def in_throwaway_root(share: Path, script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a bash script (``$1``... are ``args``) as root in a throw-away copy of /
    (scripts/throwaway-root), with ``share`` at /share; no file it writes
    outside /share outlives it (processes it leaves running would)."""
    return subprocess.run([str(THROWAWAY_ROOT), str(share), "bash", "-euxo", "pipefail", "-c", script,
                           "throwaway-root", *args], capture_output=True, text=True, timeout=timeout)


def ini_lines(*lines: str) -> str:
    return "\n".join(["[uwsgi]", *lines, ""])
