"""Table-driven tests for the pure HTTP logic in :mod:`uwsgi_gluster.http`.

Tests named ``test_regression_*`` pin a bug seen in another static-file server
(whitenoise, werkzeug) so it cannot creep in here.
"""

from __future__ import annotations

import calendar
import locale
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uwsgi_gluster import http

# Sun, 06 Nov 1994 08:49:37 GMT, the RFC's own example
RFC_EXAMPLE = 784111777


# --------------------------------------------------------------------------
# http_date / parse_http_date
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (RFC_EXAMPLE, "Sun, 06 Nov 1994 08:49:37 GMT"),
        (1795634644, "Wed, 25 Nov 2026 19:24:04 GMT"),
        (951782400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"),
        (253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"),
    ],
)
def test_http_date(seconds, expected):
    assert http.http_date(seconds) == expected


def test_http_date_ignores_locale():
    previous = locale.setlocale(locale.LC_TIME)
    for name in ("de_DE.UTF-8", "fr_FR.UTF-8", "C.UTF-8"):
        try:
            locale.setlocale(locale.LC_TIME, name)
        except locale.Error:
            continue
        try:
            assert http.http_date(RFC_EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"
        finally:
            locale.setlocale(locale.LC_TIME, previous)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sun, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", RFC_EXAMPLE),  # RFC 850
        ("Sun Nov  6 08:49:37 1994", RFC_EXAMPLE),  # asctime, space-padded day
        ("Sun Nov 06 08:49:37 1994", RFC_EXAMPLE),  # asctime, zero-padded day
        ("  Sun, 06 Nov 1994 08:49:37 GMT\t", RFC_EXAMPLE),  # surrounding OWS
        ("sun, 06 nov 1994 08:49:37 gmt", RFC_EXAMPLE),  # case-insensitive names
        ("Mon, 06 Nov 1994 08:49:37 GMT", RFC_EXAMPLE),  # wrong weekday tolerated
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
        ("Tue, 29 Feb 2000 00:00:00 GMT", 951782400),
        ("Wed, 25 Nov 2026 19:24:04 GMT", 1795634644),
        ("Wed, 31 Dec 1969 23:59:59 GMT", -1),
        ("Thursday, 01-Jan-10 00:00:00 GMT", calendar.timegm((2010, 1, 1, 0, 0, 0))),
    ],
)
def test_parse_http_date(value, expected):
    assert http.parse_http_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "garbage",
        12345,
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        "1994-11-06T08:49:37Z",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 6 Nov 1994 08:49:37 GMT",  # IMF-fixdate day is two digits
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Thu, 29 Feb 2001 00:00:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT garbage",
        "Sun, 06 Nov 1994 08:49:37 GMT\n",
        "Sun, ٠٦ Nov 1994 08:49:37 GMT",  # non-ASCII digits
        "Sun, 06 Nov 1994 08:49:37 GMT" * 1000,
    ],
)
def test_parse_http_date_rejects(value):
    assert http.parse_http_date(value) is None


@pytest.mark.parametrize("seconds", [0, 1, RFC_EXAMPLE, 951782400, 1795634644, 253402300799])
def test_http_date_round_trips(seconds):
    assert http.parse_http_date(http.http_date(seconds)) == seconds


@pytest.mark.parametrize(
    ("two_digits", "current_year", "expected"),
    [
        (94, 2026, 1994),
        (10, 2026, 2010),
        (26, 2026, 2026),
        (76, 2026, 2076),  # exactly 50 years ahead stays in the future
        (77, 2026, 1977),  # more than 50 years ahead means the past century
        (0, 2099, 2100),
    ],
)
def test_rfc850_two_digit_year(two_digits, current_year, expected):
    now = calendar.timegm((current_year, 6, 1, 0, 0, 0))
    assert http._rfc850_year(two_digits, now) == expected


# --------------------------------------------------------------------------
# make_etag
# --------------------------------------------------------------------------

BASE = (1234, 100, 1_700_000_000_123_456_789, 1_700_000_001_000_000_007)


def test_etag_is_strong_quoted_hex():
    etag = http.make_etag(*BASE)
    assert etag.startswith('"') and etag.endswith('"')
    assert not etag.startswith("W/")
    int(etag[1:-1], 16)


def test_etag_is_deterministic():
    assert http.make_etag(*BASE) == http.make_etag(*BASE)


@pytest.mark.parametrize(
    "other",
    [
        (1235, 100, BASE[2], BASE[3], ""),  # another file
        ("1234", 100, BASE[2], BASE[3], ""),  # same digits, other kind of identity
        (1234, 101, BASE[2], BASE[3], ""),  # size changed
        (1234, 100, BASE[2] + 1, BASE[3], ""),  # mtime changed within the same second
        (1234, 100, BASE[2], BASE[3] + 1, ""),  # rewritten in place, size and mtime restored
        (1234, 100, BASE[2], BASE[3], "gzip"),
        (1234, 100, BASE[2], BASE[3], "br"),
    ],
)
def test_etag_changes_with_every_input(other):
    assert http.make_etag(*other) != http.make_etag(*BASE)


