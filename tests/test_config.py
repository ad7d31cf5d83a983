"""Turning the options uWSGI resolved into glusterfs settings (pure units).

The input is what uWSGI itself resolved, ``[(key, value), ...]`` in order
(see uwsgi_gluster/options.py and tests/test_options.py); config files are
uWSGI's business, tested against real processes in
tests/integration/test_config_differential.py.
"""

import dataclasses

import pytest

from uwsgi_gluster.config import (
    DEFAULT_CONNECT_TIMEOUT,
    ConfigError,
    MountSpec,
    Server,
    config_sources,
    parse_mount,
    parse_server,
    settings_from_options,
    split_kvlist,
)


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
    mount = parse_mount(r"mountpoint=/foo\,bar,server=a:0;b:0,volume=unbit001")
    assert mount.mountpoint == "/foo,bar" and mount.volume == "unbit001"


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
    ("mountpoint=/,volume=a.b,server=h:0", "volume name 'a.b' is not one libgfapi accepts"),
    ("mountpoint=/,volume=a/b,server=h:0", "volume name 'a/b' is not one libgfapi accepts"),
    ("mountpoint=/,volume=caf\u00e9,server=h:0", "is not one libgfapi accepts"),
])
def test_parse_mount_errors_name_the_problem(value, problem):
    with pytest.raises(ConfigError) as info:
        parse_mount(value, where="glusterfs-mount #3", sources=("x.ini",))
    message = str(info.value)
    assert problem in message
    assert message.startswith(f"[glusterfs] glusterfs-mount #3 = {value!r}: ")
    assert message.endswith("(config: x.ini)")


M1 = "mountpoint=/,volume=a,server=h:0"
M2 = "mountpoint=/foo,volume=b,server=h:0"
M3 = "mountpoint=/bar,volume=c,server=h:0"


def test_every_mount_value_in_uwsgi_order_with_its_ordinal():
    settings = settings_from_options([("ini", "g.ini"), ("glusterfs-mount", M1), ("threads", "4"),
                                      ("set", "glusterfs-mount=" + M2), ("glusterfs-mount", M2),
                                      ("glusterfs-mount", M3)])
    assert [m.mountpoint for m in settings.mounts] == ["/", "/foo", "/bar"]
    assert [m.where for m in settings.mounts] == ["glusterfs-mount #1", "glusterfs-mount #2", "glusterfs-mount #3"]
    assert settings.sources == ("g.ini",)


def test_error_names_option_ordinal_value_and_config_files():
    with pytest.raises(ConfigError) as info:
        settings_from_options([("yaml", "a.yml"), ("ini", "b.ini"), ("glusterfs-mount", M1),
                               ("glusterfs-mount", "mountpoint=/x,server=h:0")])
    assert str(info.value) == ("[glusterfs] glusterfs-mount #2 = 'mountpoint=/x,server=h:0': mount requires a "
                               "mountpoint, a volume and at least one server or volfile; missing volume "
                               "(config: a.yml, b.ini)")


def test_duplicate_mountpoint_names_both_values():
    with pytest.raises(ConfigError, match="glusterfs-mount #2: .*mountpoint '/' is already mounted by "
                                          "glusterfs-mount #1"):
        settings_from_options([("glusterfs-mount", M1), ("glusterfs-mount", M1.replace("volume=a", "volume=b"))])


@pytest.mark.parametrize("value,expected", [("0", 0), ("7", 7), (" 30 ", 30), ("2147483647", 2147483647)])
def test_glusterfs_timeout_keeps_its_native_range_0_included(value, expected):
    settings = settings_from_options([("glusterfs-timeout", value)])
    assert settings.timeout == expected
    assert settings.connect_timeout == DEFAULT_CONNECT_TIMEOUT  # not the connect deadline any more


@pytest.mark.parametrize("value", ["-1", "soon", "", "99999999999999999999", "2147483648", "1.5"])
def test_bad_glusterfs_timeout_is_refused(value):
    with pytest.raises(ConfigError, match=r"glusterfs-timeout #1 = .*from 0 to 2147483647"):
        settings_from_options([("glusterfs-timeout", value)])


def test_connect_timeout_is_its_own_key_last_value_wins():
    settings = settings_from_options([("glusterfs-connect-timeout", "3"), ("glusterfs-connect-timeout", "4")])
    assert settings.connect_timeout == 4 and settings.timeout is None


