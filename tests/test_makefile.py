"""The Makefile's entry points, as far as they can be checked without touching the machine."""

from __future__ import annotations

import re
import subprocess
import sys

from support import ROOT


def make(*args: str) -> subprocess.CompletedProcess:
    """Run make in the repository with this interpreter's environment as the venv
    (``-o venv``: never create or reinstall one, whatever the stamps say)."""
    return subprocess.run(["make", "-s", "-C", str(ROOT), "-o", "venv", f"VENV={sys.prefix}", *args],
                          capture_output=True, text=True, timeout=120)


def phony_targets() -> set:
    """Every target declared .PHONY in the Makefile and mk/*.mk, from make's own database."""
    done = subprocess.run(["make", "-C", str(ROOT), "-pRrq", "-f", "Makefile", ":"],
                          capture_output=True, text=True, timeout=60)
    for line in done.stdout.splitlines():
        if line.startswith(".PHONY:"):
            return set(line.split(":", 1)[1].split())
    raise AssertionError("make printed no .PHONY line:\n" + done.stdout[-2000:])


def test_make_unit_collects_only_the_pure_units():
    """`make unit` used to collect tests/build too: it built ./uwsgi and created a system user."""
    done = make("unit", "PYTEST_ARGS=--collect-only -q")
    assert done.returncode == 0, done.stdout + done.stderr
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(ids) > 100
    outside = [i for i in ids if not re.match(r"tests/test_\w+\.py::", i)]
    assert outside == []


def test_make_help_lists_every_target_with_one_line():
    done = make("help")
    assert done.returncode == 0, done.stderr
    listed = {}
    for line in done.stdout.splitlines():
        match = re.match(r"  make (\S+)\s{2,}(\S.*)$", line)
        if match:
            listed[match.group(1)] = match.group(2)
    targets = phony_targets()
    assert {"run", "test", "unit", "help", "clean", "clean-all", "lint"} <= targets
    assert sorted(targets - set(listed)) == []
    assert sorted(set(listed) - targets) == []


def test_bench_nginx_without_the_bench_extra():
    """`make bench-nginx` (and bench-crowd, nginx-profile) never installed matplotlib:
    mk/bench-nginx.mk is included before mk/bench.mk, where the extra's stamp was
    defined, so its prerequisite expanded to nothing and no chart was drawn."""
    for target in ("bench-nginx", "nginx-profile", "bench"):
        done = make("-n", "-W", "setup.cfg", "-o", "gluster", target)
        assert done.returncode == 0, done.stderr
        assert "'.[test,lint,gevent,bench]'" in done.stdout, f"make {target} installs no bench extra:\n{done.stdout}"
