"""./uwsgi serves a documentation ini (the native plugin's keys) unchanged."""

from __future__ import annotations

import hashlib
import subprocess
import urllib.request

import pytest

from buildsupport import REPO, free_port, log_text, wait_port

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
    from uwsgi_gluster.seeding import connect, write_file
    write_file(connect(VOLUME), PATH, expected_bytes())  # no glfs_fini: it takes ~10 s


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


@pytest.mark.parametrize("name,expect", [
    ("single-server.ini", {"/whoami.txt": b"unbit001"}),
    ("server-list.ini", {"/whoami.txt": b"unbit001"}),  # its first server is dead
    ("three-mountpoints.ini", {"/whoami.txt": b"unbit001"}),
    ("routing.ini", {"/whoami.txt": b"unbit001", "/foo/whoami.txt": b"unbit002", "/bar/whoami.txt": b"unbit003"}),
])
def test_serves_the_inis_of_ini_dir_unchanged(uwsgi_bin, server, tmp_path, volumes, name, expect):
    """The documentation's inis as shipped in ini/, only the port changed."""
    port = free_port()
    text = (REPO / "ini" / name).read_text()
    assert "http-socket = :9090" in text
    proc = server([uwsgi_bin], text.replace("http-socket = :9090", f"http-socket = 127.0.0.1:{port}"))
    wait_port(port, proc)
    for path, body in expect.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as resp:
            assert (resp.status, resp.read()) == (200, body)
    if name == "server-list.ini":
        log = log_text(tmp_path)
        assert "worker 1 cannot connect to 127.0.0.1:24017" in log
        assert "worker 1 connected to 127.0.0.1:24007" in log


def test_stats_server_names_the_root_mount_slash_not_empty(uwsgi_bin, server, seeded):
    """The embedded config loaded the plugin with `module =`, and uWSGI's Python
    loader then named the first app (the / mount) '' in the stats server."""
    import json

    port, stats_port = free_port(), free_port()
    ini = ("[uwsgi]\n"
           f"http-socket = 127.0.0.1:{port}\nhttp-socket-modifier1 = 27\nmaster = true\n"
           f"stats = 127.0.0.1:{stats_port}\nstats-http = true\nmanage-script-name = true\n"
           f"glusterfs-mount = mountpoint=/,volume={VOLUME},server=127.0.0.1:0\n"
           f"glusterfs-mount = mountpoint=/again,volume={VOLUME},server=127.0.0.1:0\n")
    proc = server([uwsgi_bin], ini)
    wait_port(port, proc)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/again{PATH}", timeout=30) as resp:
        assert resp.read() == expected_bytes()
    with urllib.request.urlopen(f"http://127.0.0.1:{stats_port}/", timeout=30) as resp:
        apps = [app["mountpoint"] for worker in json.load(resp)["workers"] for app in worker["apps"]]
    assert apps == ["/", "/again"]


def test_metrics_path_answers_in_built_uwsgi(uwsgi_bin, server, seeded):
    """./uwsgi answered `glusterfs-metrics` with 503: the metrics were declared only
    by the launcher's asap hook, which ./uwsgi does not run."""
    port = free_port()
    ini = ("[uwsgi]\n"
           f"http-socket = 127.0.0.1:{port}\nhttp-socket-modifier1 = 27\nmaster = true\nprocesses = 2\n"
           f"glusterfs-mount = mountpoint=/,volume={VOLUME},server=127.0.0.1:0\n"
           "glusterfs-metrics = /_metrics\n")
    proc = server([uwsgi_bin], ini)
    wait_port(port, proc)
    for _ in range(3):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{PATH}", timeout=30) as resp:
            assert resp.read() == expected_bytes()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_metrics", timeout=30) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    served = [line for line in text.splitlines() if line.startswith("uwsgi_gluster_requests_total{")
              and 'class="2xx"' in line]
    assert served and int(served[0].rsplit(" ", 1)[1]) >= 3, text