def test_regression_etag_differs_per_encoding():
    tags = {http.make_etag(*BASE, encoding=coding) for coding in ("", "gzip", "br")}
    assert len(tags) == 3


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("", "identity"),
        ("gzip", "GZIP"),
        ("gzip", " gzip "),
    ],
)
def test_etag_encoding_equivalences(a, b):
    assert http.make_etag(*BASE, encoding=a) == http.make_etag(*BASE, encoding=b)


@pytest.mark.parametrize(
    "identity",
    [0, 2**64 - 1, "5c8d1f44-54b1-4d6a-9b5f-0a3e8c1d2b7f", b"\x00" * 16, "a:1", "\udcff"],
)
def test_etag_accepts_any_identity(identity):
    assert http.make_etag(identity, 0, 0, 0).startswith('"')


def test_etag_separator_in_identity_does_not_collide():
    assert http.make_etag("a:1", 2, 3, 4) != http.make_etag("a", 1, 23, 4)


# --------------------------------------------------------------------------
# cache_control, Allow, 304 headers
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_age", "expected"),
    [
        (None, None),
        (0, "public, max-age=0"),
        (3600, "public, max-age=3600"),
        (31536000, "public, max-age=31536000"),
        (-5, "public, max-age=0"),
    ],
)
def test_cache_control(max_age, expected):
    assert http.cache_control(max_age) == expected


def test_allow():
    assert http.allowed_methods == ("GET", "HEAD", "OPTIONS")
    assert http.ALLOW_HEADER == "GET, HEAD, OPTIONS"


def test_not_modified_allow_list():
    assert http.NOT_MODIFIED_HEADERS == (
        "Cache-Control",
        "Content-Location",
        "Date",
        "ETag",
        "Expires",
        "Last-Modified",
        "Vary",
    )


def test_regression_304_keeps_validators_and_cache_control():
    full = [
        ("Content-Type", "text/plain"),
        ("Content-Length", "100"),
        ("ETag", '"abc"'),
        ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("Cache-Control", "public, max-age=60"),
        ("Content-Encoding", "gzip"),
        ("Vary", "Accept-Encoding"),
        ("Accept-Ranges", "bytes"),
        ("Content-Range", "bytes 0-0/100"),
        ("Expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
        ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("Content-Location", "/a.txt"),
    ]
    assert http.not_modified_headers(full) == [
        ("ETag", '"abc"'),
        ("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("Cache-Control", "public, max-age=60"),
        ("Vary", "Accept-Encoding"),
        ("Expires", "Sun, 06 Nov 1994 08:50:37 GMT"),
        ("Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("Content-Location", "/a.txt"),
    ]


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("etag", True),
        ("ETAG", True),
        ("last-modified", True),
        ("cache-control", True),
        ("vary", True),
        ("content-length", False),
        ("content-type", False),
        ("content-encoding", False),
        ("x-etag", False),
        ("etag ", False),
    ],
)
def test_not_modified_headers_case_insensitive(name, kept):
    assert http.not_modified_headers([(name, "v")]) == ([(name, "v")] if kept else [])


# --------------------------------------------------------------------------
# parse_range / content_range
# --------------------------------------------------------------------------

U = http.UNSATISFIABLE
HUGE = "9" * 5000  # beyond int()'s default 4300-digit limit


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        # served whole (200)
        (None, 10, None),
        ("", 10, None),
        ("bytes", 10, None),
        ("bytes=", 10, None),
        ("bytes=-", 10, None),
        ("bytes=,", 10, None),
        ("items=0-1", 10, None),
        ("bytes 0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=1", 10, None),
        ("bytes=0-1-2", 10, None),
        ("bytes=+1-2", 10, None),
        ("bytes=-1-2", 10, None),
        ("bytes=0x1-2", 10, None),
        ("bytes=1_0-20", 10, None),
        ("bytes=٠-١", 10, None),  # non-ASCII digits
        ("bytes=5-2", 10, None),  # last < first: invalid, not unsatisfiable
        ("bytes=50-20", 10, None),
        ("bytes=0-10,20-30", 100, None),  # several ranges
        ("bytes=0-0,-1", 10, None),
        ("bytes=0-1,0-1", 10, None),  # a list that would collapse to one
        ("bytes=0-4,5-9", 10, None),
        ("bytes=0-1,junk", 10, None),
        # single satisfiable range (206)
        ("bytes=0-0", 10, (0, 1)),
        ("bytes=-1", 10, (9, 10)),
        ("bytes=0-9", 10, (0, 10)),
        ("bytes=0-", 10, (0, 10)),
        ("bytes=3-5", 10, (3, 6)),
        ("bytes=9-9", 10, (9, 10)),
        ("bytes=9-", 10, (9, 10)),
        ("bytes=100-", 1000, (100, 1000)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=-10", 10, (0, 10)),
        ("bytes=-11", 10, (0, 10)),  # suffix longer than the file: all of it
        ("bytes=-1000", 10, (0, 10)),
        ("bytes=5-100", 10, (5, 10)),  # last-pos clamped
        ("bytes=0-10", 10, (0, 10)),
        ("bytes=0-0", 1, (0, 1)),
        ("bytes=-1", 1, (0, 1)),
        ("bytes=007-008", 10, (7, 9)),  # leading zeros
        ("BYTES=0-0", 10, (0, 1)),  # unit is case-insensitive
        ("Bytes=0-0", 10, (0, 1)),
        (" bytes = 1 - 2 ", 10, (1, 3)),  # blanks tolerated
        ("bytes=\t1-2\t", 10, (1, 3)),
        ("bytes=0-0,", 10, (0, 1)),  # empty list elements are skipped
        ("bytes=, 2-3 ,", 10, (2, 4)),
        ("bytes=0-" + HUGE, 10, (0, 10)),
        ("bytes=-" + HUGE, 10, (0, 10)),
        ("bytes=" + "0" * 5000 + "5-6", 10, (5, 7)),
        ("bytes=4294967296-4294967296", 2**33, (2**32, 2**32 + 1)),
        # unsatisfiable (416)
        ("bytes=10-", 10, U),
        ("bytes=10-20", 10, U),
        ("bytes=100-200", 10, U),
        ("bytes=-0", 10, U),
        ("bytes=-000", 10, U),
        ("bytes=0-0", 0, U),
        ("bytes=-1", 0, U),
        ("bytes=0-", 0, U),
        ("bytes=" + HUGE + "-", 10, U),
        ("bytes=" + HUGE + "-" + HUGE, 10, U),
    ],
)
def test_parse_range(header, size, expected):
    assert http.parse_range(header, size) == expected


