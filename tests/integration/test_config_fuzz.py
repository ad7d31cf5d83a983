"""Config fuzzer (issue 9): whatever config text uWSGI accepts, uwsgi-gluster either
serves (exit 0 when stopped) or exits 1 with exactly one ``[glusterfs]`` line,
within 10 s, and never prints a traceback.

Seeded random configs (``CONFIG_FUZZ_SEED``, ``CONFIG_FUZZ_CASES``; default 300
cases, 4 at a time) built from fragments a user could write: good and broken
mount values, volume names libgfapi or glusterd refuse, numbers out of range,
``if-env`` / ``for`` blocks, placeholders defined, undefined or late, unknown
keys, comments, odd sections and characters.
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from typing import List

from configs import BASE, LAUNCHERS, Run

SEED = int(os.environ.get("CONFIG_FUZZ_SEED", "20261126"))
CASES = int(os.environ.get("CONFIG_FUZZ_CASES", "300"))
PARALLEL = 4
DEADLINE = 10.0

VOLUMES = ["unbit001", "unbit002", "unbit003", "nosuchvolume", "bad.name", "a/b", "%(vol)", "$(NOPE_VOLUME)",
           "unbit\\,001", "caf\u00e9", "x" * 80]
SERVERS = ["127.0.0.1:0", "127.0.0.1:24007", "127.0.0.1:1", "127.0.0.1:x", "127.0.0.1:99999", ":24007",
           "127.0.0.1:0;127.0.0.1:1", "127.0.0.1:1;127.0.0.1:0", "", "/nonexistent/glusterd.socket"]
MOUNTPOINTS = ["/", "/v2", "/a/b", "v3", "/%(_)", "/x y", ""]
NUMBERS = ["0", "1", "5", "-1", "soon", "", "2147483647", "2147483648", "99999999999999999999", "1.5", " 3 "]
# no "@": @(...) makes uWSGI itself read a file and exit when it is missing (natively too)
JUNK = "=,;:/%$()\\ab01 "
EXTRA = ["max-age=60", "max-age=-1", "index=index.html", "index=a/b", "autoindex=true", "autoindex=maybe",
         "symlinks=false", "precompressed=0", "colour=red", "oops", "volfile=/nonexistent.vol"]


def mount_value(rng: random.Random) -> str:
    items = [f"mountpoint={rng.choice(MOUNTPOINTS)}", f"volume={rng.choice(VOLUMES)}",
             f"server={rng.choice(SERVERS)}"]
    if rng.random() < 0.3:
        items.append(rng.choice(EXTRA))
    if rng.random() < 0.15:
        items.pop(rng.randrange(len(items)))
    rng.shuffle(items)
    return ",".join(items)


def good_mount(rng: random.Random, mountpoint: str = "/") -> str:
    return f"mountpoint={mountpoint},volume={rng.choice(VOLUMES[:3])},server=127.0.0.1:0"


def fragment(rng: random.Random) -> List[str]:
    kind = rng.randrange(12)
    if kind <= 2:
        return [f"glusterfs-mount = {mount_value(rng)}"]
    if kind == 3:
        return [f"glusterfs-timeout = {rng.choice(NUMBERS)}"]
    if kind == 4:
        return [f"glusterfs-connect-timeout = {rng.choice(NUMBERS)}"]
    if kind == 5:
        return [f"if-env = {rng.choice(['HOME', 'NOPE_NOT_SET'])}", f"glusterfs-mount = {mount_value(rng)}",
                "endif ="]
    if kind == 6:
        return ["for = 2 3", f"glusterfs-mount = mountpoint=/f%(_),volume={rng.choice(['unbit00%(_)', 'v%(_)'])},"
                             "server=127.0.0.1:0", "endfor ="]
    if kind == 7:  # not "%(vol)": a self-referential placeholder hangs uWSGI's parser (natively too)
        return [f"vol = {rng.choice([v for v in VOLUMES if 'vol)' not in v])}"]
    if kind == 8:
        return [rng.choice(["; a comment", "# another", "", "   ", "x-unknown-key = 1", "mimefile = /nonexistent",
                            "[other]", "[uwsgi]", "[uwsgix", "threads = 2", "master = true", "lazy-apps = true"])]
    if kind == 9:
        return [f"glusterfs-mount = {good_mount(rng, rng.choice(['/g1', '/g2']))}"]
    if kind == 10:
        return [f"set-placeholder = vol={rng.choice([v for v in VOLUMES if 'vol)' not in v])}"]
    return ["glusterfs-mount = " + "".join(rng.choice(JUNK) for _ in range(rng.randrange(1, 30)))]


def config_text(rng: random.Random) -> str:
    """Whole fragments in random order (a block is never split: uWSGI itself
    refuses unbalanced logic, natively too)."""
    fragments = [fragment(rng) for _ in range(rng.randrange(1, 6))]
    if rng.random() < 0.7:
        fragments.append([f"glusterfs-mount = {good_mount(rng)}"])
    rng.shuffle(fragments)
    return BASE + "\n".join(line for lines in fragments for line in lines) + "\n"


#: uWSGI's words when the port free_port() found was taken again before the bind
#: (by another case or any process's outgoing connection): not the config's doing.
PORT_TAKEN = "bind(): Address already in use"


def one_case(index: int, workdir) -> str:
    """'served', 'refused' if the launcher behaved, else what went wrong
    (a case whose port was taken under it runs again on another port)."""
    for attempt in range(3):
        outcome = run_case(index, workdir / f"case{index}-{attempt}")
        if outcome != PORT_TAKEN:
            return outcome
    return f"case {index}: the port was taken 3 times"


def run_case(index: int, workdir) -> str:
    rng = random.Random(SEED * 100003 + index)
    text = config_text(rng)
    run = Run(LAUNCHERS["uwsgi-gluster"], {"c.ini": text}, ("--ini", "c.ini"), workdir)
    run.start()
    try:
        serving = run.wait(DEADLINE)
    except AssertionError:
        run.stop()
        return f"case {index}: neither serving nor exited within {DEADLINE} s\n{text}"
    run.stop()
    log = run.log()
    if "Traceback" in log:
        return f"case {index}: traceback\n{text}\n{log[-2000:]}"
    if serving:
        return "served"
    ours = [line for line in log.splitlines() if line.startswith("[glusterfs]")]
    if not ours and PORT_TAKEN in log:
        return PORT_TAKEN
    if run.proc.returncode != 1 or len(ours) != 1:
        return (f"case {index}: exit {run.proc.returncode} with {len(ours)} [glusterfs] lines\n{text}\n"
                f"{log[-2000:]}")
    return "refused"


def test_config_fuzz_serves_or_exits_1_with_one_line(volumes, tmp_path, report):
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda i: one_case(i, tmp_path), range(CASES)))
    failures = [r for r in results if r not in ("served", "refused")]
    report(f"config fuzz: {CASES} cases, seed {SEED}: {results.count('served')} served, "
           f"{results.count('refused')} refused with one line, {len(failures)} failed")
    assert not failures, "\n\n".join(failures)
    assert CASES >= 300 or "CONFIG_FUZZ_CASES" in os.environ
