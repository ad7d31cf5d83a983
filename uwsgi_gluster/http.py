"""Pure HTTP logic for serving files: dates, validators, ranges, negotiation.

Nothing here does I/O or imports uwsgi; every function takes plain values and
returns plain values, so the WSGI responder stays a thin layer of glue and all
protocol decisions are unit-tested here. Standard library only.

Contracts (RFC 9110 unless noted):

* Dates: :func:`http_date` formats an IMF-fixdate exactly like uWSGI's
  ``uwsgi_http_date`` (English names from fixed tables, never the C locale).
  :func:`parse_http_date` accepts the three forms of section 5.6.7
  (IMF-fixdate, RFC 850, asctime) and returns ``None`` for anything else; it
  never raises.
* Validators: :func:`make_etag` returns a *strong* entity-tag that changes with
  the file's identity, size, modification and change times in nanoseconds and
  the content-coding of the bytes sent, so a gzip and an identity body never share
  an ETag. ``Last-Modified`` is the mtime truncated to whole seconds, and every
  mtime comparison here uses that same truncated value.
* Ranges: :func:`parse_range` understands a single ``bytes`` range and answers
  ``None`` (serve the whole representation, 200), :data:`UNSATISFIABLE` (416)
  or ``(start, end_exclusive)`` (206). Several ranges are deliberately served
  as a whole 200 rather than as ``multipart/byteranges``.
* Preconditions: :func:`evaluate_preconditions` follows the order of section
  13.2.2 and returns 200, 304 or 412; :func:`if_range_allows` decides whether a
  Range may be honoured (section 13.1.5).
* Content-coding: :func:`parse_accept_encoding` / :func:`accepts_encoding`
  honour q-values (``q=0`` refuses), ``*`` and a missing header (only
  ``identity`` is then acceptable).
* Response headers: every header we send is made by :func:`header`, which
  refuses (:class:`HeaderError`) a name that is not an RFC 9110 token and a
  value holding CR, LF, NUL or any other control character but HTAB, so no
  input can add a header or split a response. :func:`location` builds the
  ``Location`` of a redirect from raw path bytes and a query string, both
  percent-encoded.
* Responses: :func:`cache_control`, :func:`not_modified_headers` (the headers
  a 304 keeps), :data:`ALLOW_HEADER`, and :func:`render_index` for an
  autoindex page.
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import html
import re
import time
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union
from urllib.parse import quote

__all__ = [
    "ALLOW_HEADER",
    "HeaderError",
    "NOT_MODIFIED_HEADERS",
    "UNSATISFIABLE",
    "accepts_encoding",
    "allowed_methods",
    "cache_control",
    "content_range",
    "escape_html",
    "evaluate_preconditions",
    "header",
    "http_date",
    "index_order",
    "if_range_allows",
    "location",
    "make_etag",
    "not_modified_headers",
    "parse_accept_encoding",
    "parse_http_date",
    "parse_range",
    "render_index",
    "unsatisfied_range",
]

# --------------------------------------------------------------------------
# Dates (RFC 9110 section 5.6.7)
# --------------------------------------------------------------------------

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # tm_wday order
_WEEKDAYS_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.lower(): number for number, name in enumerate(_MONTHS, 1)}

_DAY = "|".join(_WEEKDAYS)
_DAY_LONG = "|".join(_WEEKDAYS_LONG)
_MONTH = "|".join(_MONTHS)
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"

# Sun, 06 Nov 1994 08:49:37 GMT
_IMF_FIXDATE = re.compile(
    rf"(?:{_DAY}), (?P<day>[0-9]{{2}}) (?P<month>{_MONTH}) (?P<year>[0-9]{{4}}) {_TIME} GMT",
    re.IGNORECASE | re.ASCII,
)
# Sunday, 06-Nov-94 08:49:37 GMT
_RFC850_DATE = re.compile(
    rf"(?:{_DAY_LONG}), (?P<day>[0-9]{{2}})-(?P<month>{_MONTH})-(?P<year>[0-9]{{2}}) {_TIME} GMT",
    re.IGNORECASE | re.ASCII,
)
# Sun Nov  6 08:49:37 1994
_ASCTIME_DATE = re.compile(
    rf"(?:{_DAY}) (?P<month>{_MONTH}) (?P<day>[ 0-9][0-9]) {_TIME} (?P<year>[0-9]{{4}})",
    re.IGNORECASE | re.ASCII,
)


def http_date(seconds: int) -> str:
    """Format ``seconds`` since the epoch as an IMF-fixdate in GMT.

    Same output as uWSGI's ``uwsgi_http_date``; day and month names come from
    fixed English tables, so the process locale never leaks into headers.
    """
    t = time.gmtime(int(seconds))
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _WEEKDAYS[t.tm_wday],
        t.tm_mday,
        _MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def _rfc850_year(two_digits: int, now: Optional[float] = None) -> int:
    """Expand an RFC 850 two-digit year (RFC 9110 section 5.6.7).

    A year that would be more than 50 years in the future is taken as the most
    recent past year with the same last two digits; otherwise the latest year
    with those digits that is at most 50 years ahead is meant.
    """
    current = time.gmtime(time.time() if now is None else now).tm_year
    year = current - current % 100 + two_digits
    if year > current + 50:
        year -= 100
    elif year + 100 <= current + 50:
        year += 100
    return year


def parse_http_date(value: Optional[str]) -> Optional[int]:
    """Parse an HTTP-date into seconds since the epoch, or ``None``.

    IMF-fixdate, the obsolete RFC 850 form and C's asctime form are accepted,
    names case-insensitively and surrounded by optional whitespace. The weekday
    is not checked against the date (as in werkzeug). Anything else -- ``None``,
    a non-string, an impossible date such as 31 Feb, a time zone other than
    GMT -- gives ``None``; this function never raises.
    """
    if not isinstance(value, str):
        return None
    value = value.strip(" \t")
    match = _IMF_FIXDATE.fullmatch(value) or _ASCTIME_DATE.fullmatch(value)
    if match is not None:
        year = int(match["year"])
    else:
        match = _RFC850_DATE.fullmatch(value)
        if match is None:
            return None
        year = _rfc850_year(int(match["year"]))
    hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"])
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second
        return None
    try:
        # validates the day against the month (and leap years)
        datetime.date(year, _MONTH_NUMBER[match["month"].lower()], int(match["day"]))
    except ValueError:
        return None
    return calendar.timegm(
        (year, _MONTH_NUMBER[match["month"].lower()], int(match["day"]), hour, minute, second)
    )


# --------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------


def make_etag(identity: Union[int, str, bytes], size: int, mtime_ns: int, ctime_ns: int,
              encoding: str = "") -> str:
    """A strong entity-tag ``"<32 hex digits>"`` for one representation.

    ``identity`` is whatever names the file for its lifetime (inode number,
    GFID as string or bytes). The tag changes when any of identity, size,
    mtime (nanoseconds), ctime (nanoseconds: no client can set it, so a
    rewrite that restores size and mtime still changes it) or the
    content-coding changes: a gzip body and the identity body of the same
    file are different representations and must not share a strong ETag
    (RFC 9110 section 8.8.3). ``encoding`` is compared case-insensitively
    and ``"identity"`` means the same as ``""``.
    """
    if isinstance(identity, (bytes, bytearray)):
        identity = bytes(identity).hex()
    coding = encoding.strip().lower()
    if coding == "identity":
        coding = ""
    # repr of a tuple is unambiguous: no separator inside a field can collide
    material = repr((type(identity).__name__, identity, int(size), int(mtime_ns), int(ctime_ns), coding))
    digest = hashlib.blake2b(material.encode("utf-8", "surrogateescape"), digest_size=16)
    return '"%s"' % digest.hexdigest()


# --------------------------------------------------------------------------
# Response headers
# --------------------------------------------------------------------------

#: RFC 9110 5.1 field-name (a token).
_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII).fullmatch
#: RFC 9110 5.5 field-value: VCHAR and obs-text, with SP and HTAB only inside;
#: no other control character.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?").fullmatch


class HeaderError(ValueError):
    """A header name or value that would change the response's framing."""