def test_regression_range_bytes_0_0_is_one_byte():
    # whitenoise#711: bytes=0-0 and bytes=-1 must not be empty or off by one
    assert http.parse_range("bytes=0-0", 10) == (0, 1)
    assert http.parse_range("bytes=-1", 10) == (9, 10)
    assert http.content_range(0, 1, 10) == "bytes 0-0/10"
    assert http.content_range(9, 10, 10) == "bytes 9-9/10"


def test_regression_range_huge_digits_do_not_raise():
    # int() refuses strings longer than sys.get_int_max_str_digits()
    assert http.parse_range("bytes=" + HUGE + "-" + HUGE + "0", 10) is U
    assert http.parse_range("bytes=" + HUGE + "0-" + HUGE, 10) is None


def test_unsatisfiable_is_a_singleton():
    import pickle

    assert repr(U) == "UNSATISFIABLE"
    assert pickle.loads(pickle.dumps(U)) is U


@pytest.mark.parametrize(
    ("start", "end", "size", "expected"),
    [
        (0, 1, 10, "bytes 0-0/10"),
        (0, 10, 10, "bytes 0-9/10"),
        (3, 6, 10, "bytes 3-5/10"),
        (2**40, 2**40 + 1, 2**41, "bytes 1099511627776-1099511627776/2199023255552"),
    ],
)
def test_content_range(start, end, size, expected):
    assert http.content_range(start, end, size) == expected


@pytest.mark.parametrize(("size", "expected"), [(0, "bytes */0"), (10, "bytes */10")])
def test_unsatisfied_range(size, expected):
    assert http.unsatisfied_range(size) == expected


_numbers = st.one_of(st.just(""), st.integers(0, 2**70).map(str), st.text("0123456789", max_size=30))
_blank = st.sampled_from(["", " ", "\t"])
_specs = st.builds(lambda a, b, c, d: a + b + "-" + c + d, _blank, _numbers, _numbers, _blank)
_range_headers = st.one_of(
    st.none(),
    st.text(),
    st.builds(
        lambda unit, specs: unit + "=" + ",".join(specs),
        st.sampled_from(["bytes", "BYTES", " bytes ", "items", ""]),
        st.lists(_specs, min_size=0, max_size=3),
    ),
)


@given(header=_range_headers, size=st.one_of(st.integers(0, 20), st.integers(0, 2**64)))
def test_parse_range_property(header, size):
    result = http.parse_range(header, size)
    if result is None or result is U:
        return
    start, end = result
    assert isinstance(start, int) and isinstance(end, int)
    assert 0 <= start < end <= size


