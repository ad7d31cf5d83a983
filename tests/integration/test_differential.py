"""Side by side with Debian's native plugin on the same volume and the same ini.

For every file of the corpus, GET and HEAD must give the same status,
Content-Type, Content-Length, Last-Modified and body. Where the native plugin
is known to be wrong, the test pins both behaviours.
"""

import pytest

from corpus import CORPUS, EXTRA_PATHS
from corpus import CORPUS_INI as INI
from support import native, ours, raw_request, request, summary, url_path, without_error_length


@pytest.fixture(scope="module")
def pair(volumes, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("differential")
    with native(INI, workdir).start() as theirs, ours(INI, workdir).start() as mine:
        yield theirs, mine


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", sorted(CORPUS) + EXTRA_PATHS)
def test_same_response_as_native(pair, path, method):
    theirs, mine = pair
    expected = summary(request(theirs.port, method, url_path(path)))
    got = summary(request(mine.port, method, url_path(path)))
    assert got == expected
    if method == "GET" and path in CORPUS:
        assert got[2] == CORPUS[path]


def test_empty_path_info_same_as_native(pair):
    theirs, mine = pair
    ask = b"GET ?x=1 HTTP/1.0\r\n\r\n"
    assert without_error_length(raw_request(mine.port, ask)) == raw_request(theirs.port, ask)


def test_native_bug_directory_gives_broken_200(pair):
    theirs, mine = pair
    assert request(theirs.port, "HEAD", "/a/b").status == 200  # native: 200, Content-Length 4096, no body
    assert request(mine.port, "HEAD", "/a/b").status == 301


def test_native_bug_dead_first_server_breaks_every_file(volumes, tmp_path):
    ini = INI.replace("server=127.0.0.1:0", "server=127.0.0.1:24017;127.0.0.1:0")
    with native(ini, tmp_path).start() as theirs, ours(ini, tmp_path).start() as mine:
        assert request(theirs.port, "GET", "/hello.txt").status == 404
        reply = request(mine.port, "GET", "/hello.txt")
        assert (reply.status, reply.body) == (200, b"Hello, Gluster")


ROUTED = """[uwsgi]
plugins = glusterfs
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0
glusterfs-mount = mountpoint=/foo,volume=unbit002,server=127.0.0.1:0
glusterfs-mount = mountpoint=/bar,volume=unbit003,server=127.0.0.1:0
route = ^/foo(/.*)$ setscriptname:/foo
route = ^/foo(/.*)$ setpathinfo:$1
route = ^/keep(/.*)$ setscriptname:/foo
route = ^/byapp(/.*)$ setapp:/bar
route = ^/byapp(/.*)$ setpathinfo:$1
threads = 4
"""


@pytest.mark.parametrize("target", [
    "/whoami.txt", "/foo/whoami.txt", "/foo/hello.txt", "/keep/whoami.txt", "/byapp/whoami.txt",
    "/byapp/hello.txt", "/bar/whoami.txt",
])
def test_non_root_mountpoints_open_the_same_paths_as_native(volumes, tmp_path_factory, target):
    """SCRIPT_NAME (setscriptname) or UWSGI_APPID (setapp) picks the mount, and
    PATH_INFO, not including the mountpoint, is what is opened in its volume."""
    workdir = tmp_path_factory.mktemp("routed")
    with native(ROUTED, workdir).start() as theirs, ours(ROUTED, workdir).start() as mine:
        expected = summary(request(theirs.port, "GET", target))
        assert summary(request(mine.port, "GET", target)) == expected