def header(name: str, value: str) -> Tuple[str, str]:
    """The one way a response header is made: ``(name, value)``, checked.

    ``name`` must be a token; ``value`` may hold only visible ASCII, SP,
    HTAB and Latin-1 obs-text (WSGI headers are Latin-1 strings), never CR,
    LF, NUL, DEL or another control character, and no leading or trailing
    blank. Raises :class:`HeaderError` otherwise, so a header that could
    end the head early or add a header of somebody else's choosing is never
    sent.
    """
    if not isinstance(name, str) or not _FIELD_NAME(name):
        raise HeaderError(f"invalid header name {name!r}")
    if not isinstance(value, str) or not _FIELD_VALUE(value):
        raise HeaderError(f"invalid value for header {name}: {value!r}")
    return (name, value)


#: Characters kept as they are in a redirect's query: RFC 3986 pchar, "/" and
#: "?" plus "%" (the client's escapes stay as sent). Everything else, CR, LF,
#: SP, controls and non-ASCII bytes included, is percent-encoded.
_QUERY_SAFE = "!$&'()*+,;=:@/?-._~%"


def location(path: bytes, query: str = "") -> str:
    """A ``Location`` value for ``path`` (raw bytes) and a query string.

    The path is percent-encoded keeping only ``/`` and unreserved
    characters; ``query`` (a WSGI string: Latin-1 code points stand for
    bytes) is kept as far as it is valid RFC 3986 query text and
    percent-encoded elsewhere. The result is plain ASCII, safe for
    :func:`header`.
    """
    value = quote(path, safe="/")
    if query:
        value += "?" + quote(query.encode("latin-1", "replace"), safe=_QUERY_SAFE)
    return value

