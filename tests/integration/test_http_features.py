"""HTTP beyond the native plugin, against the real server and a real volume.

Mount ``/`` (volume unbit002) has the defaults; mount ``/opts`` (same volume)
turns on autoindex, max-age and strict symlinks and turns off precompressed.
"""

import gzip
import re
import subprocess

import pytest

from corpus import MTIME
from support import ours, request
from uwsgi_gluster import gfapi
from uwsgi_gluster.http import http_date
from uwsgi_gluster.seeding import write_tree

TEXT = b"0123456789abcdefghijklmnopqrstuvwxyz" * 100  # 3600 bytes
CSS = b"body { color: red; }\n" * 50
FILES = {
    "/range.txt": TEXT,
    "/site.css": CSS,
    "/site.css.gz": gzip.compress(CSS, mtime=0),
    "/site.css.br": b"pretend-brotli-" + CSS[:40],
    "/plain.js": b"console.log(1);\n",
    "/withindex/index.html": b"<p>the index</p>\n",
    "/listing/b.txt": b"bb",
    "/listing/a <&> \"q\".txt": b"aa",
    "/listing/sub/c.txt": b"c",
    "/listing/\u00e9t\u00e9.txt": b"summer",
    "/real/target.txt": b"through a link",
}
INI = """[uwsgi]
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit002,server=127.0.0.1:0
glusterfs-mount = mountpoint=/opts,volume=unbit002,server=127.0.0.1:0,\
autoindex=true,max-age=3600,symlinks=false,precompressed=false
route = ^/opts(/.*)?$ setscriptname:/opts
route = ^/opts(/.*)?$ setpathinfo:$1
threads = 4
"""


@pytest.fixture(scope="module")
def server(volumes, tmp_path_factory):
    fs = volumes["unbit002"]
    write_tree(fs, FILES, mtime=MTIME)
    for link, target in (("/link.txt", "real/target.txt"), ("/linkdir", "real")):
        try:
            gfapi.unlink(fs, link)
        except OSError:
            pass
        gfapi.symlink(fs, target, link)
    with ours(INI, tmp_path_factory.mktemp("features")).start() as srv:
        yield srv


def get(server, path, **headers):
    return request(server.port, "GET", path, {k.replace("_", "-"): v for k, v in headers.items()})


def head(server, path, **headers):
    return request(server.port, "HEAD", path, {k.replace("_", "-"): v for k, v in headers.items()})


# -- ranges ----------------------------------------------------------------

@pytest.mark.parametrize("spec,start,end", [
    ("bytes=0-9", 0, 10), ("bytes=100-", 100, 3600), ("bytes=-500", 3100, 3600),
    ("bytes=0-0", 0, 1), ("bytes=-1", 3599, 3600), ("bytes=3590-99999", 3590, 3600),
    ("bytes=-99999", 0, 3600),
])
def test_single_range_is_206(server, spec, start, end):
    reply = get(server, "/range.txt", Range=spec)
    assert reply.status == 206
    assert reply.body == TEXT[start:end]
    assert reply.header("Content-Range") == f"bytes {start}-{end - 1}/3600"
    assert reply.header("Content-Length") == str(end - start)


