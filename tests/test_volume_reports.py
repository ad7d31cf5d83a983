"""What a request tells its volume about the volume's health (pure units: the
fake volume of test_transfer, a fake volume that records reports)."""

from __future__ import annotations

from test_transfer import ENV, FakeFile, FakeVolume, UwsgiStartResponse, fake  # noqa: F401 - fixture
from uwsgi_gluster.mime import MimeTypes
from uwsgi_gluster.responder import MountApp


class RecordingVolume(FakeVolume):
    def __init__(self):
        super().__init__()
        self.reports: list = []

    def report(self, ok):
        self.reports.append(ok)


def test_fresh_cache_hit_does_not_tell_a_failing_volume_it_answers_again(fake):  # noqa: F811
    """A fresh cache hit asks nothing of the volume; reporting it as a success
    reset the volume's failure clock on every cached answer during an outage,
    so a dead handle was never dropped (tests/cluster/test_outage.py)."""
    fake["file"] = FakeFile(b"small file")
    volume = RecordingVolume()
    app = MountApp(volume, MimeTypes({}), log=lambda line: None, worker_id=lambda: 1)
    first = b"".join(app(dict(ENV), UwsgiStartResponse()))
    assert first == b"small file" and volume.reports == [True]  # read from the volume
    second = b"".join(app(dict(ENV), UwsgiStartResponse()))
    assert second == b"small file"
    assert volume.reports == [True], "a fresh cache hit was reported as the volume answering"
