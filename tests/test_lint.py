"""The code checks `make lint` runs (and `make test` first): their configuration is the
project's, and the package stays clean under mypy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import uwsgi_gluster
from support import ROOT

PACKAGE = "uwsgi_gluster"


def tool(name: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    pytest.importorskip(name, reason=f"{name} comes with the lint extra (make venv)")
    return subprocess.run([sys.executable, "-m", name, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_mypy_passes_on_the_package(tmp_path):
    """gfapi.Stat was a variable holding the binding's class: not a type for mypy."""
    # a copy of the package imported (the tree's, or the installed one when run from an sdist)
    shutil.copytree(Path(uwsgi_gluster.__file__).parent, tmp_path / "uwsgi_gluster",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = tool("mypy", "--config-file", str(ROOT / "pyproject.toml"), "--follow-imports=silent",
                "--cache-dir", str(tmp_path / "cache"), PACKAGE, cwd=tmp_path)
    assert done.returncode == 0, done.stdout


def test_ruff_uses_the_project_rules(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    try:\n        os.getcwd()\n    except Exception:\n        pass\n")
    done = tool("ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), "--output-format",
                "concise", str(bad))
    assert done.returncode == 1
    assert "BLE001" in done.stdout  # not in ruff's default rule set