allowed_methods = ("GET", "HEAD", "OPTIONS")
ALLOW_HEADER = ", ".join(allowed_methods)

#: Headers a 304 Not Modified keeps from the 200 it stands for (RFC 9110
#: section 15.4.5); everything else (Content-Length, Content-Type,
#: Content-Encoding, ...) describes a body that is not sent and is dropped.
NOT_MODIFIED_HEADERS = (
    "Cache-Control",
    "Content-Location",
    "Date",
    "ETag",
    "Expires",
    "Last-Modified",
    "Vary",
)
_NOT_MODIFIED_LOWER = frozenset(name.lower() for name in NOT_MODIFIED_HEADERS)


def not_modified_headers(headers: Iterable[Tuple[str, str]]) -> List[Tuple[str, str]]:
    """Keep, in order and as spelled, only the headers a 304 may carry."""
    return [(name, value) for name, value in headers if name.lower() in _NOT_MODIFIED_LOWER]


def cache_control(max_age: Optional[int]) -> Optional[str]:
    """``'public, max-age=N'`` for a configured max age, ``None`` when unset.

    A negative age is clamped to 0 (a negative delta-seconds is invalid).
    """
    if max_age is None:
        return None
    return "public, max-age=%d" % max(0, int(max_age))


# --------------------------------------------------------------------------
# Range requests (RFC 9110 section 14)
# --------------------------------------------------------------------------


class _Unsatisfiable:
    """Type of :data:`UNSATISFIABLE`; compare with ``is``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSATISFIABLE"

    def __reduce__(self) -> str:
        return "UNSATISFIABLE"


#: :func:`parse_range` result meaning "answer 416 with ``Content-Range:
#: bytes */size``" (use :func:`unsatisfied_range`).
UNSATISFIABLE = _Unsatisfiable()

_RANGE_SPEC = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.ASCII)


def _position(digits: str, size: int) -> int:
    """``int(digits)`` capped at ``size + 1``.

    Every later use only compares a position with ``size``, so capping keeps
    the answer while sparing ``int()`` of a thousands-digit string (which
    Python refuses beyond ``sys.get_int_max_str_digits()``).
    """
    digits = digits.lstrip("0") or "0"
    if len(digits) > len(str(size)) + 1:
        return size + 1
    return min(int(digits), size + 1)


def _digits_less(a: str, b: str) -> bool:
    """``int(a) < int(b)`` for strings of ASCII digits of any length."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) < (len(b), b)