@given(
    first=st.one_of(st.none(), st.integers(0, 300)),
    last=st.one_of(st.none(), st.integers(0, 300)),
    size=st.integers(0, 200),
)
def test_parse_range_matches_rfc_model(first, last, size):
    """One well-formed byte-range-spec against a literal reading of RFC 9110 14.1.2."""
    header = "bytes=%s-%s" % ("" if first is None else first, "" if last is None else last)
    result = http.parse_range(header, size)
    if first is None and last is None:
        assert result is None
    elif first is None:  # suffix-range
        if last == 0 or size == 0:
            assert result is U
        else:
            assert result == (max(0, size - last), size)
    elif last is not None and last < first:
        assert result is None
    elif first >= size:
        assert result is U
    else:
        assert result == (first, size if last is None else min(last + 1, size))


# --------------------------------------------------------------------------
# evaluate_preconditions / if_range_allows
# --------------------------------------------------------------------------

ETAG = '"abc123"'
OTHER = '"zzz999"'
MTIME = RFC_EXAMPLE
AT = "Sun, 06 Nov 1994 08:49:37 GMT"  # == MTIME
BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT"  # MTIME - 1
AFTER = "Sun, 06 Nov 1994 08:49:38 GMT"  # MTIME + 1
FUTURE = "Fri, 31 Dec 9999 23:59:59 GMT"
IM, INM, IMS, IUS = (
    "HTTP_IF_MATCH",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_UNMODIFIED_SINCE",
)


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        # unconditional
        ("GET", {}, 200),
        ("HEAD", {}, 200),
        ("GET", {"HTTP_RANGE": "bytes=0-0"}, 200),
        # If-Match: strong comparison, '*' matches
        ("GET", {IM: ETAG}, 200),
        ("GET", {IM: "*"}, 200),
        ("GET", {IM: " * "}, 200),
        ("GET", {IM: OTHER}, 412),
        ("GET", {IM: "W/" + ETAG}, 412),  # weak never matches strongly
        ("GET", {IM: OTHER + ", " + ETAG}, 200),
        ("GET", {IM: OTHER + "," + ETAG}, 200),
        ("GET", {IM: '"a,b", ' + ETAG}, 200),  # comma inside a tag
        ("GET", {IM: '"a,b"'}, 412),
        ("GET", {IM: "abc123"}, 412),  # unquoted: malformed, no match
        ("GET", {IM: "garbage, " + ETAG}, 200),  # a bad member does not hide a good one
        ("GET", {IM: '"abc123'}, 412),
        ("GET", {IM: "*, " + OTHER}, 412),  # '*' only alone
        ("PUT", {IM: OTHER}, 412),
        ("DELETE", {IM: ETAG}, 200),
        ("GET", {IM: ""}, 200),  # blank = absent
        # If-Unmodified-Since, only without If-Match
        ("GET", {IUS: AT}, 200),
        ("GET", {IUS: AFTER}, 200),
        ("GET", {IUS: BEFORE}, 412),
        ("GET", {IUS: "not a date"}, 200),  # unparsable: ignored
        ("GET", {IM: ETAG, IUS: BEFORE}, 200),  # If-Match wins, IUS ignored
        ("GET", {IM: OTHER, IUS: AFTER}, 412),
        ("PUT", {IUS: BEFORE}, 412),
        # If-None-Match: weak comparison
        ("GET", {INM: ETAG}, 304),
        ("HEAD", {INM: ETAG}, 304),
        ("GET", {INM: "W/" + ETAG}, 304),
        ("GET", {INM: "w/" + ETAG}, 304),
        ("GET", {INM: "*"}, 304),
        ("GET", {INM: OTHER}, 200),
        ("GET", {INM: OTHER + ", W/" + ETAG}, 304),
        ("GET", {INM: '  "x" ,  ' + ETAG + "  "}, 304),
        ("GET", {INM: "abc123"}, 200),  # unquoted: no match
        ("POST", {INM: ETAG}, 412),
        ("PUT", {INM: "*"}, 412),
        ("OPTIONS", {INM: ETAG}, 412),
        ("POST", {INM: OTHER}, 200),
        ("GET", {INM: ""}, 200),
        # If-None-Match present: If-Modified-Since is not evaluated
        ("GET", {INM: OTHER, IMS: AT}, 200),
        ("GET", {INM: ETAG, IMS: BEFORE}, 304),
        # If-Modified-Since
        ("GET", {IMS: AT}, 304),
        ("HEAD", {IMS: AT}, 304),
        ("GET", {IMS: AFTER}, 304),
        ("GET", {IMS: FUTURE}, 304),
        ("GET", {IMS: BEFORE}, 200),
        ("GET", {IMS: "Sunday, 06-Nov-94 08:49:37 GMT"}, 304),
        ("GET", {IMS: "Sun Nov  6 08:49:37 1994"}, 304),
        ("GET", {IMS: "garbage"}, 200),
        ("GET", {IMS: ""}, 200),
        ("GET", {IMS: AT + "; length=123"}, 200),  # old Netscape extension: unparsable
        ("POST", {IMS: AT}, 200),  # only for GET/HEAD
        ("PUT", {IMS: FUTURE}, 200),
        # order of evaluation
        ("GET", {IM: OTHER, INM: ETAG}, 412),  # step 1 before step 3
        ("GET", {IUS: BEFORE, IMS: AT}, 412),  # step 2 before step 4
        ("GET", {IM: ETAG, INM: ETAG}, 304),
        ("GET", {IM: "*", IMS: AT}, 304),
        ("GET", {IUS: AT, IMS: AT}, 304),
    ],
)
def test_evaluate_preconditions(method, headers, expected):
    assert http.evaluate_preconditions(method, headers, ETAG, MTIME) == expected


