"""The small-file cache: freshness bound, revalidation, bounds (pure units, fake clock and stat)."""

import errno
from types import SimpleNamespace

import pytest

from uwsgi_gluster.cache import ENTRY_OVERHEAD, MISSING, MISSING_SHARE, Entry, FileCache


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def st(ino=1, size=3, mtime=50, nsec=0, mode=0o100644, ctime=60, cnsec=0):
    return SimpleNamespace(st_ino=ino, st_size=size, st_mtime=mtime, st_mtimensec=nsec, st_mode=mode,
                           st_ctime=ctime, st_ctimensec=cnsec)


def gone(_path):
    raise OSError(errno.ENOENT, "gone")


def never(_path):
    raise AssertionError("the volume must not be asked while the entry is fresh")


@pytest.fixture
def clock():
    return Clock()


def test_fresh_entry_needs_no_volume_call(clock):
    cache = FileCache(clock=clock)
    cache.store(b"/a", st(), b"abc")
    clock.now += 0.99
    entry = cache.lookup(b"/a", never)
    assert isinstance(entry, Entry) and entry.content == b"abc"


def test_stale_entry_revalidated_by_one_stat(clock):
    cache = FileCache(clock=clock)
    cache.store(b"/a", st(), b"abc")
    clock.now += 1.0
    calls = []
    entry = cache.lookup(b"/a", lambda p: calls.append(p) or st())
    assert entry.content == b"abc" and calls == [b"/a"]
    clock.now += 0.5
    assert cache.lookup(b"/a", never).content == b"abc"  # trusted again for a second


@pytest.mark.parametrize("changed", [st(size=4), st(mtime=51), st(nsec=1), st(ino=2), st(ctime=61), st(cnsec=1)])
def test_changed_file_is_dropped_after_the_freshness_bound(clock, changed):
    cache = FileCache(clock=clock)
    cache.store(b"/a", st(), b"abc")
    clock.now += 1.0
    assert cache.lookup(b"/a", lambda p: changed) is None
    assert len(cache) == 0 and cache.size_bytes == 0


def test_deleted_file_is_dropped(clock):
    cache = FileCache(clock=clock)
    cache.store(b"/a", st(), b"abc")
    clock.now += 2
    assert cache.lookup(b"/a", gone) is None


def test_missing_is_cached_and_rechecked(clock):
    cache = FileCache(clock=clock)
    cache.remember_missing(b"/x")
    assert cache.lookup(b"/x", never) is MISSING
    clock.now += 1.5
    assert cache.lookup(b"/x", gone) is MISSING
    clock.now += 1.5
    assert cache.lookup(b"/x", lambda p: st()) is None  # it appeared: read the volume


def not_connected(_path):
    raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_revalidation_during_an_outage_raises_instead_of_answering_404(clock, kind):
    """A cached "not found" whose revalidation fails because the volume does not
    answer was answered 404 (a wrong answer during an outage); a cached file was
    silently dropped. Both must raise, so the request gets 503."""
    cache = FileCache(clock=clock)
    if kind == "missing":
        cache.remember_missing(b"/x")
    else:
        cache.store(b"/x", st(), b"abc")
    clock.now += 2
    with pytest.raises(OSError) as caught:
        cache.lookup(b"/x", not_connected)
    assert caught.value.errno == errno.ENOTCONN


def test_large_files_are_not_cached(clock):
    cache = FileCache(clock=clock, max_file=10)
    entry = cache.store(b"/big", st(size=11), b"x" * 11)
    assert entry.content == b"x" * 11 and len(cache) == 0


def test_total_bytes_bounded_least_recently_used_first(clock):
    each = ENTRY_OVERHEAD + 2 + 4  # overhead, key, bytes
    cache = FileCache(clock=clock, max_bytes=2 * each + 1, max_file=10)
    cache.store(b"/a", st(size=4), b"aaaa")
    cache.store(b"/b", st(size=4), b"bbbb")
    cache.lookup(b"/a", never)  # /a is now the most recent
    cache.store(b"/c", st(size=4), b"cccc")
    assert cache.size_bytes == 2 * each
    assert cache.lookup(b"/b", never) is None
    assert cache.lookup(b"/a", never).content == b"aaaa"


def test_entry_count_bounded(clock):
    cache = FileCache(clock=clock, max_entries=3)
    for i in range(10):
        cache.remember_missing(b"/%d" % i)
    assert len(cache) == 3


def test_restore_replaces_and_accounts_bytes(clock):
    cache = FileCache(clock=clock)
    cache.store(b"/a", st(size=3), b"abc")
    cache.store(b"/a", st(size=5, mtime=60), b"abcde")
    assert cache.size_bytes == ENTRY_OVERHEAD + 2 + 5 and len(cache) == 1


# -- everything counted (issue 10, item 7) -------------------------------------------


def test_memory_accounting_counts_keys_and_negative_entries(clock):
    """40,000 distinct long missing paths used to be free for the byte budget."""
    cache = FileCache(clock=clock, max_bytes=1 << 20, max_entries=10**9)
    for i in range(40000):
        cache.remember_missing(b"/%05d/" % i + b"m" * 2000)
    assert cache.size_bytes <= (1 << 20) // MISSING_SHARE
    assert len(cache) * 2000 <= (1 << 20) // MISSING_SHARE
    cache.lookup(b"/%05d/" % 39999 + b"m" * 2000, never)  # the latest are kept


def test_memory_accounting_keys_of_files_count(clock):
    cache = FileCache(clock=clock, max_bytes=1 << 20, max_entries=10**9)
    for i in range(5000):
        cache.store(b"/%05d/" % i + b"k" * 1000, st(size=1), b"x")
    assert len(cache) * (1000 + 1) <= 1 << 20
    assert cache.size_bytes <= 1 << 20


def test_memory_accounting_counts_what_the_responder_memoizes(clock):
    cache = FileCache(clock=clock, max_bytes=1 << 20)
    entry = cache.store(b"/a", st(), b"abc")
    before = cache.size_bytes
    headers = cache.memo(entry, ("", "text/plain"), lambda: (("Content-Type", "text/plain"),) * 100)
    assert cache.size_bytes >= before + sum(len(n) + len(v) for n, v in headers)
    assert cache.memo(entry, ("", "text/plain"), never) is headers  # built once
    cache.forget(b"/a")
    assert cache.size_bytes == 0


def test_memory_accounting_evicts_for_memo_growth(clock):
    cache = FileCache(clock=clock, max_bytes=4 * ENTRY_OVERHEAD)
    first = cache.store(b"/a", st(), b"abc")
    cache.store(b"/b", st(), b"abc")
    cache.memo(cache.lookup(b"/b", never), "k", lambda: "v" * (3 * ENTRY_OVERHEAD))
    assert cache.size_bytes <= cache.max_bytes
    assert not first.cached and cache.lookup(b"/a", never) is None


def test_kept_values_expire_after_the_freshness_bound(clock):
    cache = FileCache(clock=clock)
    cache.keep(("index", b"/d/"), b"<page>", 6)
    assert cache.kept(("index", b"/d/")) == b"<page>"
    clock.now += 1.0
    assert cache.kept(("index", b"/d/")) is None and cache.size_bytes == 0