def parse_range(header: Optional[str], size: int) -> Union[None, _Unsatisfiable, Tuple[int, int]]:
    """Interpret a ``Range`` header against a representation of ``size`` bytes.

    Returns one of:

    * ``None``: ignore the header and serve the whole representation with
      200. This is the answer for no header, a unit other than ``bytes``
      (compared case-insensitively), any syntax error (including
      ``bytes=5-2``, where last < first) and for **more than one range**: we
      never build ``multipart/byteranges`` responses and serve several ranges
      as a plain 200 of the whole, which RFC 9110 14.2 permits. A list is
      "more than one range" even when its members overlap or repeat.
    * :data:`UNSATISFIABLE`: answer 416 with ``Content-Range: bytes */size``.
      That is the case when first-pos >= size, for ``bytes=-0`` and for any
      range on an empty representation (size 0).
    * ``(start, end_exclusive)`` with ``0 <= start < end_exclusive <= size``:
      answer 206 with :func:`content_range`.

    Per RFC 9110 14.1.2: ``bytes=0-0`` and ``bytes=-1`` are one byte; a
    last-pos at or beyond the end is clamped to the last byte; a suffix
    longer than the representation selects all of it (``(0, size)``); an open
    range ``bytes=N-`` runs to the end. Blanks around ``=``, ``-`` and list
    items are tolerated, and empty list elements (``bytes=,0-1``) are skipped.
    Numbers of any length are fine. Never raises for a ``str``.
    """
    if not isinstance(header, str):
        return None
    unit, sep, ranges = header.partition("=")
    if not sep or unit.strip(" \t").lower() != "bytes":
        return None
    specs = [spec for spec in ranges.split(",") if spec.strip(" \t")]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None  # "bytes=-"
        suffix = _position(last, size)
        if suffix == 0 or size <= 0:
            return UNSATISFIABLE
        return (max(0, size - suffix), size)
    if last and _digits_less(last, first):
        return None
    start = _position(first, size)
    if start >= size:
        return UNSATISFIABLE
    end = size if not last else min(_position(last, size) + 1, size)
    return (start, end)


def content_range(start: int, end_exclusive: int, size: int) -> str:
    """``Content-Range`` value of a 206, e.g. ``'bytes 0-0/10'`` for ``(0, 1)``."""
    return "bytes %d-%d/%d" % (start, end_exclusive - 1, size)


def unsatisfied_range(size: int) -> str:
    """``Content-Range`` value of a 416, e.g. ``'bytes */10'``."""
    return "bytes */%d" % size


# --------------------------------------------------------------------------
# Conditional requests (RFC 9110 section 13)
# --------------------------------------------------------------------------

# one list member: W/"opaque" or "opaque" (commas may appear inside quotes)
_ETAG_ITEM = re.compile(r'[ \t]*(?:([Ww]/)?"([^"]*)")?[ \t]*(?:,|$)')


def _parse_etag(etag: str) -> Tuple[bool, str]:
    """``(weak, opaque)`` of one entity-tag as we produce it."""
    weak = etag[:2] in ("W/", "w/")
    if weak:
        etag = etag[2:]
    return weak, etag.strip('"')


def _etag_list_matches(field: str, etag: str, strong: bool) -> bool:
    """Does the If-Match / If-None-Match ``field`` match ``etag``?

    ``*`` matches any current representation (and we only get here for an
    existing file). Otherwise the field is a comma-separated list of
    entity-tags; with ``strong`` both tags must be strong and equal (strong
    comparison, 8.8.3.2), else only the opaque parts are compared (weak
    comparison). Unquoted or otherwise malformed members never match.
    """
    if field.strip(" \t") == "*":
        return True
    our_weak, ours = _parse_etag(etag)
    if strong and our_weak:
        return False
    pos, end = 0, len(field)
    while pos < end:
        match = _ETAG_ITEM.match(field, pos)
        if match is None or match.end() == pos:
            # skip a malformed member up to the next comma
            comma = field.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        pos = match.end()
        weak, opaque = match.group(1), match.group(2)
        if opaque is None:
            continue  # empty list element
        if strong and weak:
            continue
        if opaque == ours:
            return True
    return False


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    """A conditional header, or ``None`` when absent or blank (blank = absent)."""
    value = headers.get(name)
    if value is None or not value.strip(" \t"):
        return None
    return value


def evaluate_preconditions(method: str, headers: Mapping[str, str], etag: str, mtime: int) -> int:
    """Evaluate the conditional headers of a request on an existing file.

    ``headers`` is keyed like a WSGI environ (``HTTP_IF_MATCH``,
    ``HTTP_IF_NONE_MATCH``, ``HTTP_IF_MODIFIED_SINCE``,
    ``HTTP_IF_UNMODIFIED_SINCE``); a blank value counts as absent. ``etag`` is
    the representation's current ETag and ``mtime`` its modification time in
    seconds (truncated to a whole second, as sent in ``Last-Modified``).

    Returns 200 (go on; a Range may still apply), 304 or 412, in the order of
    RFC 9110 13.2.2:

    1. If-Match present: 412 unless it is ``*`` or lists an entity-tag that is
       strongly equal to ``etag``.
    2. Otherwise If-Unmodified-Since: 412 if ``mtime`` is later than the date;
       an unparsable date is ignored.
    3. If-None-Match present: when ``*`` or any listed tag is weakly equal to
       ``etag``, 304 for GET/HEAD and 412 for any other method; otherwise 200
       and If-Modified-Since is not looked at.
    4. Otherwise, for GET/HEAD only, If-Modified-Since: 304 if ``mtime`` is not
       later than the date. An unparsable date is ignored (200). A date later
       than ``mtime`` -- even one in the future -- is a 304, not an error
       (werkzeug#2392).
    """
    mtime = int(mtime)
    if_match = _header(headers, "HTTP_IF_MATCH")
    if if_match is not None:
        if not _etag_list_matches(if_match, etag, strong=True):
            return 412
    else:
        since = parse_http_date(_header(headers, "HTTP_IF_UNMODIFIED_SINCE"))
        if since is not None and mtime > since:
            return 412
    safe = method in ("GET", "HEAD")
    if_none_match = _header(headers, "HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        if _etag_list_matches(if_none_match, etag, strong=False):
            return 304 if safe else 412
        return 200
    if safe:
        since = parse_http_date(_header(headers, "HTTP_IF_MODIFIED_SINCE"))
        if since is not None and mtime <= since:
            return 304
    return 200


def if_range_allows(if_range: Optional[str], etag: str, mtime: int) -> bool:
    """May the request's Range be honoured, given its ``If-Range`` value?

    True without If-Range. An entity-tag must be strong and exactly equal to
    the (strong) ``etag``; a weak tag never matches. An HTTP-date must equal
    ``mtime`` (whole seconds) exactly. Anything else -- blank, malformed --
    is False, which only means "send the whole representation" and is safe.
    """
    if if_range is None:
        return True
    value = if_range.strip(" \t")
    if value.startswith('"'):
        return len(value) >= 2 and value.endswith('"') and value == etag and not etag.startswith("W/")
    if value[:2] in ("W/", "w/"):
        return False
    date = parse_http_date(value)
    return date is not None and date == int(mtime)


# --------------------------------------------------------------------------
# Content negotiation: Accept-Encoding (RFC 9110 section 12.5.3)
# --------------------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", re.ASCII)
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?", re.ASCII)
# RFC 9110 8.4.1: x-gzip and x-compress are the same codings as gzip/compress
_CODING_ALIASES = {"x-gzip": "gzip", "x-compress": "compress"}


def _coding_name(coding: str) -> str:
    coding = coding.strip(" \t").lower()
    return _CODING_ALIASES.get(coding, coding)


def parse_accept_encoding(header: Optional[str]) -> Dict[str, float]:
    """Map each coding of an ``Accept-Encoding`` value to its q-value.

    Names are lower-cased (``x-gzip`` counts as ``gzip``), a member without
    ``q`` gets 1.0, and a ``q`` that is not a valid qvalue (``q=abc``,
    ``q=2``, ``q=nan``, ``q=-1``, ``q=``) is taken as 0, i.e. refused: a
    malformed preference can only fall back to identity. When a coding is
    listed twice the lowest q wins. Members that are not tokens are skipped.
    ``None`` (no header) and ``""`` give ``{}``.
    """
    prefs: Dict[str, float] = {}
    if not isinstance(header, str):
        return prefs
    for member in header.split(","):
        coding, *params = member.split(";")
        coding = _coding_name(coding)
        if not _TOKEN.fullmatch(coding):
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip(" \t").lower() == "q":
                value = value.strip(" \t")
                q = float(value) if _QVALUE.fullmatch(value) else 0.0
                break
        prefs[coding] = min(q, prefs.get(coding, q))
    return prefs


def accepts_encoding(header: Optional[str], coding: str) -> bool:
    """May a response body be sent with content-coding ``coding``?

    Without an ``Accept-Encoding`` header only ``identity`` is acceptable (we
    never compress for clients that did not ask). Otherwise a listed coding
    is acceptable when its q is above 0 (``gzip;q=0`` refuses gzip,
    whitenoise#352); ``*`` gives the q of every coding not listed. Identity
    (``"identity"`` or ``""``) is acceptable unless refused explicitly with
    ``identity;q=0`` or by ``*;q=0`` without an identity member. Names are
    case-insensitive.
    """
    coding = _coding_name(coding)
    prefs = parse_accept_encoding(header)
    if coding in ("", "identity"):
        q = prefs.get("identity", prefs.get("*", 1.0))
        return q > 0
    if coding in prefs:
        return prefs[coding] > 0
    return prefs.get("*", 0.0) > 0


# --------------------------------------------------------------------------
# Autoindex page
# --------------------------------------------------------------------------


def escape_html(text: str) -> str:
    """Escape ``& < > " '`` for HTML text and quoted attribute values."""
    return html.escape(text, quote=True)


def _raw_bytes(text: str) -> bytes:
    """The bytes a name stands for; undecodable names arrive surrogate-escaped."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate outside U+DC80..U+DCFF
        return text.encode("utf-8", "surrogatepass")


def _display(text: str) -> str:
    """``text`` as HTML-escaped, valid Unicode (undecodable bytes become U+FFFD)."""
    return escape_html(_raw_bytes(text).decode("utf-8", "replace"))


def _display_date(mtime: int) -> str:
    try:
        return http_date(mtime)
    except (OverflowError, OSError, ValueError):
        return "-"


def index_order(entry: Tuple[str, bool, int, int]) -> Tuple[bool, str]:
    """The order of an autoindex page's rows: directories first, then by name
    (code point order, locale-independent)."""
    return (not entry[1], entry[0])


def render_index(url_path: str, entries: List[Tuple[str, bool, int, int]], omitted: int = 0) -> bytes:
    """The UTF-8 HTML page listing a directory.

    ``url_path`` is the decoded request path of the directory; it is only
    shown (title and heading). ``entries`` are ``(name, is_dir, size,
    mtime)``; ``.`` and ``..`` are skipped. Rows are in :func:`index_order`.
    ``omitted`` > 0 adds a note after the table that this many more entries
    are not shown.

    Links are relative, so the page works under any mount point; the responder
    must therefore serve directories at a URL ending in ``/`` (redirect
    otherwise). A link is the name percent-encoded with
    :func:`urllib.parse.quote` (``/`` kept; ``:`` encoded, so a name never
    reads as a URL scheme), plus ``/`` for a directory; the visible text is
    HTML-escaped. Names that are not valid UTF-8 (surrogate-escaped) link to
    their original bytes and display with U+FFFD. A ``../`` link leads up,
    except at ``/``. Sizes are bytes (``-`` for directories) and times are
    HTTP dates.
    """
    url_path = url_path or "/"
    title = _display(url_path)
    rows = []
    if url_path.strip("/"):
        rows.append('<tr><td><a href="../">../</a></td><td>-</td><td>-</td></tr>')
    for name, is_dir, size, mtime in sorted(entries, key=index_order):
        if name in (".", "..") or not name:
            continue
        suffix = "/" if is_dir else ""
        href = escape_html(quote(_raw_bytes(name), safe="/") + suffix)
        rows.append(
            '<tr><td><a href="%s">%s%s</a></td><td>%s</td><td>%s</td></tr>'
            % (href, _display(name), suffix, "-" if is_dir else "%d" % size, _display_date(mtime))
        )
    note = (["<p>%d more entries not shown (a listing shows at most %d).</p>" % (omitted, len(entries))]
            if omitted > 0 else [])
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            "<head>",
            '<meta charset="utf-8">',
            "<title>Index of %s</title>" % title,
            "</head>",
            "<body>",
            "<h1>Index of %s</h1>" % title,
            "<table>",
            "<tr><th>Name</th><th>Size</th><th>Last modified</th></tr>",
            *rows,
            "</table>",
            *note,
            "</body>",
            "</html>",
            "",
        ]
    )
    return page.encode("utf-8")
