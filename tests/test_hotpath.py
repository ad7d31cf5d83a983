"""The hot path for plain GETs of in-memory cached files (uwsgi_gluster/hotpath.py):
pure units with a fake clock and real cache entries."""

import pytest

from test_cache import Clock, st
from uwsgi_gluster.cache import FileCache
from uwsgi_gluster.hotpath import MAX_HOT, HotResponses, plain

GET = {"REQUEST_METHOD": "GET", "PATH_INFO": "/a.txt"}
HEADERS = (("Content-Length", "3"),)


@pytest.mark.parametrize("extra,precompressed,expected", [
    ({}, True, True),
    ({"REQUEST_METHOD": "HEAD"}, True, False),
    ({"HTTP_RANGE": "bytes=0-0"}, True, False),
    ({"HTTP_IF_NONE_MATCH": '"x"'}, True, False),
    ({"HTTP_IF_MODIFIED_SINCE": "x"}, True, False),
    ({"HTTP_IF_MATCH": "*"}, True, False),
    ({"HTTP_IF_UNMODIFIED_SINCE": "x"}, True, False),
    ({"HTTP_IF_RANGE": '"x"'}, True, False),
    ({"HTTP_ACCEPT_ENCODING": "gzip"}, True, False),
    ({"HTTP_ACCEPT_ENCODING": "gzip"}, False, True),
    ({"QUERY_STRING": "v=1", "HTTP_USER_AGENT": "x"}, True, True),
])
def test_plain(extra, precompressed, expected):
    assert plain({**GET, **extra}, precompressed) is expected


def setup():
    clock = Clock()
    cache = FileCache(clock=clock)
    entry = cache.store(b"/a.txt", st(), b"abc")
    return clock, cache, entry, HotResponses(cache.freshness, True, clock)


def test_answer_while_the_entry_is_cached_and_fresh():
    clock, cache, entry, hot = setup()
    hot.remember(GET, entry, "200 OK", HEADERS, (b"abc",))
    entry.used = False
    assert hot.answer(GET) == (entry, "200 OK", HEADERS, (b"abc",))
    assert entry.used  # the refresher will keep it validated
    assert hot.answer({**GET, "HTTP_RANGE": "bytes=0-0"}) is None  # not plain: the full path
    assert hot.answer({**GET, "PATH_INFO": "/b.txt"}) is None
    clock.now += cache.freshness  # past the bound: forgotten, the full path revalidates
    assert hot.answer(GET) is None and len(hot) == 0


def test_dropped_entry_is_never_answered():
    clock, cache, entry, hot = setup()
    hot.remember(GET, entry, "200 OK", HEADERS, (b"abc",))
    cache.forget(b"/a.txt")  # changed on the volume, evicted...
    assert hot.answer(GET) is None


def test_only_plain_200_answers_are_kept_and_the_table_is_bounded():
    clock, cache, entry, hot = setup()
    hot.remember({**GET, "HTTP_IF_NONE_MATCH": '"x"'}, entry, "200 OK", HEADERS, (b"abc",))
    hot.remember(GET, entry, "206 Partial Content", HEADERS, (b"a",))
    assert len(hot) == 0
    for i in range(MAX_HOT + 1):
        hot.remember({**GET, "PATH_INFO": f"/{i}"}, entry, "200 OK", HEADERS, (b"abc",))
    assert len(hot) <= MAX_HOT
