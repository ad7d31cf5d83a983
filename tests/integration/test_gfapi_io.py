"""Raw libgfapi I/O through our declarations, on a real volume."""

import pytest

from support import ours, request
from uwsgi_gluster import gfapi

OFFSET = 3 << 30  # past 2 GiB: the binding's glfs_lseek (C int offset) breaks here


@pytest.fixture(scope="module")
def sparse(volumes):
    fs = volumes["unbit003"]
    fd = gfapi.create_file(fs, "/sparse-3g.bin")
    try:
        gfapi.pwrite_all(fd, b"head", 0)
        gfapi.pwrite_all(fd, b"tail", OFFSET)
    finally:
        gfapi.close(fd)
    return fs


def test_pread_past_2_gib(sparse):
    fd = gfapi.open_file(sparse, "/sparse-3g.bin")
    try:
        assert gfapi.fstat(fd).st_size == OFFSET + 4
        assert gfapi.pread_bytes(fd, OFFSET, 4) == b"tail"
        assert gfapi.pread_bytes(fd, 0, 4) == b"head"
        assert gfapi.pread_bytes(fd, OFFSET + 2, 100) == b"il"  # short read at the end
        assert gfapi.pread_bytes(fd, OFFSET + 4, 10) == b""
        assert gfapi.pread_bytes(fd, 10, 6) == b"\0" * 6  # the hole
    finally:
        gfapi.close(fd)


def test_missing_file_raises_with_errno(volumes):
    with pytest.raises(OSError) as info:
        gfapi.open_file(volumes["unbit003"], "/definitely/not/here")
    assert info.value.errno == 2


def test_range_request_past_2_gib(sparse, tmp_path):
    ini = ("[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nhttp-socket-modifier1 = 27\n"
           "glusterfs-mount = mountpoint=/,volume=unbit003,server=127.0.0.1:0\n")
    with ours(ini, tmp_path).start() as srv:
        reply = request(srv.port, "GET", "/sparse-3g.bin", {"Range": f"bytes={OFFSET}-"})
        assert (reply.status, reply.body) == (206, b"tail")
        assert reply.header("Content-Range") == f"bytes {OFFSET}-{OFFSET + 3}/{OFFSET + 4}"
        head = request(srv.port, "HEAD", "/sparse-3g.bin")
        assert head.header("Content-Length") == str(OFFSET + 4)
