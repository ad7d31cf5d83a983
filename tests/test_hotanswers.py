"""uwsgi_gluster.hotanswers: the hash both sides use, the file format the C
plugin reads, what is published, and the revalidation pass (pure: a temporary
directory, a fake volume stat and fake clocks)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from uwsgi_gluster import hotanswers
from uwsgi_gluster.hotanswers import FIXED, HotAnswers, decode_fixed, encode, fnv1a64, name_of

PLUGIN_C = Path(__file__).resolve().parent.parent / "profiles" / "plugins" / "glusterfs.c"
HEADERS = [("Content-Type", "text/plain"), ("Last-Modified", "Sat, 01 Jan 2000 00:00:00 GMT"),
           ("Content-Length", "5"), ("Accept-Ranges", "bytes"), ("ETag", '"abc"')]
IDENTITY = (11, 5, 1_000_000_000, 2_000_000_000)


def test_fnv1a64_known_vectors():
    # FNV-1a 64 reference values (http://www.isthe.com/chongo/tech/comp/fnv/)
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8
    assert name_of(b"a") == "af63dc4c8601ec8c"


def test_the_c_side_uses_the_same_constants_and_format():
    source = PLUGIN_C.read_text()
    assert "0xcbf29ce484222325ULL" in source and "0x100000001b3ULL" in source
    assert f'#define HOT_MAGIC "{hotanswers.MAGIC.rstrip(chr(0).encode()).decode()}"' in source
    assert f"#define HOT_FIXED {FIXED}" in source
    assert f'#define HOT_DIR_ENV "{hotanswers.DIR_ENV}"' in source
    assert f'#define HOT_ACTIVE_ENV "{hotanswers.ACTIVE_ENV}"' in source
    assert f"#define HOT_PRECOMPRESSED {hotanswers.PRECOMPRESSED}" in source
    # name_of(): 16 lowercase hex digits, most significant first
    assert '"0123456789abcdef"[(hash >> (60 - 4 * digit)) & 0xf]' in source and "digit < 16" in source


def test_encode_lays_out_what_the_c_side_reads():
    data = encode(b"/a.txt", b"/real/a.txt", IDENTITY, "200 OK", HEADERS, b"hello", 1, 1.0)
    assert data[:8] == b"UGHOT01\0"
    offset = int.from_bytes(data[8:12], "little")
    path_len, volume_len, head_len, flags, fresh_ms = (int.from_bytes(data[i:i + 4], "little")
                                                       for i in range(12, 32, 4))
    assert (path_len, volume_len, flags, fresh_ms) == (6, 11, 1, 1000)
    assert offset == FIXED + path_len + volume_len + head_len
    assert data[FIXED:FIXED + 6] == b"/a.txt"
    head = data[FIXED + 17:offset].decode("latin-1")
    assert head == "200 OK\n" + "".join(f"{k}: {v}\n" for k, v in HEADERS)
    assert data[offset:] == b"hello"
    assert decode_fixed(data) == (b"/a.txt", b"/real/a.txt", IDENTITY)
    assert decode_fixed(b"X" + data[1:]) is None
    assert decode_fixed(data[:FIXED - 1]) is None


class Clocks:
    def __init__(self):
        self.mono = 100.0
        self.wall = 1_700_000_000 * 10**9

    def clock(self):
        return self.mono

    def wall_ns(self):
        return self.wall


def make(tmp_path, precompressed=False, clocks=None):
    parent = tmp_path / "instance"
    parent.mkdir(mode=0o700)
    clocks = clocks or Clocks()
    return HotAnswers.create(str(parent), freshness=1.0, precompressed=precompressed,
                             clock=clocks.clock, wall_ns=clocks.wall_ns), clocks


def entry(size=5, validated_at=99.75, content=b"hello", identity=IDENTITY):
    return SimpleNamespace(size=size, validated_at=validated_at, content=content, identity=identity, local=None)


ENVIRON = {"REQUEST_METHOD": "GET", "PATH_INFO": "/a.txt", "SCRIPT_NAME": ""}


def test_publish_writes_the_answer_atomically_with_the_validation_time(tmp_path):
    hot, clocks = make(tmp_path)
    assert stat.S_IMODE(os.lstat(hot.directory).st_mode) == 0o700
    assert hot.publish(ENVIRON, b"/a.txt", entry(), "200 OK", HEADERS, lambda: b"hello")
    path = Path(hot.directory) / name_of(b"/a.txt")
    st = path.stat()
    assert st.st_mtime_ns == clocks.wall - 250_000_000  # validated 0.25 s ago
    assert st.st_atime_ns == 0  # not read since
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert path.read_bytes() == encode(b"/a.txt", b"/a.txt", IDENTITY, "200 OK", HEADERS, b"hello", 0, 1.0)
    assert os.listdir(hot.directory) == [name_of(b"/a.txt")]  # no temporary file left
    # the same validation is not written twice by this worker; a newer one is
    assert not hot.publish(ENVIRON, b"/a.txt", entry(), "200 OK", HEADERS, lambda: b"hello")
    assert hot.publish(ENVIRON, b"/a.txt", entry(validated_at=99.9), "200 OK", HEADERS, lambda: b"hello")


@pytest.mark.parametrize("change", [
    {"REQUEST_METHOD": "HEAD"}, {"HTTP_RANGE": "bytes=0-1"}, {"HTTP_IF_NONE_MATCH": '"abc"'},
    {"HTTP_IF_MODIFIED_SINCE": "x"}, {"SCRIPT_NAME": "/app"}, {"UWSGI_APPID": "x"},
    {"PATH_INFO": "//a.txt"}, {"PATH_INFO": "/./a.txt"}, {"PATH_INFO": "/"},
])
def test_only_plain_gets_of_the_default_app_are_published(tmp_path, change):
    hot, _ = make(tmp_path)
    assert not hot.publish({**ENVIRON, **change}, b"/a.txt", entry(), "200 OK", HEADERS, lambda: b"hello")
    assert os.listdir(hot.directory) == []


def test_accept_encoding_on_a_precompressed_mount_is_not_published(tmp_path):
    hot, _ = make(tmp_path, precompressed=True)
    environ = {**ENVIRON, "HTTP_ACCEPT_ENCODING": "gzip"}
    assert not hot.publish(environ, b"/a.txt", entry(), "200 OK", HEADERS, lambda: b"hello")
    assert hot.publish(ENVIRON, b"/a.txt", entry(), "200 OK", HEADERS, lambda: b"hello")
    data = (Path(hot.directory) / name_of(b"/a.txt")).read_bytes()
    assert int.from_bytes(data[24:28], "little") == hotanswers.PRECOMPRESSED


def test_not_published_other_statuses_big_files_or_missing_bytes(tmp_path):
    hot, _ = make(tmp_path)
    assert not hot.publish(ENVIRON, b"/a.txt", entry(), "206 Partial Content", HEADERS, lambda: b"hello")
    big = hotanswers.MAX_BODY + 1
    assert not hot.publish(ENVIRON, b"/a.txt", entry(size=big), "200 OK", HEADERS, lambda: b"x" * big)
    assert not hot.publish(ENVIRON, b"/a.txt", entry(), "200 OK", HEADERS, lambda: None)  # copy evicted
    assert not hot.publish(ENVIRON, b"/a.txt", entry(), "200 OK", HEADERS, lambda: b"hell")  # short
    assert os.listdir(hot.directory) == []


def test_create_refuses_a_symlink_or_a_loose_directory(tmp_path):
    parent = tmp_path / "instance"
    parent.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (parent / hotanswers.SUBDIR).symlink_to(elsewhere)
    with pytest.raises(OSError):
        HotAnswers.create(str(parent), freshness=1.0, precompressed=False)
    (parent / hotanswers.SUBDIR).unlink()
    (parent / hotanswers.SUBDIR).mkdir(mode=0o755)
    os.chmod(parent / hotanswers.SUBDIR, 0o755)
    with pytest.raises(OSError):
        HotAnswers.create(str(parent), freshness=1.0, precompressed=False)


def published(tmp_path, paths=(b"/a.txt",), validated_ago=0.7):
    hot, clocks = make(tmp_path)
    for path in paths:
        environ = {**ENVIRON, "PATH_INFO": path.decode()}
        assert hot.publish(environ, path, entry(validated_at=clocks.mono - validated_ago), "200 OK", HEADERS,
                           lambda: b"hello")
    return hot, clocks


def read(hot, path=b"/a.txt"):
    """What the C side does to an answer it sends: a read sets the atime (here: by hand)."""
    name = os.path.join(hot.directory, name_of(path))
    st = os.stat(name)
    os.utime(name, ns=(st.st_mtime_ns + 1, st.st_mtime_ns))


def test_refresh_touches_read_answers_whose_file_is_unchanged(tmp_path):
    hot, clocks = published(tmp_path)
    read(hot)
    asked = []

    def stat_(path):
        asked.append(path)
        clocks.wall += 5_000_000  # the volume call takes 5 ms
        return SimpleNamespace(st_ino=11, st_size=5, st_mtime=1, st_mtimensec=0, st_ctime=2, st_ctimensec=0)

    before = clocks.wall
    assert hot.refresh_once(stat_) == 1
    assert asked == [b"/a.txt"]
    st = os.stat(os.path.join(hot.directory, name_of(b"/a.txt")))
    assert st.st_mtime_ns == before  # the moment before the volume was asked
    assert st.st_atime_ns == 0  # not read since
    assert hot.refresh_once(stat_) == 0  # not read since: left alone
    assert asked == [b"/a.txt"]


@pytest.mark.parametrize("answer", ["changed", "gone"])
def test_refresh_removes_answers_whose_file_changed_or_is_gone(tmp_path, answer):
    hot, _ = published(tmp_path)
    read(hot)

    def stat_(path):
        if answer == "gone":
            raise OSError(errno.ENOENT, "gone")
        return SimpleNamespace(st_ino=11, st_size=5, st_mtime=1, st_mtimensec=0, st_ctime=3, st_ctimensec=0)

    hot.refresh_once(stat_)
    assert os.listdir(hot.directory) == []


def test_refresh_leaves_answers_on_volume_errors_and_young_or_unread_ones(tmp_path):
    hot, _ = published(tmp_path, paths=(b"/a.txt", b"/b.txt"))
    read(hot)  # /a.txt read, /b.txt not

    def failing(path):
        raise OSError(errno.ENOTCONN, "volume down")

    assert hot.refresh_once(failing) == 0
    assert sorted(os.listdir(hot.directory)) == sorted([name_of(b"/a.txt"), name_of(b"/b.txt")])
    (tmp_path / "young").mkdir()
    young, _ = published(tmp_path / "young", validated_ago=0.1)
    read(young)
    assert young.refresh_once(failing) == 0  # validated 0.1 s ago: not due, not asked


def test_refresh_drops_cold_answers_and_keeps_the_bound(tmp_path, monkeypatch):
    hot, clocks = published(tmp_path, paths=(b"/a.txt", b"/b.txt", b"/c.txt"))
    os.utime(os.path.join(hot.directory, name_of(b"/a.txt")),
             ns=(0, clocks.wall - int((hotanswers.DROP_AFTER + 1) * 1e9)))
    hot.refresh_once(lambda path: (_ for _ in ()).throw(OSError(errno.EIO, "unused")))
    assert sorted(os.listdir(hot.directory)) == sorted([name_of(b"/b.txt"), name_of(b"/c.txt")])
    monkeypatch.setattr(hotanswers, "MAX_ANSWERS", 1)
    os.utime(os.path.join(hot.directory, name_of(b"/b.txt")), ns=(0, clocks.wall - 2_000_000_000))
    hot.refresh_once(lambda path: (_ for _ in ()).throw(OSError(errno.EIO, "unused")))
    assert os.listdir(hot.directory) == [name_of(b"/c.txt")]  # the least recently validated went


def test_refresh_never_touches_an_answer_replaced_meanwhile(tmp_path):
    hot, clocks = published(tmp_path)
    read(hot)
    name = os.path.join(hot.directory, name_of(b"/a.txt"))

    def stat_(path):
        # another worker renames a newer answer into place while the volume is asked
        newer = encode(b"/a.txt", b"/a.txt", (11, 5, 9, 9), "200 OK", HEADERS, b"HELLO", 0, 1.0)
        Path(name + ".new").write_bytes(newer)
        os.utime(name + ".new", ns=(0, 42))
        os.rename(name + ".new", name)
        return SimpleNamespace(st_ino=11, st_size=5, st_mtime=1, st_mtimensec=0, st_ctime=2, st_ctimensec=0)

    hot.refresh_once(stat_)
    assert os.stat(name).st_mtime_ns == 42  # the newer answer keeps its own validation time


UNCHANGED = SimpleNamespace(st_ino=11, st_size=5, st_mtime=1, st_mtimensec=0, st_ctime=2, st_ctimensec=0)
CHANGED = SimpleNamespace(st_ino=11, st_size=5, st_mtime=1, st_mtimensec=0, st_ctime=3, st_ctimensec=0)
IN_D = tuple(b"/d/f%d.txt" % i for i in range(hotanswers.BATCH_MIN + 1))


def _read_all(hot, paths):
    for path in paths:
        read(hot, path)


def test_refresh_lists_a_directory_once_for_the_answers_due_in_it(tmp_path):
    hot, clocks = published(tmp_path, paths=IN_D + (b"/e/alone.txt",))
    _read_all(hot, IN_D + (b"/e/alone.txt",))
    listed, asked = [], []

    def stat_dir(parent, names):
        listed.append((parent, sorted(names)))
        clocks.wall += 5_000_000
        return {name: UNCHANGED for name in names}

    def stat_(path):
        asked.append(path)
        return UNCHANGED

    before = clocks.wall
    assert hot.refresh_once(stat_, stat_dir=stat_dir) == len(IN_D) + 1
    assert listed == [(b"/d", sorted(p.rpartition(b"/")[2] for p in IN_D))]
    assert asked == [b"/e/alone.txt"]  # fewer than BATCH_MIN due in /e: asked alone
    for path in IN_D:
        assert os.stat(os.path.join(hot.directory, name_of(path))).st_mtime_ns == before


def test_refresh_asks_alone_for_what_the_listing_leaves_out_and_drops_what_changed(tmp_path):
    hot, _ = published(tmp_path, paths=IN_D)
    _read_all(hot, IN_D)
    asked = []

    def stat_dir(parent, names):
        # f0 is not listed (a symlink, gone, or past the listing bound); f1 changed
        return {name: (CHANGED if name == b"f1.txt" else UNCHANGED) for name in names if name != b"f0.txt"}

    def stat_(path):
        asked.append(path)
        raise OSError(errno.ENOENT, "gone")

    hot.refresh_once(stat_, stat_dir=stat_dir)
    assert asked == [b"/d/f0.txt"]
    assert sorted(os.listdir(hot.directory)) == sorted(name_of(p) for p in IN_D[2:])


def test_refresh_asks_one_by_one_when_the_listing_fails(tmp_path):
    hot, _ = published(tmp_path, paths=IN_D)
    _read_all(hot, IN_D)
    asked = []

    def stat_dir(parent, names):
        raise OSError(errno.EIO, "listing failed")

    def stat_(path):
        asked.append(path)
        return UNCHANGED

    assert hot.refresh_once(stat_, stat_dir=stat_dir) == len(IN_D)
    assert sorted(asked) == sorted(IN_D)
