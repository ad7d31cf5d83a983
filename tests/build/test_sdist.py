"""The source distribution: the whole project, installable, and its own unit tests pass from it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

from buildsupport import REPO

# Tracked files that are only about the git checkout itself.
NOT_IN_SDIST = {".gitignore"}


def run(argv: list, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def tracked_files() -> set:
    if not (REPO / ".git").exists():  # running from an unpacked sdist: nothing to compare with
        return set()
    listed = run(["git", "-C", REPO, "ls-files", "-z"]).stdout.split("\0")
    return {name for name in listed if name and (REPO / name).exists()} - NOT_IN_SDIST


def fresh_checkout(dest: Path) -> Path:
    """The project as a fresh clone has it: no egg-info (setuptools would add whatever
    an old SOURCES.txt lists), no venv, no build products."""
    tracked = tracked_files()
    if tracked:
        for name in tracked | NOT_IN_SDIST:
            if (REPO / name).exists():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, dest / name)
        return dest

    def ignore(folder: str, names: list) -> set:
        top = Path(folder) == REPO
        return {n for n in names if n.endswith(".egg-info") or n == "__pycache__"
                or (top and n in {".venv", "build", "dist", "uwsgi", "bench-results"})}

    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


def test_sdist_holds_the_project_installs_and_passes_its_own_unit_tests(tmp_path):
    """Before: the sdist lacked tests/conftest.py, support.py, corpus.py, the Makefile,
    mk/, profiles/, scripts/, ini/ and docs/: its tests could not even import."""
    checkout = fresh_checkout(tmp_path / "checkout")
    run([sys.executable, "-m", "build", "--sdist", "--outdir", tmp_path / "dist", checkout])
    (sdist,) = (tmp_path / "dist").glob("uwsgi_gluster-*.tar.gz")
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        members = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
        tar.extractall(tmp_path / "unpacked")
    assert sorted(tracked_files() - members) == []
    for needed in ("LICENSE", "CHANGELOG.md", "Makefile", "tests/conftest.py", "tests/support.py",
                   "tests/corpus.py", "docs/bench.png", "scripts/uwsgi_build.py", "profiles/glusterfs.ini"):
        assert needed in members
    src = tmp_path / "unpacked" / top

    # A fresh virtualenv holding only the sdist's package; its dependencies (pyuwsgi, gfapi,
    # pytest...) come from this environment's site-packages through a .pth line (the
    # package index only serves setuptools for the build, as for `python -m build`).
    # The source copy of the package is then removed: the tests can only import the
    # installed one.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "_outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", sdist])
    shutil.rmtree(src / "uwsgi_gluster")
    where = run([python, "-c", "import uwsgi_gluster; print(uwsgi_gluster.__file__, uwsgi_gluster.__version__)"],
                cwd=tmp_path).stdout.split()
    assert Path(where[0]).is_relative_to(purelib)
    assert (venv / "bin" / "uwsgi-gluster").exists()

    done = run(["make", "--no-print-directory", "-C", src, "-o", "venv", f"VENV={venv}", "unit", "PYTEST_ARGS=-q"])
    summary = done.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 400 and "failed" not in summary and "error" not in summary, summary