def test_regression_unparsable_if_modified_since_is_200():
    assert http.evaluate_preconditions("GET", {IMS: "yesterday"}, ETAG, MTIME) == 200


def test_regression_if_modified_since_later_than_mtime_is_304():
    # werkzeug#2392: a date after mtime (even in the future) is not an error
    for date in (AFTER, "Wed, 25 Nov 2099 19:24:04 GMT", FUTURE):
        assert http.evaluate_preconditions("GET", {IMS: date}, ETAG, MTIME) == 304


def test_subsecond_mtime_is_truncated_like_last_modified():
    assert http.evaluate_preconditions("GET", {IMS: AT}, ETAG, MTIME + 0.9) == 304
    assert http.evaluate_preconditions("GET", {IUS: AT}, ETAG, MTIME + 0.9) == 200


def test_preconditions_with_a_real_etag():
    etag = http.make_etag(42, 10, MTIME * 10**9, MTIME * 10**9)
    gzip_etag = http.make_etag(42, 10, MTIME * 10**9, MTIME * 10**9, "gzip")
    assert http.evaluate_preconditions("GET", {INM: etag}, etag, MTIME) == 304
    assert http.evaluate_preconditions("GET", {INM: etag}, gzip_etag, MTIME) == 200


@pytest.mark.parametrize(
    ("if_range", "expected"),
    [
        (None, True),
        (ETAG, True),
        (" " + ETAG + " ", True),
        (OTHER, False),
        ("W/" + ETAG, False),  # weak never matches
        ("w/" + ETAG, False),
        ("abc123", False),
        ('"abc123', False),
        ('"', False),
        ("", False),
        ("*", False),
        (AT, True),
        ("Sunday, 06-Nov-94 08:49:37 GMT", True),
        (BEFORE, False),  # must be equal, not merely earlier/later
        (AFTER, False),
        (FUTURE, False),
        ("garbage", False),
    ],
)
def test_if_range_allows(if_range, expected):
    assert http.if_range_allows(if_range, ETAG, MTIME) is expected


def test_if_range_with_weak_current_etag_never_matches():
    assert http.if_range_allows('W/"abc123"', 'W/"abc123"', MTIME) is False
    assert http.if_range_allows('"abc123"', 'W/"abc123"', MTIME) is False


# --------------------------------------------------------------------------
# parse_accept_encoding / accepts_encoding
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, {}),
        ("", {}),
        ("gzip", {"gzip": 1.0}),
        ("gzip, br", {"gzip": 1.0, "br": 1.0}),
        ("GZIP, Br", {"gzip": 1.0, "br": 1.0}),
        ("gzip;q=0", {"gzip": 0.0}),
        ("gzip; q=0.5, br;q=1.0, *;q=0.001", {"gzip": 0.5, "br": 1.0, "*": 0.001}),
        ("gzip;Q=0.5", {"gzip": 0.5}),
        ("gzip ; q = 0.5", {"gzip": 0.5}),
        ("gzip;level=9;q=0.2", {"gzip": 0.2}),
        ("x-gzip", {"gzip": 1.0}),
        ("identity;q=0, *;q=0", {"identity": 0.0, "*": 0.0}),
        ("gzip, gzip;q=0", {"gzip": 0.0}),  # duplicate: most restrictive wins
        ("gzip;q=0, gzip", {"gzip": 0.0}),
        (",, gzip ,", {"gzip": 1.0}),  # empty list elements
        ("gzip br", {}),  # not a token
        ("gzip;q=abc", {"gzip": 0.0}),  # malformed q: refused
        ("gzip;q=", {"gzip": 0.0}),
        ("gzip;q=2", {"gzip": 0.0}),
        ("gzip;q=1.5", {"gzip": 0.0}),
        ("gzip;q=-1", {"gzip": 0.0}),
        ("gzip;q=nan", {"gzip": 0.0}),
        ("gzip;q=inf", {"gzip": 0.0}),
        ("gzip;q=0.0001", {"gzip": 0.0}),
        ("gzip;q=1e0", {"gzip": 0.0}),
        ("gzip;q=1.000", {"gzip": 1.0}),
        ("gzip;q=0.", {"gzip": 0.0}),
        ("gzip;q=1.", {"gzip": 1.0}),
    ],
)
def test_parse_accept_encoding(header, expected):
    assert http.parse_accept_encoding(header) == expected


