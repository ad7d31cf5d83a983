"""Fixtures for the tests that run Debian's own uwsgi (/usr/bin/uwsgi, uwsgi-core)
with our glusterfs plugin: the plugin built by that uwsgi, the Python path its
python3 plugin needs, the .deb."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distrosupport import REPO, binding_dir

DEBIAN_UWSGI = "/usr/bin/uwsgi"


def _require_debian_uwsgi() -> None:
    for path, package in ((DEBIAN_UWSGI, "uwsgi-core"), ("/usr/lib/uwsgi/plugins/python3_plugin.so",
                                                          "uwsgi-plugin-python3"),
                          ("/usr/src/uwsgi/uwsgiconfig.py", "uwsgi-src")):
        if not Path(path).exists():
            pytest.fail(f"{path} is missing: install {package} (scripts/gluster-env install)")


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory) -> Path:
    """A directory holding only our glusterfs_plugin.so, built by Debian's uwsgi."""
    _require_debian_uwsgi()
    workdir = tmp_path_factory.mktemp("plugin")
    proc = subprocess.run([DEBIAN_UWSGI, "--build-plugin", str(REPO / "packaging" / "plugin")], cwd=workdir,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = workdir / "out"
    out.mkdir()
    shutil.copy2(workdir / "glusterfs_plugin.so", out)
    out.chmod(0o755)
    return out


@pytest.fixture(scope="session")
def pythonpath(tmp_path_factory) -> list:
    """What Debian's python3 plugin needs on sys.path to import uwsgi_gluster from
    this clone: the clone, and a directory with just the gfapi binding (the
    .venv's, not its whole site-packages)."""
    binding = tmp_path_factory.mktemp("binding")
    (binding / "gluster").symlink_to(binding_dir() / "gluster", target_is_directory=True)
    return [REPO, binding]


@pytest.fixture(scope="session")
def deb(tmp_path_factory) -> Path:
    """uwsgi-gluster_<version>_<arch>.deb built by scripts/build_deb.py (offline:
    the binding comes from the .venv, where pip installed the pinned gfapi)."""
    _require_debian_uwsgi()
    out = tmp_path_factory.mktemp("deb")
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "build_deb.py"), "--out", str(out),
                           "--workdir", str(out / "work"), "--binding", str(binding_dir())],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Path(proc.stdout.strip())
