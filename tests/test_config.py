"""Reading glusterfs settings like uWSGI reads its configuration (pure units)."""

import pytest

from uwsgi_gluster.config import (ConfigError, MountSpec, Server, parse_mount, parse_server, read_settings,
                                  split_kvlist)


@pytest.mark.parametrize("text,expected", [
    ("a=1,b=2", [("a", "1"), ("b", "2")]),
    ("a=1=2", [("a", "1=2")]),
    (r"a=x\,y,b=2", [("a", "x,y"), ("b", "2")]),
    (r"a\=b=c", [("a=b", "c")]),
    ("novalue,a=1", [("novalue", None), ("a", "1")]),
    ("a=1,", [("a", "1")]),
    ("", []),
])
def test_split_kvlist_like_uwsgi(text, expected):
    assert split_kvlist(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:0", Server("tcp", "127.0.0.1", 24007)),
    ("10.0.0.1:24008", Server("tcp", "10.0.0.1", 24008)),
    ("node1:0", Server("tcp", "node1", 24007)),
    ("[::1]:0", Server("tcp", "::1", 24007)),
    ("/var/run/glusterd.socket", Server("unix", "/var/run/glusterd.socket", 0)),
])
def test_parse_server(text, expected):
    assert parse_server(text) == expected


@pytest.mark.parametrize("text", ["host:abc", "host:70000", ":24007", "host:-1"])
def test_parse_server_rejects_bad_ports_and_hosts(text):
    with pytest.raises(ValueError):
        parse_server(text)


def test_parse_mount_documentation_example():
    mount = parse_mount("mountpoint=/,volume=unbit001,server=192.168.173.1:0;192.168.173.2:0;192.168.173.3:0")
    assert mount.mountpoint == "/" and mount.volume == "unbit001" and mount.volfile is None
    assert [str(s) for s in mount.servers] == ["192.168.173.1:24007", "192.168.173.2:24007", "192.168.173.3:24007"]
    assert mount.options["max-age"] is None and mount.options["index"] == "index.html"


def test_parse_mount_servers_alias_and_volfile():
    assert parse_mount("mountpoint=/a,volume=v,servers=h:1").servers == (Server("tcp", "h", 1),)
    mount = parse_mount("mountpoint=/a,volume=v,volfile=/etc/v.vol")
    assert mount.volfile == "/etc/v.vol" and mount.servers == ()


def test_parse_mount_native_source_comment_form():
    # the form in glusterfs.c's comment, with escaped separators in a value
    mount = parse_mount(r"mountpoint=/foo,server=a:0;b:0,volume=unbit\,001")
    assert mount.volume == "unbit,001"


@pytest.mark.parametrize("value,problem", [
    ("volume=v,server=h:0", "missing mountpoint"),
    ("mountpoint=/,server=h:0", "missing volume"),
    ("mountpoint=/,volume=v", "missing server (or volfile)"),
    ("mountpoint=/,volume=v,server=h:0,colour=red", "unknown key 'colour'"),
    ("mountpoint=/,volume=v,server=h:port", "bad port 'port'"),
    ("mountpoint=/,volume=v,server=h:99999", "bad port '99999'"),
    ("mountpoint=/,volume=,server=h:0", "key 'volume' has an empty value"),
    ("mountpoint=foo,volume=v,server=h:0", "must start with '/'"),
    ("mountpoint=/,volume=v,server=h:0,oops", "item 'oops' has no '=value'"),
    ("mountpoint=/,volume=v,server=h:0,max-age=soon", "max-age: expected a whole number"),
    ("mountpoint=/,volume=v,server=h:0,autoindex=maybe", "autoindex: expected true or false"),
])
def test_parse_mount_errors_name_the_problem(value, problem):
    with pytest.raises(ConfigError) as info:
        parse_mount(value, where="x.ini line 3")
    message = str(info.value)
    assert problem in message
    assert "x.ini line 3" in message and "glusterfs-mount" in message


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_every_repeated_mount_line_in_order(tmp_path):
    ini = write(tmp_path, "g.ini", """[uwsgi]
http-socket = :9090
glusterfs-mount = mountpoint=/,volume=a,server=h:0
; a comment
# another
glusterfs-mount = mountpoint=/foo,volume=b,server=h:0
  glusterfs-mount   =   mountpoint=/bar,volume=c,server=h:0
glusterfs-timeout = 7
[other]
glusterfs-mount = mountpoint=/other,volume=d,server=h:0
""")
    settings = read_settings(["--ini", ini])
    assert [m.mountpoint for m in settings.mounts] == ["/", "/foo", "/bar"]
    assert [m.where for m in settings.mounts] == [f"{ini} line {n}" for n in (3, 6, 7)]
    assert settings.timeout == 7


