"""The binding shim: the PyPI binding imports on this Python, through one repair."""

import collections
import sys

from uwsgi_gluster import gfapi


def test_binding_import_repaired_exactly_when_needed():
    assert gfapi.BINDING_REPAIRED == (sys.version_info >= (3, 10))
    assert collections.Iterator is collections.abc.Iterator
    assert gfapi.binding.Volume  # the binding's high-level API imported


def test_binding_still_broken_without_the_repair():
    """Pins why the shim exists: without the alias the binding cannot import."""
    import subprocess
    code = ("import collections\n"
            "if hasattr(collections, 'Iterator'): del collections.Iterator\n"
            "from gluster.gfapi import gfapi\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if sys.version_info >= (3, 10):
        assert done.returncode != 0 and "Iterator" in done.stderr
    else:
        assert done.returncode == 0


def test_raw_calls_have_64_bit_offsets():
    assert gfapi.glfs_pread.argtypes[3] is gfapi.c_off_t
    assert gfapi.c_off_t is __import__("ctypes").c_int64


def test_stat_type_declared_for_the_type_checker_matches_the_binding():
    """mypy sees ``gfapi.Stat`` through an ``if TYPE_CHECKING`` class (the binding is
    untyped); its fields must be the binding's ``struct stat``, in order."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(gfapi))
    declared = [
        [node.target.id for node in cls.body if isinstance(node, ast.AnnAssign)]
        for cls in ast.walk(tree) if isinstance(cls, ast.ClassDef) and cls.name == "Stat"
    ]
    assert declared == [[name for name, _ in gfapi.Stat._fields_]]