@pytest.mark.parametrize(
    ("header", "coding", "expected"),
    [
        # no header: only identity
        (None, "gzip", False),
        (None, "br", False),
        (None, "identity", True),
        (None, "", True),
        # empty header: no coding wanted
        ("", "gzip", False),
        ("", "identity", True),
        # listed codings
        ("gzip", "gzip", True),
        ("gzip", "br", False),
        ("gzip, deflate, br", "br", True),
        ("gzip;q=0", "gzip", False),
        ("gzip;q=0.000", "gzip", False),
        ("gzip;q=0.001", "gzip", True),
        ("br;q=0, gzip", "br", False),
        ("br;q=0, gzip", "gzip", True),
        ("GZIP", "gzip", True),
        ("gzip", "GZip", True),
        ("x-gzip", "gzip", True),
        ("gzip", "x-gzip", True),
        ("gzip;q=bogus", "gzip", False),
        ("gzip;q=", "gzip", False),
        # wildcard applies to codings not listed
        ("*", "gzip", True),
        ("*", "br", True),
        ("*;q=0", "gzip", False),
        ("gzip;q=0, *", "gzip", False),
        ("gzip;q=0, *", "br", True),
        ("br, *;q=0", "br", True),
        ("br, *;q=0", "gzip", False),
        # identity
        ("gzip", "identity", True),
        ("identity;q=0", "identity", False),
        ("identity;q=0", "", False),
        ("*;q=0", "identity", False),
        ("identity, *;q=0", "identity", True),
        ("identity;q=0.5, *;q=0", "identity", True),
    ],
)
def test_accepts_encoding(header, coding, expected):
    assert http.accepts_encoding(header, coding) is expected


def test_regression_gzip_q0_refuses_gzip():
    # whitenoise#352: "gzip;q=0" was taken as accepting gzip
    assert http.accepts_encoding("gzip;q=0", "gzip") is False
    assert http.accepts_encoding("gzip;q=0, br", "gzip") is False
    assert http.accepts_encoding("gzip;q=0, br", "br") is True


@given(st.text())
def test_accept_encoding_never_raises(header):
    prefs = http.parse_accept_encoding(header)
    assert all(0.0 <= q <= 1.0 for q in prefs.values())
    http.accepts_encoding(header, "gzip")


# --------------------------------------------------------------------------
# escape_html / render_index
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a&b", "a&amp;b"),
        ("<script>", "&lt;script&gt;"),
        ('say "hi"', "say &quot;hi&quot;"),
        ("it's", "it&#x27;s"),
        ("héllo ✓", "héllo ✓"),
    ],
)
def test_escape_html(text, expected):
    assert http.escape_html(text) == expected


def _rows(page: bytes):
    text = page.decode("utf-8")
    return [line for line in text.splitlines() if line.startswith("<tr><td")]


_ROW = re.compile(r'<tr><td class="n"><a(?: class="d")? href="([^"]*)">(.*?)</a></td>(<td class="s".*?</td>)'
                  r'<td class="d">(.*?)</td></tr>')


def _cells(row: str):
    """``(href, shown name, size cell, date cell)`` of one listing row."""
    match = _ROW.fullmatch(row)
    assert match, row
    return match.groups()


def test_render_index_page_shape():
    page = http.render_index("/docs/", [("a.txt", False, 12, RFC_EXAMPLE)])
    text = page.decode("utf-8")
    assert isinstance(page, bytes)
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "<style>" in text and "<script" not in text
    assert "<title>Index of /docs/</title>" in text
    (_, row) = _rows(page)
    assert _cells(row) == ("a.txt", "a.txt", '<td class="s" title="12 bytes">12 B</td>',
                           '<time datetime="1994-11-06T08:49:37Z">1994-11-06<span class="t"> 08:49</span></time>')


@pytest.mark.parametrize(
    ("url_path", "has_parent"),
    [("/", False), ("", False), ("/docs/", True), ("/a/b/", True)],
)
def test_render_index_parent_link(url_path, has_parent):
    rows = _rows(http.render_index(url_path, []))
    assert (rows[:1] == ['<tr><td class="n"><a class="d" href="../">../</a></td><td class="s">-</td>'
                         '<td class="d">-</td></tr>']) is has_parent
    assert len(rows) == int(has_parent)


def test_render_index_sorts_directories_first_then_by_name():
    entries = [
        ("b.txt", False, 1, 0),
        ("zdir", True, 4096, 0),
        ("A.txt", False, 1, 0),
        ("adir", True, 4096, 0),
        ("a.txt", False, 1, 0),
    ]
    rows = _rows(http.render_index("/", entries))
    hrefs = [row.split('href="')[1].split('"')[0] for row in rows]
    assert hrefs == ["adir/", "zdir/", "A.txt", "a.txt", "b.txt"]


