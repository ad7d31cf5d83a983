"""Cached files follow the volume: a rewrite is served in its new form within the
documented bound (1 s), for every worker, whoever wrote it."""

import os
import time

import pytest

from support import ours
from uwsgi_gluster import gfapi
from uwsgi_gluster.cache import DEFAULT_FRESHNESS
from uwsgi_gluster.seeding import write_file

INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit003,server=127.0.0.1:0
processes = 2
master = true
threads = 4
"""
BOUND = DEFAULT_FRESHNESS + 0.3  # the bound plus a margin for the request itself


@pytest.fixture(scope="module")
def server(volumes, tmp_path_factory):
    with ours(INI, tmp_path_factory.mktemp("fresh")).start() as srv:
        yield srv


def warm(server, path, times=8):
    """Ask often enough that both workers have the path cached."""
    return [server.get(path) for _ in range(times)]


def test_rewritten_file_served_in_new_form_within_bound(server, volumes):
    fs = volumes["unbit003"]
    write_file(fs, "/fresh.txt", b"version-1")
    time.sleep(BOUND)
    assert {r.body for r in warm(server, "/fresh.txt")} == {b"version-1"}
    write_file(fs, "/fresh.txt", b"version-2")  # same size, same inode: only mtime (ns) differs
    time.sleep(BOUND)
    replies = warm(server, "/fresh.txt")
    assert {r.body for r in replies} == {b"version-2"}
    assert {r.header("Content-Length") for r in replies} == {"9"}


def test_replaced_by_rename_and_grown(server, volumes):
    fs = volumes["unbit003"]
    write_file(fs, "/swap.txt", b"short")
    time.sleep(BOUND)
    warm(server, "/swap.txt")
    write_file(fs, "/swap.tmp", b"a much longer replacement")
    gfapi.rename(fs, "/swap.tmp", "/swap.txt")
    time.sleep(BOUND)
    assert {r.body for r in warm(server, "/swap.txt")} == {b"a much longer replacement"}


def test_created_and_deleted_files_follow(server, volumes):
    fs = volumes["unbit003"]
    try:
        gfapi.unlink(fs, "/appears.txt")
    except OSError:
        pass
    time.sleep(BOUND)
    assert {r.status for r in warm(server, "/appears.txt")} == {404}
    write_file(fs, "/appears.txt", b"here now")
    time.sleep(BOUND)
    assert {(r.status, r.body) for r in warm(server, "/appears.txt")} == {(200, b"here now")}
    gfapi.unlink(fs, "/appears.txt")
    time.sleep(BOUND)
    assert {r.status for r in warm(server, "/appears.txt")} == {404}


def test_etag_changes_with_the_content(server, volumes):
    fs = volumes["unbit003"]
    write_file(fs, "/tagged.txt", b"one")
    time.sleep(BOUND)
    first = server.get("/tagged.txt").header("ETag")
    write_file(fs, "/tagged.txt", b"two")
    time.sleep(BOUND)
    assert server.get("/tagged.txt").header("ETag") != first


def test_stale_bytes_after_in_place_rewrite_keeping_size_and_mtime(server, volumes):
    """``cp -p`` / ``rsync --inplace -t``: same inode, same size, the old mtime put
    back. Only ctime (which no client sets) tells; the new bytes and a new strong
    ETag must still be served within the bound (issue 10, item 2)."""
    fs = volumes["unbit003"]
    path, old_mtime = "/harden1-inplace.txt", 1_600_000_000
    write_file(fs, path, b"original", mtime=old_mtime)
    time.sleep(BOUND)
    before = warm(server, path)
    assert {r.body for r in before} == {b"original"}
    (etag,) = {r.header("ETag") for r in before}
    fd = gfapi.open_file(fs, path, os.O_WRONLY)  # in place: no truncation, same inode
    try:
        gfapi.pwrite_all(fd, b"REPLACED")
    finally:
        gfapi.close(fd)
    gfapi.set_mtime(fs, path, old_mtime)  # os.utime back, as cp -p does
    st = gfapi.stat(fs, path)
    assert (st.st_size, st.st_mtime, st.st_mtimensec) == (8, old_mtime, 0)
    time.sleep(BOUND)
    after = warm(server, path)
    assert {r.body for r in after} == {b"REPLACED"}
    assert {r.header("Last-Modified") for r in after} == {r.header("Last-Modified") for r in before}
    (new_etag,) = {r.header("ETag") for r in after}
    assert new_etag != etag
    assert server.get(path, {"If-None-Match": etag}).status == 200
