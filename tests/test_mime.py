"""uWSGI's mime engine, quirks included (pure units)."""

import pytest

from uwsgi_gluster.mime import MimeTypes, extension, parse_mime_types

TABLE = b"""# comment line
text/html\t\t\t\thtml htm shtml
text/plain  txt asc
text/spaced	sp1  sp2
text/x-c\tc
text/x-csrc\th c cc
application/first\tdup
application/second\tdup
image/png png
 indented/type ignored
no-extensions
text/last lastline"""


@pytest.fixture
def mime():
    return MimeTypes(parse_mime_types(TABLE))


@pytest.mark.parametrize("path,expected", [
    (b"/index.html", "text/html"),
    (b"/a/b.htm", "text/html"),
    (b"/notes.txt", "text/plain"),
    (b"/notes.asc", "text/plain"),
    (b"/prog.cc", "text/x-csrc"),
    (b"/prog.h", "text/x-csrc"),      # single-letter extension before the end of the line counts
    (b"/prog.c", "text/x-csrc"),      # ... but not at the end of a line: text/x-c's "c" never registers
    (b"/x.dup", "application/first"),  # first definition wins
    (b"/UPPER.HTML", None),            # case-sensitive like uWSGI
    (b"/README", None),
    (b"/dir.html/file", None),         # extension is "html/file"
    (b"/img.png", "image/png"),
    (b"/x.ignored", None),             # lines must start with a letter or digit
    (b"/x.lastline", None),            # a last line without newline is dropped
])
def test_lookup(mime, path, expected):
    assert mime.lookup(path) == expected


def test_doubled_blanks_register_an_empty_extension(mime):
    # "sp1  sp2": the second blank ends an empty extension, as in uWSGI;
    # blanks between the type and the first extension do not
    assert mime.lookup(b"/file.") == "text/spaced"
    assert mime.lookup(b"/f.sp2") == "text/spaced"


@pytest.mark.parametrize("path,ext", [(b"/a.b.c", b"c"), (b"/a", None), (b"/a.", b""), (b"/d.x/y", b"x/y")])
def test_extension(path, ext):
    assert extension(path) == ext


def test_missing_mime_file_is_logged(tmp_path):
    lines = []
    table = MimeTypes.from_files([str(tmp_path / "nope")], log=lines.append)
    assert len(table) == 0 and lines == [f"!!! no {tmp_path / 'nope'} file found !!!"]


def test_system_table_knows_common_types():
    table = MimeTypes.from_files(["/etc/mime.types"])
    assert table.lookup(b"/x.css") == "text/css" and table.lookup(b"/x.json") == "application/json"
