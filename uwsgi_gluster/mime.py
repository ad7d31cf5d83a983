"""Content types by extension, exactly as uWSGI's mime engine picks them.

uWSGI builds its table from ``mimefile`` (default ``/etc/mime.types``) and the
glusterfs plugin asks it for every file. To answer like it, both halves are
reproduced here, quirks included:

* table: a line starting with a letter or digit is ``type ext ext ...``; every
  blank after the type ends an extension (so doubled blanks add an empty one);
  the last extension of a line counts only if it has two or more characters,
  and a final line without a newline is ignored. The first file, then the first
  line, to name an extension wins.
* lookup: the extension is what follows the last ``.`` that is reached walking
  back over the path, skipping non-alphanumeric characters other than ``.``
  (so ``/dir.d/file`` has extension ``d/file``). Matching is case-sensitive.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional

_BLANK = (ord(" "), ord("\t"))


def _isalnum(byte: int) -> bool:
    return 48 <= byte <= 57 or 65 <= byte <= 90 or 97 <= byte <= 122


def parse_mime_types(data: bytes, table: Optional[Dict[bytes, str]] = None) -> Dict[bytes, str]:
    """Add the entries of one mime.types file's bytes to ``table`` (first wins)."""
    table = {} if table is None else table
    lines = data.split(b"\n")[:-1]  # uWSGI drops a last line with no newline
    for line in lines:
        if not line or not _isalnum(line[0]):
            continue
        type_size = next((i for i, b in enumerate(line) if b in _BLANK), None)
        if type_size is None:
            continue
        ext_start = next((i for i in range(type_size, len(line)) if line[i] not in _BLANK), None)
        if ext_start is None:
            continue
        mime = line[:type_size].decode("latin-1")
        current = bytearray()
        for byte in line[ext_start:]:
            if byte in _BLANK:
                table.setdefault(bytes(current), mime)
                current = bytearray()
            else:
                current.append(byte)
        if len(current) > 1:
            table.setdefault(bytes(current), mime)
    return table


def extension(path: bytes) -> Optional[bytes]:
    """The extension uWSGI sees in ``path``, or None if there is no dot."""
    for i in range(len(path) - 1, -1, -1):
        if path[i] == 0x2E:  # '.'
            return path[i + 1:]
    return None


class MimeTypes:
    """An immutable extension -> content type table built from mime files."""

    def __init__(self, table: Dict[bytes, str]):
        self._table = dict(table)

    @classmethod
    def from_files(cls, paths: Iterable[str], log=None) -> MimeTypes:
        table: Dict[bytes, str] = {}
        for path in paths:
            try:
                with open(path, "rb") as handle:
                    parse_mime_types(handle.read(), table)
            except OSError:
                if log:
                    log(f"!!! no {path} file found !!!")
        return cls(table)

    def __len__(self) -> int:
        return len(self._table)

    def lookup(self, path: bytes) -> Optional[str]:
        ext = extension(path)
        if ext is None:
            return None
        return self._table.get(ext)