SORTABLE = [("b.txt", False, 300, 30), ("zdir", True, 4096, 10), ("a.txt", False, 20, 20),
            ("adir", True, 4096, 40), ("c.txt", False, 1000, 10), ("d.txt", False, 20, 5)]


@pytest.mark.parametrize(("sort", "descending", "names"), [
    ("name", False, ["adir/", "zdir/", "a.txt", "b.txt", "c.txt", "d.txt"]),
    ("name", True, ["zdir/", "adir/", "d.txt", "c.txt", "b.txt", "a.txt"]),
    ("size", False, ["adir/", "zdir/", "a.txt", "d.txt", "b.txt", "c.txt"]),
    ("size", True, ["zdir/", "adir/", "c.txt", "b.txt", "d.txt", "a.txt"]),
    ("date", False, ["zdir/", "adir/", "d.txt", "c.txt", "a.txt", "b.txt"]),
    ("date", True, ["adir/", "zdir/", "b.txt", "a.txt", "c.txt", "d.txt"]),
])
def test_render_index_sorts_by_name_size_date_directories_first(sort, descending, names):
    rows = _rows(http.render_index("/", SORTABLE, sort=sort, descending=descending))
    assert [_cells(row)[1] for row in rows] == names
    # the same order when only the first rows are selected (the 1,000-row cap)
    assert [e[0] + "/" * e[1] for e in http.select_listing(iter(SORTABLE), 3, sort, descending)] == names[:3]


@pytest.mark.parametrize(("sort", "descending", "links", "marked"), [
    ("name", False, ["?sort=name&amp;order=desc", "?sort=size&amp;order=desc", "?sort=date&amp;order=desc"],
     '<th class="n" aria-sort="ascending">'),
    ("size", True, ["?sort=name&amp;order=asc", "?sort=size&amp;order=asc", "?sort=date&amp;order=desc"],
     '<th class="s" aria-sort="descending">'),
])
def test_render_index_column_links_reverse_the_current_order(sort, descending, links, marked):
    text = http.render_index("/d/", [("sub", True, 0, 0)], sort=sort, descending=descending).decode()
    head = text.split("<thead>")[1].split("</thead>")[0]
    assert re.findall(r'<th [^>]*><a href="([^"]*)">', head) == links
    assert marked in head
    # directories and ../ keep a non-default order while browsing
    keep = "" if (sort, descending) == ("name", False) else "?sort=size&amp;order=desc"
    assert f'href="sub/{keep}"' in text and f'href="../{keep}"' in text


@pytest.mark.parametrize(("query", "order"), [
    ("", ("name", False)), ("sort=size&order=desc", ("size", True)), ("order=desc", ("name", True)),
    ("sort=date", ("date", False)), ("sort=SIZE&order=up", ("name", False)), ("sort=size&sort=bogus", ("size", False)),
    ("sort=%3Cx%3E&order=%22", ("name", False)), ("&&=&sort", ("name", False)),
])
def test_listing_order_from_query(query, order):
    assert http.listing_order(query) == order


@pytest.mark.parametrize(("size", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (10 * 1024, "10 KiB"),
    (70000, "68 KiB"), (5 * 2**20 + 2**19, "5.5 MiB"), (2**40, "1.0 TiB"), (2**63, "8.0 EiB"), (2**90, "1024 YiB"),
])
def test_human_size(size, text):
    assert http.human_size(size) == text


