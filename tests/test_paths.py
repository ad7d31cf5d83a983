"""Path walking with bounded work (pure units over a fake volume that counts calls)."""

from __future__ import annotations

import errno
import stat
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uwsgi_gluster.paths import MAX_STEPS, MAX_SYMLINK_HOPS, SymlinkRefused, normalize, resolve


class FakeVolume:
    """Directories, files and symlinks by absolute path; counts every call."""

    def __init__(self, dirs=(), files=(), links=None):
        self.dirs = {"/", *dirs}
        self.files = set(files)
        self.links = dict(links or {})
        self.calls = 0

    def lstat(self, path: bytes):
        self.calls += 1
        p = path.decode()
        parent = p.rsplit("/", 1)[0] or "/"
        if parent not in self.dirs:
            raise OSError(errno.ENOTDIR if parent in self.files else errno.ENOENT, p)
        if p in self.dirs:
            return SimpleNamespace(st_mode=stat.S_IFDIR | 0o755)
        if p in self.files:
            return SimpleNamespace(st_mode=stat.S_IFREG | 0o644)
        if p in self.links:
            return SimpleNamespace(st_mode=stat.S_IFLNK | 0o777)
        raise OSError(errno.ENOENT, p)

    def readlink(self, path: bytes) -> bytes:
        self.calls += 1
        return self.links[path.decode()].encode()

    def resolve(self, path: str, **kw):
        real, _st, hops = resolve(path.encode(), self.lstat, self.readlink, **kw)
        return real.decode(), hops


TREE = FakeVolume(dirs={"/a", "/a/b", "/real"}, files={"/a/b/f.txt", "/real/t.txt", "/top.txt"},
                  links={"/a/up": "..", "/a/b/rel": "../../real", "/abs": "/real/t.txt", "/a/root": "/",
                         "/loop": "loop", "/escape": "../../../../etc", "/a/self": "."})


@pytest.mark.parametrize(("path", "real", "hops"), [
    ("/a/b/f.txt", "/a/b/f.txt", 0),
    ("/a/up/a/b/f.txt", "/a/b/f.txt", 1),
    ("/a/b/rel/t.txt", "/real/t.txt", 1),
    ("/abs", "/real/t.txt", 1),
    ("/a/root/top.txt", "/top.txt", 1),
    ("/a/self/self/b", "/a/b", 2),
    ("/", "/", 0),
])
def test_resolve_follows_symlinks_inside_the_volume(path, real, hops):
    assert TREE.resolve(path) == (real, hops)


def test_resolve_never_leaves_the_volume_root():
    with pytest.raises(OSError) as info:
        TREE.resolve("/escape/passwd")
    assert info.value.errno == errno.ENOENT  # /etc is looked up in the volume, where it is not


def test_symlink_loop_is_eloop():
    with pytest.raises(OSError) as info:
        TREE.resolve("/loop")
    assert info.value.errno == errno.ELOOP


def test_work_amplification_symlink_hops_bounded():
    """``up -> ..`` repeated: 40 hops are followed (Linux's limit), the 41st is ELOOP."""
    ok = "/a" + "/up/a" * MAX_SYMLINK_HOPS + "/b/f.txt"
    assert TREE.resolve(ok) == ("/a/b/f.txt", MAX_SYMLINK_HOPS)
    with pytest.raises(OSError) as info:
        TREE.resolve("/a" + "/up/a" * (MAX_SYMLINK_HOPS + 1) + "/b/f.txt")
    assert info.value.errno == errno.ELOOP


def test_work_amplification_components_bounded():
    vol = FakeVolume(dirs={"/d"}, links={"/d/s": "."})
    with pytest.raises(OSError) as info:
        vol.resolve("/d" + "/x" * MAX_STEPS)
    assert info.value.errno in (errno.ENOENT, errno.ELOOP)
    calls = vol.calls
    assert calls <= 2  # /d, then /d/x is missing: the walk stops at the first miss
    vol.dirs.update("/d" + "/x" * n for n in range(1, MAX_STEPS + 2))
    vol.calls = 0
    with pytest.raises(OSError) as info:
        vol.resolve("/d" + "/x" * (MAX_STEPS + 50))
    assert info.value.errno == errno.ELOOP and vol.calls == MAX_STEPS


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "up", "self", "root", "rel", "loop", "..", "."]), max_size=400),
       st.dictionaries(st.sampled_from(["/a/x", "/a/b/x", "/x"]),
                       st.lists(st.sampled_from(["..", ".", "a", "b", "x", "/", "up", "self"]), min_size=1,
                                max_size=30).map("/".join), max_size=3))
def test_work_amplification_calls_bounded_for_any_path_and_links(parts, extra_links):
    vol = FakeVolume(dirs=TREE.dirs, files=TREE.files, links={**TREE.links, **extra_links})
    try:
        vol.resolve("/" + "/".join(parts))
    except OSError:
        pass
    assert vol.calls <= MAX_STEPS + MAX_SYMLINK_HOPS + 1


def test_symlinks_refused_costs_one_lstat_per_component():
    vol = FakeVolume(dirs=TREE.dirs, files=TREE.files, links=TREE.links)
    assert vol.resolve("/a/b/f.txt", follow=False) == ("/a/b/f.txt", 0) and vol.calls == 3
    vol.calls = 0
    with pytest.raises(SymlinkRefused):
        vol.resolve("/a/up/a/b/f.txt", follow=False)
    assert vol.calls == 2


def test_walk_goes_on_from_a_resolved_base():
    vol = FakeVolume(dirs=TREE.dirs, files=TREE.files, links=TREE.links)
    real, _st, hops = resolve(b"f.txt", vol.lstat, vol.readlink, base=b"/a/b", hops=39)
    assert (real, hops, vol.calls) == (b"/a/b/f.txt", 39, 1)
    with pytest.raises(OSError):
        resolve(b"rel", vol.lstat, vol.readlink, base=b"/a/b", hops=MAX_SYMLINK_HOPS)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"/a/../b", b"/b"), (b"/../../x", b"/x"), (b"/a/", b"/a/"), (b"/a/.", b"/a/"), (b"/", b"/"), (b"x", None),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected
