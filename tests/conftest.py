import subprocess

import pytest

from corpus import CORPUS, MTIME
from support import ROOT

# Volumes the tests use; the names are the plugin documentation's.
VOLUMES = ("unbit001", "unbit002", "unbit003")


@pytest.fixture(scope="session")
def volumes():
    """Local glusterd running, test volumes created, started and seeded."""
    subprocess.run([str(ROOT / "scripts/gluster-env"), "volume", *VOLUMES], check=True)
    from uwsgi_gluster.seeding import connect, write_tree

    handles = {name: connect(name) for name in VOLUMES}
    write_tree(handles["unbit001"], CORPUS, mtime=MTIME)
    for name in VOLUMES:
        write_tree(handles[name], {"/whoami.txt": name.encode()}, mtime=MTIME)
    return handles


# -- measurements the reliability tests report (printed even without -s) --------

MEASUREMENTS: list = []


@pytest.fixture
def report(request, record_property):
    """``report(text, **values)``: a measurement line for the terminal summary
    (section "reliability measurements") and the junit properties."""

    def add(text: str, **values) -> None:
        MEASUREMENTS.append(f"{request.node.nodeid}: {text}")
        for key, value in values.items():
            record_property(key, value)

    return add


def pytest_terminal_summary(terminalreporter):
    if MEASUREMENTS:
        terminalreporter.section("reliability measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)


#: a 10 MiB file only the many-clients and reload tests read: the corpus is written
#: again (creat + O_TRUNC) by every test session's `volumes`, and a download of a
#: corpus file in flight meanwhile is rightly cut ("file shrank")
CROWD_FILE = "/crowd-10MiB.bin"


@pytest.fixture(scope="session")
def crowd_file(volumes):
    """``(path, bytes)`` of :data:`CROWD_FILE` on unbit001, written once if needed."""
    from uwsgi_gluster import gfapi
    from uwsgi_gluster.seeding import write_file

    fs, data = volumes["unbit001"], CORPUS["/sizes/10MiB.bin"]
    try:
        fd = gfapi.open_file(fs, CROWD_FILE)
        try:
            same = gfapi.pread_bytes(fd, 0, len(data) + 1) == data
        finally:
            gfapi.close(fd)
    except OSError:
        same = False
    if not same:
        write_file(fs, CROWD_FILE, data, mtime=MTIME)
    return CROWD_FILE, data