@pytest.mark.parametrize("value", ["0", "3601", "x", "99999999999999999999"])
def test_bad_connect_timeout_is_refused(value):
    with pytest.raises(ConfigError, match=r"glusterfs-connect-timeout #1 = .*from 1 to 3600"):
        settings_from_options([("glusterfs-connect-timeout", value)])


def test_later_bad_value_is_refused_even_if_an_earlier_one_is_good():
    with pytest.raises(ConfigError, match="glusterfs-timeout #2"):
        settings_from_options([("glusterfs-timeout", "5"), ("glusterfs-timeout", "x")])


def test_mimefile_keys_are_collected():
    assert settings_from_options([("mimefile", "/a"), ("mime-file", "/b")]).mimefiles == ("/a", "/b")
    assert settings_from_options([]).mimefiles == ("/etc/mime.types",)


def test_no_option_at_all_means_no_mount():
    settings = settings_from_options([("http-socket", ":9090"), ("master", "true")])
    assert settings.mounts == () and settings.timeout is None


def test_config_sources_in_order_without_repeats():
    assert config_sources([("ini", "a.ini"), ("json", "b.json"), ("ini", "a.ini"), ("xml", "c.xml"),
                           ("threads", "2")]) == ("a.ini", "b.json", "c.xml")


def test_mount_spec_is_immutable():
    mount = parse_mount("mountpoint=/,volume=v,server=h:0")
    assert isinstance(mount, MountSpec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mount.volume = "other"


def test_the_package_has_no_config_file_reader():
    """One source of truth: uWSGI. No module of the package opens config files."""
    import uwsgi_gluster.config as config

    for name in ("read_ini", "iter_options", "_expand"):
        assert not hasattr(config, name)


# -- glusterfs-health / glusterfs-metrics ---------------------------------------

def test_health_and_metrics_paths_default_off_last_wins():
    assert settings_from_options([]).health_path is None
    settings = settings_from_options([("glusterfs-health", "/a"), ("glusterfs-health", "/_health"),
                                      ("glusterfs-metrics", "/_metrics")])
    assert (settings.health_path, settings.metrics_path) == ("/_health", "/_metrics")


@pytest.mark.parametrize("key", ["glusterfs-health", "glusterfs-metrics"])
@pytest.mark.parametrize("value", ["", "_health", "/", "/a/", "/a//b", "/a/../b", "/./a", "/a?x=1", "/a b",
                                   "/a\nb", "/" + "x" * 255, "/é"])
def test_health_and_metrics_paths_must_be_plain_absolute_paths(key, value):
    with pytest.raises(ConfigError, match=rf"{key} #1 = "):
        settings_from_options([(key, value)])


def test_health_and_metrics_cannot_share_a_path():
    with pytest.raises(ConfigError, match="glusterfs-metrics #1 = '/x': same path as glusterfs-health"):
        settings_from_options([("glusterfs-health", "/x"), ("glusterfs-metrics", "/x")])


def test_local_cache_options():
    from uwsgi_gluster.config import LocalCacheSettings
    mount = ("glusterfs-mount", "mountpoint=/,volume=v,server=h:0")
    assert settings_from_options([mount]).local_cache == LocalCacheSettings()
    got = settings_from_options([mount, ("glusterfs-local-cache", "1G"), ("glusterfs-local-cache", "512M"),
                                 ("glusterfs-local-cache-dir", "/var/cache/x"),
                                 ("glusterfs-local-cache-max-file", "8m")]).local_cache
    assert got == LocalCacheSettings(size=512 << 20, directory="/var/cache/x", max_file=8 << 20)
    assert settings_from_options([mount, ("glusterfs-local-cache", "0")]).local_cache.size == 0


@pytest.mark.parametrize("key, value, problem", [
    ("glusterfs-local-cache", "lots", "expected a size"),
    ("glusterfs-local-cache", "-1", "expected a size"),
    ("glusterfs-local-cache", "99999999T", "expected a size"),
    ("glusterfs-local-cache-max-file", "", "expected a size"),
    ("glusterfs-local-cache-dir", "relative/dir", "expected an absolute directory path"),
])
def test_bad_local_cache_option_names_the_key(key, value, problem):
    with pytest.raises(ConfigError) as caught:
        settings_from_options([("glusterfs-mount", "mountpoint=/,volume=v,server=h:0"), (key, value)])
    assert str(caught.value).startswith(f"[glusterfs] {key} #1 = {value!r}: {problem}")
