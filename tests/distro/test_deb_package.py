"""The .deb, installed as a user would, in a throw-away copy of this machine's root.

Debian's service layout (package `uwsgi`: /etc/init.d/uwsgi, apps in
/etc/uwsgi/apps-enabled, default.ini with master, 2 workers, uid www-data)
first serves an app with the native plugin; then our package is installed and
the service restarted: the same app is served by us; then the native plugin is
installed again (apt removes ours, which conflicts with it) and the service
restarted: native again. Nothing of this
reaches the real root (scripts/throwaway-root).
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from corpus import CORPUS
from distrosupport import cached_deb, in_throwaway_root, ini_lines
from support import free_port

APP = "uwsgi-gluster-distro-test"  # unique: leftover processes are found by it
PHASES = ("native-before", "ours", "native-after")
PATHS = {"hello": "/hello.txt", "nested": "/a/b/c/deep.txt", "missing": "/missing.txt"}

SCRIPT = r"""
port=$1
fetch() {  # fetch PHASE: every path of PATHS, headers and body, into /share
    for i in $(seq 150); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
    for name_path in {paths}; do
        curl -s -D "/share/$1.${name_path%%=*}.headers" -o "/share/$1.${name_path%%=*}.body" \
            "http://127.0.0.1:$port${name_path#*=}"
    done
}
trap '/etc/init.d/uwsgi stop || true' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends /share/uwsgi_*.deb
cp /share/{app}.ini /etc/uwsgi/apps-enabled/{app}.ini
/etc/init.d/uwsgi start
fetch native-before

apt-get install -y -q /share/uwsgi-gluster_*.deb
dpkg-query -W -f='${{Package}} ${{Status}} ${{Version}}\n' uwsgi-gluster uwsgi-plugin-glusterfs \
    > /share/installed.txt 2>&1 || true
ls /usr/lib/python3/dist-packages/uwsgi_gluster/__pycache__ > /share/pycache.txt
/etc/init.d/uwsgi restart
fetch ours
cp /var/log/uwsgi/app/{app}.log /share/ours.log
# uwsgi_glusterfs (uwsgi-core under that name) loads our plugin without a plugins line
implicit_port=$2
uwsgi_glusterfs --ini /share/{app}-implicit.ini > /share/implicit.log 2>&1 &
implicit_pid=$!
for i in $(seq 150); do curl -s -o /dev/null "http://127.0.0.1:$implicit_port/" && break; sleep 0.2; done
curl -s -D /share/implicit.hello.headers -o /share/implicit.hello.body "http://127.0.0.1:$implicit_port/hello.txt"
kill -INT "$implicit_pid"; wait "$implicit_pid" || true
# without Debian's python3 plugin, ours refuses to start and says what is missing
python3_plugin=$(readlink -f /usr/lib/uwsgi/plugins/python3_plugin.so)
mv "$python3_plugin" /tmp/hidden_plugin.so
set +e
uwsgi --ini /share/{app}.ini --http-socket 127.0.0.1:0 > /share/no-python3.log 2>&1
echo $? > /share/no-python3.rc
set -e
mv /tmp/hidden_plugin.so "$python3_plugin"