@pytest.mark.parametrize(
    ("name", "is_dir", "href", "shown"),
    [
        ("a.txt", False, "a.txt", "a.txt"),
        ("sub", True, "sub/", "sub/"),
        ("with space.txt", False, "with%20space.txt", "with space.txt"),
        ("<b>.html", False, "%3Cb%3E.html", "&lt;b&gt;.html"),
        ('q"uote', False, "q%22uote", "q&quot;uote"),
        ("it's", False, "it%27s", "it&#x27;s"),
        ("a&b", False, "a%26b", "a&amp;b"),
        ("what?#x", False, "what%3F%23x", "what?#x"),
        ("100%", False, "100%25", "100%"),
        ("javascript:alert(1)", False, "javascript%3Aalert%281%29", "javascript:alert(1)"),
        ("<script>alert(1)</script>", False, "%3Cscript%3Ealert%281%29%3C/script%3E",
         "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("café", False, "caf%C3%A9", "café"),
        ("日本", True, "%E6%97%A5%E6%9C%AC/", "日本/"),
        ("caf\udce9", False, "caf%E9", "caf\ufffd"),  # undecodable byte 0xE9
        ("\ud800", False, "%ED%A0%80", "\ufffd\ufffd\ufffd"),  # lone surrogate
    ],
)
def test_render_index_escapes_names(name, is_dir, href, shown):
    (row,) = _rows(http.render_index("/", [(name, is_dir, 5, 0)]))
    assert _cells(row)[:2] == (href, shown)


@pytest.mark.parametrize(
    ("is_dir", "size", "mtime", "size_cell", "date_cell"),
    [
        (False, 0, 0, '<td class="s" title="0 bytes">0 B</td>',
         '<time datetime="1970-01-01T00:00:00Z">1970-01-01<span class="t"> 00:00</span></time>'),
        (False, 2**40, 1795634644, '<td class="s" title="1099511627776 bytes">1.0 TiB</td>',
         '<time datetime="2026-11-25T19:24:04Z">2026-11-25<span class="t"> 19:24</span></time>'),
        (True, 4096, RFC_EXAMPLE, '<td class="s">-</td>',
         '<time datetime="1994-11-06T08:49:37Z">1994-11-06<span class="t"> 08:49</span></time>'),
        (False, 1, 10**30, '<td class="s" title="1 bytes">1 B</td>', "-"),  # absurd mtime does not raise
    ],
)
def test_render_index_sizes_and_dates(is_dir, size, mtime, size_cell, date_cell):
    (row,) = _rows(http.render_index("/", [("x", is_dir, size, mtime)]))
    assert _cells(row)[2:] == (size_cell, date_cell)


def test_render_index_escapes_url_path():
    text = http.render_index("/<x>&\udcff/", []).decode("utf-8")
    assert "<title>Index of /&lt;x&gt;&amp;\ufffd/</title>" in text
    assert "<h1>Index of /&lt;x&gt;&amp;\ufffd/</h1>" in text


def test_render_index_skips_dot_entries():
    rows = _rows(http.render_index("/", [(".", True, 0, 0), ("..", True, 0, 0), (".hidden", False, 1, 0)]))
    assert len(rows) == 1 and 'href=".hidden"' in rows[0]


@given(
    st.lists(
        st.tuples(st.text(min_size=1), st.booleans(), st.integers(0, 2**63), st.integers(-2**40, 2**40)),
        max_size=5,
    ),
    st.text(),
    st.sampled_from(http.SORT_KEYS),
    st.booleans(),
)
def test_render_index_never_raises_and_is_utf8(entries, url_path, sort, descending):
    page = http.render_index(url_path, entries, sort=sort, descending=descending)
    assert "<script" not in page.decode("utf-8").lower().replace("&lt;script", "")


# --------------------------------------------------------------------------
# header / location: no input can add a header (issue 10, item 1)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [
    ("Location", "/a?x\r\nSet-Cookie: evil=1"),
    ("Location", "/a?x\nSet-Cookie: evil=1"),
    ("Location", "/a?x\rSet-Cookie: evil=1"),
    ("Content-Type", "text/plain\x00"),
    ("Content-Type", "text/\x0bplain"),
    ("Content-Type", "text/plain\x7f"),
    ("ETag", " \"x\""),
    ("ETag", "\"x\" "),
    ("Bad Name", "x"),
    ("Bad:Name", "x"),
    ("", "x"),
    ("X-\r\nY", "x"),
    ("Location", "\u0100"),
])
def test_header_refuses_what_could_split_the_response(name, value):
    with pytest.raises(http.HeaderError):
        http.header(name, value)


@pytest.mark.parametrize(("name", "value"), [
    ("Content-Type", "text/html; charset=utf-8"), ("ETag", '"0123"'), ("X-Tab", "a\tb"),
    ("Content-Length", "0"), ("Latin", "caf\u00e9"), ("Empty", ""),
])
def test_header_accepts_field_values(name, value):
    assert http.header(name, value) == (name, value)


@given(st.text(max_size=40))
def test_header_value_never_holds_a_control_character(value):
    try:
        _, checked = http.header("X", value)
    except http.HeaderError:
        return
    assert not any(ord(c) < 0x20 and c != "\t" or c == "\x7f" for c in checked)


@pytest.mark.parametrize(("path", "query", "expected"), [
    (b"/dir/", "", "/dir/"),
    (b"/dir/", "a=1&b=%41+c", "/dir/?a=1&b=%41+c"),
    (b"/dir/", "x\r\nSet-Cookie:evil=1;Path=/", "/dir/?x%0D%0ASet-Cookie:evil=1;Path=/"),
    (b"/dir/", "\x00\x7f\xff \"<>", "/dir/?%00%7F%FF%20%22%3C%3E"),
    (b"/a b/\xff/", "q", "/a%20b/%FF/?q"),
])
def test_location_percent_encodes_path_and_query(path, query, expected):
    assert http.location(path, query) == expected
    http.header("Location", expected)


@given(st.binary(max_size=30), st.text(st.characters(max_codepoint=0xFF), max_size=30))
def test_location_is_always_a_valid_header(path, query):
    http.header("Location", http.location(b"/" + path, query))


def test_render_index_notes_omitted_entries():
    page = http.render_index("/d/", [("a", False, 1, 0)], omitted=7).decode()
    assert "7 more entries not shown" in page and page.index("</table>") < page.index("7 more")
    assert "not shown" not in http.render_index("/d/", [("a", False, 1, 0)]).decode()