def test_section_selection_and_command_line_order(tmp_path):
    ini = write(tmp_path, "g.ini", "[uwsgi]\nglusterfs-mount = mountpoint=/,volume=a,server=h:0\n"
                                   "[prod]\nglusterfs-mount = mountpoint=/p,volume=p,server=h:0\n")
    settings = read_settings(["--glusterfs-mount", "mountpoint=/first,volume=f,server=h:0",
                              f"--ini={ini}:prod", "--glusterfs-mount=mountpoint=/last,volume=l,server=h:0"])
    assert [m.mountpoint for m in settings.mounts] == ["/first", "/p", "/last"]
    assert settings.mounts[0].where == "command line argument 2 (--glusterfs-mount)"


def test_nested_ini_and_placeholders(tmp_path):
    inner = write(tmp_path, "inner.ini", "[uwsgi]\nglusterfs-mount = mountpoint=/in,volume=%(vol),server=h:0\n")
    outer = write(tmp_path, "outer.ini", f"[uwsgi]\nvol = myvol\nini = {inner}\n"
                                         "glusterfs-mount = mountpoint=/%n,volume=%(vol),server=h:0\n")
    settings = read_settings([outer])
    assert [(m.mountpoint, m.volume) for m in settings.mounts] == [("/in", "myvol"), ("/outer", "myvol")]


def test_bad_line_names_file_and_line(tmp_path):
    ini = write(tmp_path, "bad.ini", "[uwsgi]\nthreads = 4\n\nglusterfs-mount = mountpoint=/,server=h:0\n")
    with pytest.raises(ConfigError) as info:
        read_settings(["--ini", ini])
    assert str(info.value).startswith(f"[glusterfs] {ini} line 4: glusterfs-mount: mount requires")


def test_duplicate_mountpoint_is_refused(tmp_path):
    ini = write(tmp_path, "dup.ini", "[uwsgi]\nglusterfs-mount = mountpoint=/,volume=a,server=h:0\n"
                                     "glusterfs-mount = mountpoint=/,volume=b,server=h:0\n")
    with pytest.raises(ConfigError, match="line 3: glusterfs-mount: mountpoint '/' is already mounted by .* line 2"):
        read_settings(["--ini", ini])


@pytest.mark.parametrize("value", ["0", "-1", "soon", ""])
def test_bad_timeout(tmp_path, value):
    ini = write(tmp_path, "t.ini", f"[uwsgi]\nglusterfs-timeout = {value}\n")
    with pytest.raises(ConfigError, match="line 2: glusterfs-timeout"):
        read_settings(["--ini", ini])


def test_missing_ini_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_settings(["--ini", str(tmp_path / "nope.ini")])


def test_mimefile_keys_are_collected(tmp_path):
    ini = write(tmp_path, "m.ini", "[uwsgi]\nmimefile = /a\nmime-file = /b\n")
    assert read_settings(["--ini", ini]).mimefiles == ("/a", "/b")
    assert read_settings([]).mimefiles == ("/etc/mime.types",)


def test_mount_spec_is_immutable():
    mount = parse_mount("mountpoint=/,volume=v,server=h:0")
    assert isinstance(mount, MountSpec)
    with pytest.raises(Exception):
        mount.volume = "other"


def test_colon_section_rereads_the_last_file(tmp_path):
    ini = write(tmp_path, "g.ini", "[uwsgi]\nglusterfs-mount = mountpoint=/,volume=a,server=h:0\n"
                                   "[extra]\nglusterfs-mount = mountpoint=/x,volume=x,server=h:0\n")
    settings = read_settings(["--ini", ini, "--ini", ":extra"])
    assert [m.mountpoint for m in settings.mounts] == ["/", "/x"]


def test_missing_nested_ini_names_the_including_line(tmp_path):
    outer = write(tmp_path, "outer.ini", "[uwsgi]\nthreads = 2\nini = /nonexistent/inner.ini\n")
    with pytest.raises(ConfigError, match=f"{outer} line 3: ini: cannot read '/nonexistent/inner.ini'"):
        read_settings(["--ini", outer])