# rolling back is one command: apt removes uwsgi-gluster, which conflicts with it
apt-get install -y -q /share/uwsgi-plugin-glusterfs_*.deb
test ! -e /usr/lib/python3/dist-packages/uwsgi_gluster && touch /share/python-package-removed
dpkg-query -W -f='${{Package}} ${{Status}}\n' uwsgi-gluster uwsgi-plugin-glusterfs > /share/rolled-back.txt 2>&1 || true
/etc/init.d/uwsgi restart
fetch native-after
"""


def _leftovers() -> list:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if APP.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def lifecycle(volumes, deb, tmp_path_factory):
    share = tmp_path_factory.mktemp("share")
    for package in (deb, cached_deb("uwsgi"), cached_deb("uwsgi-plugin-glusterfs")):
        shutil.copy2(package, share)
    port = free_port()
    (share / f"{APP}.ini").write_text(ini_lines(
        "plugins = glusterfs", f"http-socket = 127.0.0.1:{port}", "http-socket-modifier1 = 27",
        "glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0", "threads = 8"))
    implicit_port = free_port()
    (share / f"{APP}-implicit.ini").write_text(ini_lines(
        f"http-socket = 127.0.0.1:{implicit_port}", "http-socket-modifier1 = 27",
        "glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0", "threads = 4"))
    paths = " ".join(f"{name}={path}" for name, path in PATHS.items())
    script = SCRIPT.replace("{paths}", paths).replace("{app}", APP).replace("{{", "{").replace("}}", "}")
    try:
        proc = in_throwaway_root(share, script, str(port), str(implicit_port), timeout=600)
    finally:
        leftovers = _leftovers()
        for pid in leftovers:  # started by this test (their command line names APP)
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]
    assert not leftovers, f"uwsgi processes outlived the throw-away root: {leftovers}"
    return share


def _reply(share: Path, phase: str, name: str):
    head = (share / f"{phase}.{name}.headers").read_bytes().decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in head[1:] if line)}
    return status, headers, (share / f"{phase}.{name}.body").read_bytes()


def test_install_switches_existing_app_to_ours_and_removal_switches_back(lifecycle):
    share = lifecycle
    for phase in PHASES:
        status, headers, body = _reply(share, phase, "hello")
        assert (status, body) == (200, CORPUS["/hello.txt"]), phase
        assert headers["content-type"] == "text/plain", f"{phase}: {headers}"
        assert ("etag" in headers) == (phase == "ours"), f"{phase}: {headers}"
    assert _reply(share, "ours", "nested")[2] == CORPUS["/a/b/c/deep.txt"]
    assert _reply(share, "native-before", "nested")[2] == CORPUS["/a/b/c/deep.txt"]
    for phase in PHASES:
        assert _reply(share, phase, "missing")[0] == 404, phase


def test_uwsgi_glusterfs_command_loads_our_plugin(lifecycle):
    """`uwsgi_glusterfs --ini` (as uwsgi-plugin-glusterfs provided it) with an ini
    that has no `plugins` line: the plugin is loaded by the command's name."""
    status, headers, body = _reply(lifecycle, "implicit", "hello")
    assert (status, body) == (200, CORPUS["/hello.txt"])
    assert "etag" in headers
    assert "[uwsgi] implicit plugin requested glusterfs" in (lifecycle / "implicit.log").read_text()


def test_without_python3_plugin_start_up_stops_naming_the_package(lifecycle):
    share = lifecycle
    assert (share / "no-python3.rc").read_text().strip() == "1"
    log = (share / "no-python3.log").read_text()
    assert "[glusterfs] the python3 plugin (Debian package uwsgi-plugin-python3) could not be loaded" in log
    assert "Traceback" not in log


def test_installed_package_state(lifecycle):
    share = lifecycle
    installed = dict(line.split(" ", 1) for line in (share / "installed.txt").read_text().splitlines())
    assert installed["uwsgi-gluster"].startswith("install ok installed 0.")
    assert "install ok installed" not in installed.get("uwsgi-plugin-glusterfs", "")  # Conflicts + Replaces
    assert any(name.startswith("plugin.cpython-311") for name in (share / "pycache.txt").read_text().split())
    assert (share / "python-package-removed").exists()  # and its byte-compiled files with it
    rolled_back = dict(line.split(" ", 1) for line in (share / "rolled-back.txt").read_text().splitlines())
    assert rolled_back["uwsgi-plugin-glusterfs"] == "install ok installed"
    assert "install ok installed" not in rolled_back.get("uwsgi-gluster", "")
    log = (share / "ours.log").read_text()
    assert "setuid() to 33" in log  # Debian's default.ini: the app runs as www-data
    assert "[glusterfs] worker 2 connected to 127.0.0.1:24007" in log
