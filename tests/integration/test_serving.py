"""Our server on real volumes: what the native plugin does for files, and its fixes."""

import concurrent.futures
import re
import time

import pytest

from corpus import CORPUS, MTIME
from corpus import CORPUS_INI as INI
from support import ROOT, ours, raw_request, request
from uwsgi_gluster.http import http_date


@pytest.fixture(scope="module")
def server(volumes, tmp_path_factory):
    with ours(INI, tmp_path_factory.mktemp("serving")).start() as srv:
        yield srv


def doc_ini(name: str) -> str:
    """An ini of ini/ with its port replaced by a placeholder, nothing else changed."""
    text = (ROOT / "ini" / name).read_text()
    assert "http-socket = :9090" in text
    return text.replace("http-socket = :9090", "http-socket = 127.0.0.1:{port}")


def test_get_file(server):
    reply = server.get("/hello.txt")
    assert reply.status == 200
    assert reply.body == b"Hello, Gluster"
    assert reply.header("Content-Type") == "text/plain"
    assert reply.header("Content-Length") == "14"
    assert reply.header("Last-Modified") == http_date(MTIME) == "Tue, 14 Nov 2023 22:13:20 GMT"


def test_head_has_headers_and_no_body(server):
    get, head = server.get("/index.html"), server.get("/index.html", method="HEAD")
    assert head.status == 200 and head.body == b""
    for name in ("Content-Type", "Content-Length", "Last-Modified"):
        assert head.header(name) == get.header(name)


def test_missing_file_is_404(server):
    reply = server.get("/no/such/file.txt")
    assert (reply.status, reply.body, reply.header("Content-Type")) == (404, b"Not Found", "text/plain")


def test_empty_path_info_is_403(server):
    answer = raw_request(server.port, b"GET ?only=query HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 403 Forbidden") or answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert answer.endswith(b"Forbidden")


@pytest.mark.parametrize("path,content_type", [
    ("/index.html", "text/html"), ("/style.css", "text/css"), ("/data.json", "application/json"),
    ("/image.png", "image/png"), ("/archive.tar.gz", "application/gzip"), ("/README", None),
    ("/UPPER.TXT", None), ("/dir.d/file", None),
])
def test_content_type_from_mime_types(server, path, content_type):
    reply = server.get(path)
    assert reply.status == 200
    assert reply.header("Content-Type") == content_type


@pytest.mark.parametrize("path", ["/with space/file name.txt",
                                  "/\u00fcn\u00efc\u00f6d\u00e9/\u0444\u0430\u0439\u043b.txt",
                                  "/a/b/c/deep.txt", "/percent%41.txt", "/empty.txt", "/sizes/10MiB.bin"])
def test_names_and_sizes(server, path):
    reply = server.get(path)
    assert reply.status == 200
    assert reply.body == CORPUS[path]
    assert reply.header("Content-Length") == str(len(CORPUS[path]))


def test_directory_is_not_served_as_a_broken_200(server):
    reply = server.get("/a/b")
    assert (reply.status, reply.header("Location")) == (301, "/a/b/")
    assert server.get("/a/b/").status == 403  # no index.html, no autoindex


def test_nul_byte_in_path_is_400(server):
    assert request(server.port, "GET", "/hello.txt%00.png").status == 400


def test_dot_dot_stays_inside_the_volume(server):
    assert request(server.port, "GET", "/../../../../etc/passwd").status == 404
    reply = request(server.port, "GET", "/a/../hello.txt")
    assert (reply.status, reply.body) == (200, b"Hello, Gluster")


def test_concurrent_requests_on_threads(server):
    paths = [p for p in CORPUS if not p.endswith("10MiB.bin")] * 4
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(server.get, paths))
    assert [r.status for r in replies] == [200] * len(paths)
    assert [r.body for r in replies] == [CORPUS[p] for p in paths]


