"""Issue 3: `make` builds a real ./uwsgi from profiles/glusterfs.ini."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildsupport import BUILDER, REPO, build, free_port, log_text, wait_port, wait_worker

sys.path.insert(0, str(REPO / "scripts"))
import uwsgi_build  # noqa: E402


def test_binary_builds(uwsgi_bin):
    assert os.access(uwsgi_bin, os.X_OK)
    out = subprocess.run([str(uwsgi_bin), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == uwsgi_build.UWSGI_VERSION


def test_no_uwsgi_source_in_the_clone(uwsgi_bin):
    assert not (REPO / "uwsgiconfig.py").exists()
    assert not list(REPO.glob("uwsgi-[0-9]*"))  # an unpacked sdist (not make deb's uwsgi-gluster_*.deb)


def test_cflags_without_matheval_with_caps(uwsgi_bin):
    cflags = subprocess.run([str(uwsgi_bin), "--cflags"], capture_output=True, text=True, check=True).stdout
    assert "MATHEVAL" not in cflags.upper()
    for flag in ("-DUWSGI_CAP", "-DUWSGI_ROUTING", "-DUWSGI_EMBED_CONFIG="):
        assert flag in cflags


def test_help_lists_cap(uwsgi_bin):
    helptext = subprocess.run([str(uwsgi_bin), "--help"], capture_output=True, text=True).stdout
    assert "    --cap " in helptext
    assert "--glusterfs-mount" in helptext


def test_python_plugin_is_the_venv_interpreter(uwsgi_bin):
    ldd = subprocess.run(["ldd", str(uwsgi_bin)], capture_output=True, text=True, check=True).stdout
    libpython = [line for line in ldd.splitlines() if "libpython" in line]
    import sysconfig
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        assert libpython and sysconfig.get_config_var("LIBDIR") in libpython[0], ldd


def test_cached_rebuild_only_relinks(uwsgi_bin, tmp_path):
    proc = build(tmp_path / "uwsgi")
    assert proc.returncode == 0, proc.stderr
    assert "(cached objects)" in proc.stderr
    assert subprocess.run([str(tmp_path / "uwsgi"), "--version"], capture_output=True).returncode == 0


# -- pkg-config -----------------------------------------------------------------

def _no_system_pc(env: dict) -> dict:
    env = dict(env)
    env["PKG_CONFIG_LIBDIR"] = "/nonexistent"  # hide the system's .pc files
    return env


def test_pkg_config_not_found_names_pkg_config_path(tmp_path):
    env = _no_system_pc(os.environ)
    env["PKG_CONFIG_PATH"] = str(tmp_path / "nowhere")
    proc = subprocess.run([sys.executable, str(BUILDER), "pkg-config"], env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "PKG_CONFIG_PATH" in proc.stderr and "glusterfs-api" in proc.stderr
    assert str(tmp_path / "nowhere") in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(uwsgi_build.BuildError, match="PKG_CONFIG_PATH"):
        uwsgi_build.pkg_config(env=env)
    # make stops on it too, before building anything
    proc = subprocess.run([sys.executable, str(BUILDER), "build", "--output", str(tmp_path / "uwsgi")],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "PKG_CONFIG_PATH" in proc.stderr
    assert not (tmp_path / "uwsgi").exists()


def system_libgfapi() -> Path:
    info = uwsgi_build.pkg_config()
    return Path(info["libgfapi"]).resolve()


# A fixed place, so the build's cache key (which hashes pkg-config's answer) is
# the same on every run and CI reuses the cached build.
PREFIX = Path(os.environ.get("UWSGI_GLUSTER_CACHE", uwsgi_build.DEFAULT_CACHE)) / "test-prefix"


def make_prefix() -> Path:
    """PREFIX/lib holding a copy of the system libgfapi and a glusterfs-api.pc for it."""
    lib = PREFIX / "lib"
    (lib / "pkgconfig").mkdir(parents=True, exist_ok=True)
    src = system_libgfapi()
    dst = lib / "libgfapi.so.0"
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        tmp = lib / ".libgfapi.tmp"
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    link = lib / "libgfapi.so"
    if not link.is_symlink():
        link.symlink_to("libgfapi.so.0")
    pc = (f"prefix={PREFIX}\nlibdir=${{prefix}}/lib\nincludedir=/usr/include\n\n"
          "Name: glusterfs-api\nDescription: test copy of the system libgfapi\nVersion: 7.10.0\n"
          "Libs: -L${libdir} -lgfapi\nCflags: -D_FILE_OFFSET_BITS=64 -I${includedir}\n")
    pcfile = lib / "pkgconfig" / "glusterfs-api.pc"
    if not pcfile.exists() or pcfile.read_text() != pc:
        pcfile.write_text(pc)
    return PREFIX


def test_pkg_config_honours_pkg_config_path():
    prefix = make_prefix()
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    info = uwsgi_build.pkg_config(env=env)
    assert info["libdir"] == str(prefix / "lib")
    assert info["libgfapi"] == str(prefix / "lib" / "libgfapi.so.0")


def test_libgfapi_from_pkg_config_prefix_is_mapped(uwsgi_bin, tmp_path, server):
    """A GlusterFS under another prefix wins over the system one in the workers."""
    prefix = make_prefix()
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    binary = tmp_path / "uwsgi-prefix"
    proc = build(binary, env=env)
    assert proc.returncode == 0, proc.stderr
    ours = str(prefix / "lib" / "libgfapi.so.0")
    port = free_port()
    master = server([binary], f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmaster = true\nprocesses = 1\n")
    wait_port(port, master)
    worker = wait_worker(tmp_path, master)
    maps = Path(f"/proc/{worker}/maps").read_text()
    mapped = {line.split()[-1] for line in maps.splitlines()
              if os.path.basename(line.split()[-1]).startswith("libgfapi.so")}
    assert mapped == {ours}, (mapped, log_text(tmp_path))
    # and the embedded config tells uwsgi_gluster.gfapi which file to load
    assert f"\nenv = UWSGI_GLUSTER_LIBGFAPI={ours}\n".encode() in binary.read_bytes()
