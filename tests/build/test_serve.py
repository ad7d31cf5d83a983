"""./uwsgi serves a documentation ini (the native plugin's keys) unchanged."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.request

import pytest

from buildsupport import REPO, free_port, log_text, wait_port

PLUGIN = REPO / "uwsgi_gluster" / "plugin.py"
VOLUME = "demo"
PATH = "/build-test/hello.bin"


def expected_bytes() -> bytes:
    # deterministic, binary, a few blocks long
    out, seed = bytearray(), b"uwsgi-gluster build test"
    while len(out) < 200_000:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:200_000])


def seed_volume() -> None:
    """Make sure the local glusterd serves volume demo holding PATH."""
    subprocess.run([str(REPO / "scripts" / "gluster-env"), "volume", VOLUME], check=True)
    from uwsgi_gluster import gfapi
    fs = gfapi.new(VOLUME)
    gfapi.set_volfile_server(fs, "tcp", "127.0.0.1", 24007)
    gfapi.init(fs)
    try:
        try:
            gfapi.mkdir(fs, os.path.dirname(PATH))
        except gfapi.GlusterError as exc:
            if exc.errno != 17:  # EEXIST
                raise
        fd = gfapi.create_file(fs, PATH)
        try:
            gfapi.pwrite_all(fd, expected_bytes())
        finally:
            gfapi.close(fd)
    finally:
        gfapi.fini(fs)


@pytest.fixture(scope="module")
def seeded():
    seed_volume()


# Lines a user's ini may already have: Debian's `plugins = glusterfs` (with or
# without Debian's plugin-dir, whose native 2.0.21 .so must not get loaded),
# and a `module` of its own (the embedded `import` keeps the mounts served).
EXTRA = {
    "plain": "",
    "plugins-glusterfs": "plugins = glusterfs\n",
    "debian-plugin-dir": "plugin-dir = /usr/lib/uwsgi/plugins\nplugins = glusterfs\n",
    "own-module": "module = json\n",
}


@pytest.mark.skipif(not PLUGIN.exists(), reason="plugin not merged yet")
@pytest.mark.parametrize("extra", list(EXTRA.values()), ids=list(EXTRA))
def test_serves_documentation_ini(uwsgi_bin, server, tmp_path, seeded, extra):
    port = free_port()
    ini = ("[uwsgi]\n"
           f"http-socket = 127.0.0.1:{port}\n"
           "http-socket-modifier1 = 27\n"
           f"glusterfs-mount = mountpoint=/,volume={VOLUME},server=127.0.0.1:0\n"
           "threads = 30\n" + extra)
    proc = server([uwsgi_bin], ini)
    wait_port(port, proc)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{PATH}", timeout=30) as resp:
        assert resp.status == 200
        body = resp.read()
    assert body == expected_bytes(), log_text(tmp_path)[-3000:]
