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
