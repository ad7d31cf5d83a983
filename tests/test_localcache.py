"""Units of the instance's local content cache (uwsgi_gluster/localcache.py) on a
real directory: fill, atomic naming, budget and LRU, start-up cleanup, unsafe
directories, bodies."""

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from uwsgi_gluster import localcache
from uwsgi_gluster.config import LocalCacheSettings
from uwsgi_gluster.localcache import LocalCache, Refused, parse_size


def reader(data: bytes):
    return lambda offset, count: data[offset:offset + count]


def make(tmp_path, instance=4242, **kwargs) -> LocalCache:
    return LocalCache.create(str(tmp_path), instance, fresh=True, **kwargs)


def copies(cache: LocalCache):
    return sorted(n for n in os.listdir(cache.directory) if not n.startswith("."))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_parse_size():
    assert [parse_size(t) for t in ("0", "4096", "64K", "256M", "2g")] == [0, 4096, 64 << 10, 256 << 20, 2 << 30]
    assert parse_size("2T") == 2 << 40
    for bad in ("", "M", "1.5M", "-1", "12P", "2000T"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_directory_is_private_and_named_after_uid_and_instance(tmp_path):
    cache = make(tmp_path)
    assert cache.directory == str(tmp_path / f"uwsgi-gluster-{os.getuid()}-4242")
    st = os.lstat(cache.directory)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == os.getuid()
    copy = cache.fill("a" * 40, 5, b"/x", reader(b"hello"), lambda: True)
    assert stat.S_IMODE(os.stat(os.path.join(cache.directory, copy.name)).st_mode) == 0o600


def test_fill_is_whole_and_atomic_and_reused(tmp_path):
    cache = make(tmp_path)
    data = os.urandom(3 * localcache.FILL_CHUNK + 17)
    copy = cache.fill("n1", len(data), b"/big", reader(data), lambda: True)
    assert copy is not None and copies(cache) == ["n1"]
    assert [n for n in os.listdir(cache.directory) if n.startswith(localcache.TMP_PREFIX)] == []
    body = cache.open(copy, 0, len(data))
    try:
        assert body.whole and os.pread(body.fileno(), len(data) + 1, 0) == data
    finally:
        body.close()
    again = cache.existing("n1", len(data), b"/big")
    assert again is not None and again.name == "n1"
    assert cache.existing("n1", len(data) + 1, b"/big") is None  # another size: not that version
    assert cache.existing("missing", 1, b"/x") is None


def test_changed_or_short_source_leaves_nothing(tmp_path):
    cache = make(tmp_path)
    assert cache.fill("changed", 5, b"/a", reader(b"hello"), lambda: False) is None
    assert cache.fill("short", 10, b"/b", reader(b"hello"), lambda: True) is None
    assert os.listdir(cache.directory) == [localcache.LOCK_NAME]


def test_read_error_propagates_and_leaves_nothing(tmp_path):
    cache = make(tmp_path)

    def broken(offset, count):
        raise OSError(5, "EIO")

    with pytest.raises(OSError):
        cache.fill("x", 5, b"/a", broken, lambda: True)
    assert os.listdir(cache.directory) == [localcache.LOCK_NAME]
    assert cache.fill("x", 5, b"/a", reader(b"hello"), lambda: True) is not None  # not stuck "filling"


def test_one_fill_per_name_at_a_time(tmp_path):
    cache = make(tmp_path)
    inside, release = threading.Event(), threading.Event()

    def slow(offset, count):
        inside.set()
        release.wait(10)
        return b"x" * count

    result = {}
    worker = threading.Thread(target=lambda: result.update(first=cache.fill("same", 4, b"/s", slow, lambda: True)))
    worker.start()
    assert inside.wait(10)
    assert cache.fill("same", 4, b"/s", reader(b"yyyy"), lambda: True) is None
    release.set()
    worker.join(10)
    assert result["first"] is not None


def test_budget_holds_and_least_recently_used_go_first(tmp_path):
    cache = make(tmp_path, max_bytes=1000, max_file=400)
    assert not cache.admits(401) and cache.admits(400) and not cache.admits(0)
    made = []
    for i in range(3):
        made.append(cache.fill(f"c{i}", 300, b"/%d" % i, reader(b"z" * 300), lambda: True))
        os.utime(os.path.join(cache.directory, f"c{i}"), ns=(i * 10**9, i * 10**9))
    os.utime(os.path.join(cache.directory, "c0"), ns=(10 * 10**9, 10 * 10**9))  # c0 used last
    assert cache.fill("c3", 300, b"/3", reader(b"z" * 300), lambda: True) is not None
    assert copies(cache) == ["c0", "c2", "c3"]  # c1, the least recently used, went
    assert cache.size_bytes() <= 1000 and cache.evictions == 1
    assert cache.open(made[1], 0, 300) is None  # an evicted copy is gone, not wrong


def test_open_marks_used_at_most_once_per_freshness(tmp_path):
    now = [100.0]
    cache = make(tmp_path, clock=lambda: now[0])
    copy = cache.fill("u", 3, b"/u", reader(b"abc"), lambda: True)
    path = os.path.join(cache.directory, "u")
    os.utime(path, ns=(0, 0))
    cache.open(copy, 0, 3).close()
    assert os.stat(path).st_mtime_ns == 0  # filled just now: no touch yet
    now[0] += 1.5
    cache.open(copy, 0, 3).close()
    assert os.stat(path).st_mtime_ns > 0


def test_body_ranges_and_iteration(tmp_path):
    cache = make(tmp_path)
    data = os.urandom(3 * localcache.SEND_CHUNK + 5)
    copy = cache.fill("r", len(data), b"/r", reader(data), lambda: True)
    body = cache.open(copy, 7, len(data) - 10)
    assert not body.whole
    assert b"".join(body) == data[7:len(data) - 3]
    with pytest.raises(ValueError):
        body.fileno()  # closed at the end
    body = cache.open(copy, 0, 10)
    assert body.read(4) + body.read() == data[:10] and body.read() == b""
    body.close()


def test_start_up_removes_dead_instances_and_own_leftovers(tmp_path):
    uid = os.getuid()
    dead = tmp_path / f"uwsgi-gluster-{uid}-{dead_pid()}"
    alive = tmp_path / f"uwsgi-gluster-{uid}-{os.getpid()}"
    other_uid = tmp_path / f"uwsgi-gluster-{uid + 1}-{dead_pid()}"
    mine = tmp_path / f"uwsgi-gluster-{uid}-4242"
    for d in (dead, alive, other_uid, mine):
        d.mkdir(mode=0o700)
        (d / "leftover").write_bytes(b"old")
    cache = make(tmp_path)
    assert not dead.exists() and alive.exists() and other_uid.exists()
    assert os.listdir(cache.directory) == [localcache.LOCK_NAME]
    # a worker that reuses the directory (lazy-apps) keeps what is there
    cache.fill("kept", 3, b"/k", reader(b"abc"), lambda: True)
    LocalCache.create(str(tmp_path), 4242, fresh=False)
    assert copies(cache) == ["kept"]


def test_directory_in_another_base_is_made_like_the_caches_own(tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "memory").mkdir()
    cache = make(tmp_path / "disk")
    assert cache.directory_in(str(tmp_path / "disk"), fresh=True) == cache.directory  # same base: its own
    uid = os.getuid()
    dead = tmp_path / "memory" / f"uwsgi-gluster-{uid}-{dead_pid()}"
    dead.mkdir(mode=0o700)
    made = cache.directory_in(str(tmp_path / "memory") + "/", fresh=True)
    assert made == str(tmp_path / "memory" / f"uwsgi-gluster-{uid}-4242")
    st = os.lstat(made)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and not dead.exists()
    (Path(made) / "answer").write_bytes(b"x")
    assert cache.directory_in(str(tmp_path / "memory"), fresh=False) == made  # a lazy-apps worker reuses it
    assert os.listdir(made) == ["answer"]


def test_unsafe_directories_are_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / f"uwsgi-gluster-{os.getuid()}-777"
    link.symlink_to(target)
    with pytest.raises(Refused):
        LocalCache.create(str(tmp_path), 777, fresh=True)
    with pytest.raises(OSError):
        LocalCache.create(str(tmp_path), 777, fresh=False)
    assert target.exists()
    loose = tmp_path / f"uwsgi-gluster-{os.getuid()}-778"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    with pytest.raises(Refused):
        LocalCache.create(str(tmp_path), 778, fresh=False)


def test_from_settings_without_options_reads_the_environment(tmp_path, monkeypatch):
    lines = []
    monkeypatch.setenv(localcache.DIR_ENV, str(tmp_path))
    monkeypatch.setenv(localcache.SIZE_ENV, "0")
    assert localcache.from_settings(LocalCacheSettings(), 5, True, lines.append) is None
    monkeypatch.setenv(localcache.SIZE_ENV, "lots")
    assert localcache.from_settings(LocalCacheSettings(), 5, True, lines.append) is None
    assert "GLUSTERFS_LOCAL_CACHE_SIZE" in lines[-1]
    monkeypatch.setenv(localcache.SIZE_ENV, "2M")
    monkeypatch.setenv(localcache.MAX_FILE_ENV, "1M")
    cache = localcache.from_settings(LocalCacheSettings(), 5, True, lines.append)
    assert cache is not None and (cache.max_bytes, cache.max_file) == (2 << 20, 1 << 20)
    monkeypatch.setenv(localcache.DIR_ENV, str(tmp_path / "does-not-exist"))
    assert localcache.from_settings(LocalCacheSettings(), 6, True, lines.append) is None
    assert lines[-1].startswith("local cache off: ")