@pytest.mark.parametrize("spec", ["bytes=3600-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range_is_416(server, spec):
    reply = get(server, "/range.txt", Range=spec)
    assert reply.status == 416 and reply.header("Content-Range") == "bytes */3600" and reply.body == b""


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=5-2", "items=0-1", "bytes=abc"])
def test_several_or_invalid_ranges_give_the_whole_200(server, spec):
    reply = get(server, "/range.txt", Range=spec)
    assert (reply.status, reply.body) == (200, TEXT)


def test_accept_ranges_and_if_range(server):
    whole = get(server, "/range.txt")
    assert whole.header("Accept-Ranges") == "bytes"
    etag = whole.header("ETag")
    assert get(server, "/range.txt", Range="bytes=0-4", If_Range=etag).status == 206
    assert get(server, "/range.txt", Range="bytes=0-4", If_Range=http_date(MTIME)).status == 206
    assert get(server, "/range.txt", Range="bytes=0-4", If_Range='"stale"').status == 200
    assert get(server, "/range.txt", Range="bytes=0-4", If_Range=http_date(MTIME - 1)).status == 200


def test_curl_resume(server, tmp_path):
    out = tmp_path / "range.txt"
    out.write_bytes(TEXT[:1000])
    url = f"http://127.0.0.1:{server.port}/range.txt"
    subprocess.run(["curl", "-sf", "-C", "-", "-o", str(out), url], check=True, timeout=30)
    assert out.read_bytes() == TEXT


# -- validators ------------------------------------------------------------

def test_etag_is_strong_and_stable(server):
    first, second = get(server, "/range.txt"), head(server, "/range.txt")
    etag = first.header("ETag")
    assert re.fullmatch(r'"[^"]+"', etag) and second.header("ETag") == etag
    assert get(server, "/plain.js").header("ETag") != etag


@pytest.mark.parametrize("headers,status", [
    ({"If-None-Match": "{etag}"}, 304),
    ({"If-None-Match": '"other", {etag}'}, 304),
    ({"If-None-Match": "*"}, 304),
    ({"If-None-Match": '"other"'}, 200),
    ({"If-Modified-Since": "{lm}"}, 304),
    ({"If-Modified-Since": "Sat, 01 Jan 2050 00:00:00 GMT"}, 304),  # werkzeug#2392
    ({"If-Modified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"}, 200),
    ({"If-Modified-Since": "yesterday-ish"}, 200),
    ({"If-None-Match": '"other"', "If-Modified-Since": "{lm}"}, 200),  # INM wins over IMS
    ({"If-Match": "{etag}"}, 200),
    ({"If-Match": '"other"'}, 412),
    ({"If-Unmodified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"}, 412),
    ({"If-Unmodified-Since": "{lm}"}, 200),
])
def test_conditional_requests(server, headers, status):
    etag = get(server, "/range.txt").header("ETag")
    filled = {k: v.format(etag=etag, lm=http_date(MTIME)) for k, v in headers.items()}
    reply = request(server.port, "GET", "/range.txt", filled)
    assert reply.status == status
    if status == 304:
        assert reply.body == b""
        assert reply.header("ETag") == etag and reply.header("Last-Modified") == http_date(MTIME)
        assert reply.header("Content-Length") is None


def test_304_keeps_cache_control(server):
    etag = get(server, "/opts/range.txt").header("ETag")
    reply = request(server.port, "GET", "/opts/range.txt", {"If-None-Match": etag})
    assert reply.status == 304
    assert reply.header("Cache-Control") == "public, max-age=3600"
    assert reply.header("ETag") == etag


def test_cache_control_only_where_configured(server):
    assert get(server, "/opts/range.txt").header("Cache-Control") == "public, max-age=3600"
    assert get(server, "/range.txt").header("Cache-Control") is None


# -- precompressed variants ---------------------------------------------------

def test_gzip_variant_when_accepted(server):
    reply = get(server, "/site.css", Accept_Encoding="gzip")
    assert reply.header("Content-Encoding") == "gzip"
    assert gzip.decompress(reply.body) == CSS
    assert reply.header("Content-Type") == "text/css"
    assert reply.header("Vary") == "Accept-Encoding"


def test_brotli_preferred_when_accepted(server):
    reply = get(server, "/site.css", Accept_Encoding="gzip, br")
    assert reply.header("Content-Encoding") == "br" and reply.body == FILES["/site.css.br"]


def test_gzip_q0_refuses_gzip(server):  # whitenoise#352
    reply = get(server, "/site.css", Accept_Encoding="gzip;q=0")
    assert reply.header("Content-Encoding") is None and reply.body == CSS


def test_etag_differs_per_encoding(server):
    tags = {get(server, "/site.css", Accept_Encoding=e).header("ETag") for e in ("identity", "gzip", "br")}
    assert len(tags) == 3


def test_no_variant_means_identity_with_vary(server):
    reply = get(server, "/plain.js", Accept_Encoding="gzip, br")
    assert reply.header("Content-Encoding") is None and reply.header("Vary") == "Accept-Encoding"


def test_precompressed_switch_off(server):
    reply = get(server, "/opts/site.css", Accept_Encoding="gzip")
    assert reply.header("Content-Encoding") is None and reply.header("Vary") is None and reply.body == CSS


# -- directories -----------------------------------------------------------------

def test_directory_without_slash_redirects(server):
    reply = request(server.port, "GET", "/withindex?x=1")
    assert (reply.status, reply.header("Location")) == (301, "/withindex/?x=1")
    reply = request(server.port, "GET", "/opts/listing")
    assert (reply.status, reply.header("Location")) == (301, "/opts/listing/")


def test_directory_serves_index_html(server):
    reply = get(server, "/withindex/")
    assert reply.status == 200 and reply.body == b"<p>the index</p>\n"
    assert reply.header("Content-Type") == "text/html"


def test_directory_without_index_is_403_unless_autoindex(server):
    assert get(server, "/listing/").status == 403
    reply = get(server, "/opts/listing/")
    assert reply.status == 200 and reply.header("Content-Type") == "text/html; charset=utf-8"
    page = reply.body.decode()
    assert "a &lt;&amp;&gt; &quot;q&quot;.txt" in page and "<&>" not in page
    assert 'href="sub/"' in page and 'href="%C3%A9t%C3%A9.txt"' in page
    assert page.index("sub/") < page.index("a &lt;") < page.index("b.txt")  # dirs first, then sorted


# -- methods ---------------------------------------------------------------------

def test_options_lists_allowed_methods(server):
    reply = request(server.port, "OPTIONS", "/range.txt")
    assert reply.status == 200 and reply.header("Allow") == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(server, method):
    reply = request(server.port, method, "/range.txt")
    assert reply.status == 405 and reply.header("Allow") == "GET, HEAD, OPTIONS"


# -- path safety -------------------------------------------------------------------

@pytest.mark.parametrize("target,status", [
    ("/%2e%2e/%2e%2e/etc/passwd", 404),
    ("/../../../../etc/passwd", 404),
    ("/real/../../../../etc/hostname", 404),
    ("/range.txt%00.png", 400),
    ("/" + "a" * 5000, 403),
    ("/%ff%fe.txt", 404),
    ("/%25252e%25252e/", 404),
])
def test_bad_paths_get_4xx(server, target, status):
    assert request(server.port, "GET", target).status == status


def test_percent_decoding_is_done_once(server):
    assert request(server.port, "GET", "/range%2Etxt").status == 200  # decoded once by uWSGI
    assert request(server.port, "GET", "/range%252Etxt").status == 404  # not twice


def test_symlinks_followed_by_default_inside_the_volume(server):
    assert get(server, "/link.txt").body == b"through a link"
    assert get(server, "/linkdir/target.txt").body == b"through a link"


def test_symlinks_refused_when_mount_says_so(server):
    assert get(server, "/opts/link.txt").status == 404
    assert get(server, "/opts/linkdir/target.txt").status == 404
    assert get(server, "/opts/real/target.txt").body == b"through a link"


def test_server_keeps_serving_after_abuse(server):
    for target in ("/%00", "/" + "b" * 9000, "/../..", "//"):
        request(server.port, "GET", target)
    assert get(server, "/range.txt").body == TEXT
