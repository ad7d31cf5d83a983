"""Reading uWSGI's resolved option list from show_config()'s datagrams (pure units),
and the C stub declaring the same glusterfs-* keys as the Python side."""

import re

import pytest

from support import ROOT
from uwsgi_gluster.config import OPTIONS
from uwsgi_gluster.options import END, START, NotInUwsgi, parse_listing, resolved_options


def listing(lines, prefix=b""):
    return [prefix + START] + [prefix + line for line in lines] + [prefix + END]


def test_one_pair_per_datagram_in_order_repeats_kept():
    options, others = parse_listing(listing([b"ini = a.ini\n", b"glusterfs-mount = m1\n",
                                             b"master = true\n", b"glusterfs-mount = m2\n", b"endfor = \n"]))
    assert options == [("ini", "a.ini"), ("glusterfs-mount", "m1"), ("master", "true"),
                       ("glusterfs-mount", "m2"), ("endfor", "")]
    assert others == []


def test_values_are_exact_even_with_newlines_and_equal_signs():
    options, _ = parse_listing(listing([b"route = ^/a = b\n", b"exec-asap = echo 1\necho 2\n"]))
    assert options == [("route", "^/a = b"), ("exec-asap", "echo 1\necho 2")]


def test_date_prefix_of_log_date_is_stripped_even_when_the_second_ticks():
    data = [b"Thu Nov 26 06:01:21 2026 - " + START, b"Thu Nov 26 06:01:21 2026 - a = 1\n",
            b"Thu Nov 26 06:01:22 2026 - b = 2\n", b"Thu Nov 26 06:01:22 2026 - " + END]
    options, others = parse_listing(data)
    assert options == [("a", "1"), ("b", "2")] and others == []


def test_datagrams_outside_the_listing_are_handed_back():
    data = [b"another thread logs\n", START, b"a = 1\n", b"no separator here\n", END, b"after\n"]
    options, others = parse_listing(data)
    assert options == [("a", "1")]
    assert others == [b"another thread logs\n", b"no separator here\n", b"after\n"]


@pytest.mark.parametrize("data", [[], [START, b"a = 1\n"], [b"a = 1\n", END]])
def test_incomplete_listing_is_an_error_not_a_silent_empty_config(data):
    with pytest.raises(RuntimeError, match="not complete"):
        parse_listing(data)


def test_outside_uwsgi_there_is_no_resolved_list(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "uwsgi", raising=False)
    monkeypatch.delitem(sys.modules, "pyuwsgi", raising=False)
    with pytest.raises(NotInUwsgi):
        resolved_options()


def test_c_stub_declares_exactly_the_python_options():
    """./uwsgi's embedded glusterfs plugin must know every key the Python side
    reads (else uWSGI refuses it on the command line) and no other."""
    source = (ROOT / "profiles/plugins/glusterfs.c").read_text()
    declared = re.findall(r'\{"(glusterfs-[a-z-]+)"', source)
    assert sorted(declared) == sorted(OPTIONS)