def test_processes_serve_concurrently(volumes, tmp_path):
    ini = INI.replace("threads = 8", "processes = 4\nmaster = true")
    with ours(ini, tmp_path).start() as srv:
        paths = ["/sizes/1048577.bin", "/hello.txt", "/movie.mp4", "/sizes/10MiB.bin"] * 6
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(srv.get, paths))
        assert [r.body for r in replies] == [CORPUS[p] for p in paths]
        pids = set(re.findall(r"worker (\d) connected to 127\.0\.0\.1:24007", srv.log()))
        assert pids == {"1", "2", "3", "4"}


def test_lazy_apps_connect_in_each_worker(volumes, tmp_path):
    ini = INI.replace("threads = 8", "processes = 2\nmaster = true\nlazy-apps = true")
    with ours(ini, tmp_path).start() as srv:
        assert srv.get("/hello.txt").body == b"Hello, Gluster"
        # each worker connects as it starts: the second may log it after the first answered
        deadline = time.monotonic() + 30
        while len(re.findall(r"worker \d connected to", srv.log())) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(re.findall(r"worker \d connected to", srv.log())) == 2, srv.log()


def test_documentation_single_server_ini(volumes, tmp_path):
    with ours(doc_ini("single-server.ini"), tmp_path).start() as srv:
        assert srv.get("/hello.txt").body == b"Hello, Gluster"


def test_dead_first_server_falls_back_to_the_next(volumes, tmp_path):
    with ours(doc_ini("server-list.ini"), tmp_path).start() as srv:
        reply = srv.get("/hello.txt")
        assert (reply.status, reply.body) == (200, b"Hello, Gluster")
        log = srv.log()
        assert "try connect to 127.0.0.1:24017 for mountpoint / on worker 1 ..." in log
        assert "worker 1 cannot connect to 127.0.0.1:24017" in log
        assert "worker 1 connected to 127.0.0.1:24007" in log


def test_three_mountpoints_by_script_name(volumes, tmp_path):
    with ours(doc_ini("routing.ini"), tmp_path).start() as srv:
        assert srv.get("/whoami.txt").body == b"unbit001"
        assert srv.get("/foo/whoami.txt").body == b"unbit002"
        assert srv.get("/bar/whoami.txt").body == b"unbit003"
        assert srv.get("/foo/hello.txt").status == 404  # only on unbit001


def test_documentation_three_mountpoints_ini_serves_default_mount(volumes, tmp_path):
    with ours(doc_ini("three-mountpoints.ini"), tmp_path).start() as srv:
        assert srv.get("/whoami.txt").body == b"unbit001"
        assert srv.get("/foo/whoami.txt").status == 404  # no front server sets SCRIPT_NAME
        assert len(re.findall(r"worker 1 connected to 127\.0\.0\.1:24007", srv.log())) == 3


def test_setpathinfo_rewrites_the_file(volumes, tmp_path):
    ini = INI + "route = ^/greeting$ setpathinfo:/hello.txt\n"
    with ours(ini, tmp_path).start() as srv:
        assert srv.get("/greeting").body == b"Hello, Gluster"


def test_unix_socket_server(volumes, tmp_path):
    ini = INI.replace("server=127.0.0.1:0", "server=/var/run/glusterd.socket")
    with ours(ini, tmp_path).start() as srv:
        assert srv.get("/hello.txt").body == b"Hello, Gluster"
        assert "worker 1 connected to /var/run/glusterd.socket" in srv.log()


def test_volfile_mount(volumes, tmp_path):
    volfile = "/var/lib/glusterd/vols/unbit001/unbit001.tcp-fuse.vol"
    ini = INI.replace("server=127.0.0.1:0", f"volfile={volfile}")
    with ours(ini, tmp_path).start() as srv:
        assert srv.get("/hello.txt").body == b"Hello, Gluster"
        assert "worker 1 connected using volfile" in srv.log()


def test_mount_given_on_the_command_line(volumes, tmp_path):
    ini = INI.replace("glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0\n", "")
    srv = ours(ini, tmp_path)
    with srv.start(extra_args=["--glusterfs-mount", "mountpoint=/,volume=unbit002,server=127.0.0.1:0"]):
        assert srv.get("/whoami.txt").body == b"unbit002"
