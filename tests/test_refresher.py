"""Background revalidation (uwsgi_gluster/refresher.py) with cache.due/confirm:
pure units, fake clock and stat."""

import errno

from test_cache import Clock, st
from uwsgi_gluster import refresher
from uwsgi_gluster.cache import MISSING, FileCache


def never(_path):
    raise AssertionError("the request path asked the volume")


def test_hot_entry_stays_fresh_without_a_request_stat():
    clock = Clock()
    cache = FileCache(clock=clock)
    cache.store(b"/a", st(), b"abc")
    assert cache.lookup(b"/a", never).content == b"abc"  # served: hot
    clock.now += 0.7
    calls = []
    assert refresher.refresh_once(cache, lambda p: calls.append(p) or st(), lambda k: None, clock) == 1
    assert calls == [b"/a"]
    clock.now += 0.7  # 1.4 s after the store, 0.7 s after the background stat
    assert cache.lookup(b"/a", never).content == b"abc"


def test_validated_at_is_the_moment_before_the_volume_was_asked():
    clock = Clock()
    cache = FileCache(clock=clock)
    cache.store(b"/a", st(), b"abc")
    cache.lookup(b"/a", never)
    clock.now += 0.7
    asked_at = clock.now

    def slow_stat(_path):
        clock.now += 0.3  # the volume takes its time
        return st()

    refresher.refresh_once(cache, slow_stat, lambda k: None, clock)
    clock.now = asked_at + cache.freshness  # the bound, counted from before the stat
    stats = []
    cache.lookup(b"/a", lambda p: stats.append(p) or st())
    assert stats == [b"/a"]


def test_changed_or_deleted_file_is_dropped_by_the_refresher():
    clock = Clock()
    cache = FileCache(clock=clock)
    cache.store(b"/changed", st(), b"abc")
    cache.store(b"/gone", st(ino=2), b"xyz")
    cache.lookup(b"/changed", never)
    cache.lookup(b"/gone", never)
    clock.now += 0.7

    def stat(path):
        if path == b"/gone":
            raise OSError(errno.ENOENT, "gone")
        return st(ctime=61)  # rewritten in place: same size and mtime, new ctime

    refresher.refresh_once(cache, stat, lambda k: None, clock)
    assert cache.lookup(b"/changed", lambda p: st(ctime=61)) is None
    assert cache.lookup(b"/gone", never) is None


def test_cold_entries_and_volume_errors_are_left_to_the_request_path():
    clock = Clock()
    cache = FileCache(clock=clock)
    cache.store(b"/cold", st(), b"abc")  # never served since stored
    cache.store(b"/hot", st(ino=3), b"def")
    cache.lookup(b"/hot", never)
    clock.now += 0.7
    asked = []

    def down(path):
        asked.append(path)
        raise OSError(errno.ENOTCONN, "down")

    refresher.refresh_once(cache, down, lambda k: None, clock)
    assert asked == [b"/hot"]
    clock.now += 0.5
    stats = []
    assert cache.lookup(b"/hot", lambda p: stats.append(p) or st(ino=3)) is not None
    assert stats == [b"/hot"]  # not confirmed by the failed background stat


def test_missing_and_kept_entries():
    clock = Clock()
    cache = FileCache(clock=clock)
    cache.remember_missing(b"/x.gz")
    cache.keep(("dir", b"/d"), (b"/d", 0), 2)
    assert cache.lookup(b"/x.gz", never) is MISSING
    assert cache.kept(("dir", b"/d")) == (b"/d", 0)
    clock.now += 0.7
    kept = []

    def stat(path):
        raise OSError(errno.ENOENT, "still missing")

    assert refresher.refresh_once(cache, stat, kept.append, clock) == 2
    assert kept == [("dir", b"/d")]
    clock.now += 0.7
    assert cache.lookup(b"/x.gz", never) is MISSING
    clock.now += 0.1
    cache.remember_missing(b"/y")
    cache.lookup(b"/y", never)
    clock.now += 0.7
    refresher.refresh_once(cache, lambda p: st(), kept.append, clock)  # /y appeared
    assert cache.lookup(b"/y", never) is None
