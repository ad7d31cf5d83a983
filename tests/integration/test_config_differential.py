"""Drop-in for every config a native user has (issue 9): uWSGI's parser is the only parser.

Each configuration below is started by Debian's uWSGI with the native plugin,
by ``uwsgi-gluster`` and by ``./uwsgi``, side by side on the same volumes; the
test checks WHICH volume answers each path (by the content of /whoami.txt),
not just the status. Every launcher must give the expected table; where the
native plugin is broken, ``native`` pins its own (worse) answer and says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import pytest
from configs import BASE, mount, run_all

NATIVE, OURS, BUILT = "native", "uwsgi-gluster", "./uwsgi"
LAUNCHERS = (NATIVE, OURS, BUILT)
PATHS = ("/whoami.txt", "/v2/whoami.txt", "/v3/whoami.txt", "/priv/whoami.txt")
M1, M2, M3 = mount("/", "unbit001"), mount("/v2", "unbit002"), mount("/v3", "unbit003")


@dataclass
class Case:
    """``files`` (``{port}`` and ``{dir}`` filled in), ``args``, ``env``; ``serves``
    maps a path to the volume that must answer it (None: 404)."""

    name: str
    files: Dict[str, str]
    serves: Dict[str, Optional[str]]
    args: Sequence[str] = ("--ini", "c.ini")
    env: Dict[str, str] = field(default_factory=dict)
    #: where the native plugin is broken: its own answers, pinned
    native: Optional[Dict[str, Optional[str]]] = None


def ini(*lines: str) -> Dict[str, str]:
    return {"c.ini": BASE + "\n".join(lines) + "\n"}


ONLY_ROOT = {"/whoami.txt": "unbit001", "/v2/whoami.txt": None, "/v3/whoami.txt": None,
             "/priv/whoami.txt": None}
ALL_THREE = {"/whoami.txt": "unbit001", "/v2/whoami.txt": "unbit002", "/v3/whoami.txt": "unbit003",
             "/priv/whoami.txt": None}
PRIVATE = dict(ONLY_ROOT, **{"/priv/whoami.txt": "unbit002"})

YAML = """uwsgi:
  plugins: glusterfs
  http-socket: 127.0.0.1:{port}
  http-socket-modifier1: 27
  manage-script-name: true
  glusterfs-mount: %s
  glusterfs-mount: %s
  glusterfs-mount: %s
""" % (M1, M2, M3)

XML = """<uwsgi>
  <plugins>glusterfs</plugins>
  <http-socket>127.0.0.1:{port}</http-socket>
  <http-socket-modifier1>27</http-socket-modifier1>
  <manage-script-name/>
  <glusterfs-mount>%s</glusterfs-mount>
  <glusterfs-mount>%s</glusterfs-mount>
  <glusterfs-mount>%s</glusterfs-mount>
</uwsgi>
""" % (M1, M2, M3)

JSON = json.dumps({"uwsgi": {"plugins": "glusterfs", "http-socket": "127.0.0.1:{port}",
                             "http-socket-modifier1": 27, "manage-script-name": True,
                             "glusterfs-mount": [M1, M2, M3]}})

CASES = [
    Case("plain ini", ini(f"glusterfs-mount = {M1}"), ONLY_ROOT),
    Case("three mountpoints, / last", ini(f"glusterfs-mount = {M2}", f"glusterfs-mount = {M3}",
                                          f"glusterfs-mount = {M1}"), ALL_THREE),
    Case("if-env true block", ini(f"glusterfs-mount = {M1}", "if-env = GLUSTER_PRIVATE",
                                  f"glusterfs-mount = {mount('/priv', 'unbit002')}", "endif ="),
         PRIVATE, env={"GLUSTER_PRIVATE": "1"}),
    Case("if-env false block keeps a private volume private",
         ini(f"glusterfs-mount = {M1}", "if-env = GLUSTER_PRIVATE",
             f"glusterfs-mount = {mount('/priv', 'unbit002')}", "endif ="), ONLY_ROOT),
    Case("if-not-env", ini(f"glusterfs-mount = {M1}", "if-not-env = GLUSTER_PUBLIC_ONLY",
                           f"glusterfs-mount = {mount('/priv', 'unbit002')}", "endif ="), PRIVATE),
    Case("if-exists / if-not-exists", {**ini(f"glusterfs-mount = {M1}", "if-exists = {dir}/flag",
                                             f"glusterfs-mount = {mount('/priv', 'unbit002')}", "endif =",
                                             "if-not-exists = {dir}/flag",
                                             f"glusterfs-mount = {mount('/priv', 'unbit003')}", "endif ="),
                                       "flag": "x"}, PRIVATE),
    Case("alternative / mounts in if/else blocks (else taken)",
         ini("if-env = PROD", f"glusterfs-mount = {mount('/', 'unbit002')}", "endif =",
             "if-not-env = PROD", f"glusterfs-mount = {mount('/', 'unbit003')}", "endif ="),
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit003"})),
    Case("alternative / mounts in if/else blocks (if taken)",
         ini("if-env = PROD", f"glusterfs-mount = {mount('/', 'unbit002')}", "endif =",
             "if-not-env = PROD", f"glusterfs-mount = {mount('/', 'unbit003')}", "endif ="),
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit002"}), env={"PROD": "1"}),
    Case("for/endfor with %(_)", ini(f"glusterfs-mount = {M1}", "for = 2 3",
                                     "glusterfs-mount = mountpoint=/v%(_),volume=unbit00%(_),server=127.0.0.1:0",
                                     "endfor ="), ALL_THREE),
    Case("$(ENV) in a mount", ini("glusterfs-mount = mountpoint=/,volume=$(GLUSTER_VOLUME),server=127.0.0.1:0"),
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit003"}), env={"GLUSTER_VOLUME": "unbit003"}),
    Case("@(file) in a mount", {**ini("glusterfs-mount = mountpoint=/,volume=@({dir}/volume.txt),"
                                      "server=127.0.0.1:0"), "volume.txt": "unbit002"},
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit002"})),
    Case("@(exec://...) in a mount", ini("glusterfs-mount = mountpoint=/,volume=@(exec://echo -n unbit003),"
                                         "server=127.0.0.1:0"),
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit003"})),
    Case("set-placeholder", ini("set-placeholder = vol=unbit002", "glusterfs-mount = mountpoint=/,volume=%(vol),"
                                "server=127.0.0.1:0"), dict(ONLY_ROOT, **{"/whoami.txt": "unbit002"})),
    Case("%(name) defined after the mount line", ini("glusterfs-mount = mountpoint=/,volume=%(vol),"
                                                     "server=127.0.0.1:0", "vol = unbit003"),
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit003"})),
    Case("yaml", {"c.yml": YAML}, ALL_THREE, args=("--yaml", "c.yml")),
    Case("xml", {"c.xml": XML}, ALL_THREE, args=("--xml", "c.xml")),
    Case("json", {"c.json": JSON}, ALL_THREE, args=("--json", "c.json")),
    Case("config file given without option, by extension", {"c.yml": YAML}, ALL_THREE, args=("c.yml",)),
    Case("UWSGI_GLUSTERFS_MOUNT environment variable", ini(), dict(ONLY_ROOT, **{"/whoami.txt": "unbit002"}),
         env={"UWSGI_GLUSTERFS_MOUNT": mount("/", "unbit002")}),
    Case("UWSGI_INI environment variable", ini(f"glusterfs-mount = {M1}"), ONLY_ROOT, args=(),
         env={"UWSGI_INI": "c.ini"}),
    Case("file.ini:section", {"c.ini": BASE + f"glusterfs-mount = {M1}\n[prod]\n" + BASE.split("\n", 1)[1]
                              + f"glusterfs-mount = {mount('/', 'unbit003')}\n"},
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit003"}), args=("--ini", "c.ini:prod")),
    Case("section header quirk: [uwsgix selects [uwsgi]",
         {"c.ini": BASE.replace("[uwsgi]", "[uwsgix") + f"glusterfs-mount = {M1}\n"}, ONLY_ROOT),
    Case("nested ini = and %d", {**ini(f"glusterfs-mount = {M1}", "ini = %dinner.ini"),
                                 "inner.ini": f"[uwsgi]\nglusterfs-mount = {M2}\n"},
         dict(ONLY_ROOT, **{"/v2/whoami.txt": "unbit002"})),
    Case("ini = exec://", {**ini(f"glusterfs-mount = {M1}", "ini = exec://cat {dir}/inner.ini"),
                           "inner.ini": f"[uwsgi]\nglusterfs-mount = {M3}\n"},
         dict(ONLY_ROOT, **{"/v3/whoami.txt": "unbit003"})),
    Case("command line mounts keep their order with --ini", ini(f"glusterfs-mount = {M2}"), ALL_THREE,
         args=("--plugins", "glusterfs", "--glusterfs-mount", M1, "--ini", "c.ini", f"--glusterfs-mount={M3}")),
    Case("--set-ph on the command line", ini("glusterfs-mount = mountpoint=/,volume=%(vol),server=127.0.0.1:0"),
         dict(ONLY_ROOT, **{"/whoami.txt": "unbit002"}), args=("--set-ph", "vol=unbit002", "--ini", "c.ini")),
    Case("glusterfs-timeout = 0 is accepted", ini(f"glusterfs-mount = {M1}", "glusterfs-timeout = 0"), ONLY_ROOT),
    Case("%n magic: mountpoint named after the file", {"v2.ini": BASE + "glusterfs-mount = mountpoint=/%n,"
                                                       "volume=unbit002,server=127.0.0.1:0\n"
                                                       f"glusterfs-mount = {M1}\n"},
         dict(ONLY_ROOT, **{"/v2/whoami.txt": "unbit002"}), args=("--ini", "v2.ini")),
    Case("inherit = a template", {**ini("inherit = {dir}/base.ini", f"glusterfs-mount = {M3}"),
                                  "base.ini": f"[uwsgi]\nglusterfs-mount = {M1}\n"},
         dict(ONLY_ROOT, **{"/v3/whoami.txt": "unbit003"})),
]


def expected_answers(serves: Dict[str, Optional[str]]):
    return {path: (200, volume.encode()) if volume else (404, b"") for path, volume in serves.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_same_volume_answers_as_native(volumes, tmp_path, case):
    outcomes = run_all(LAUNCHERS, case.files, case.args, case.env, PATHS, tmp_path)
    for launcher in LAUNCHERS:
        outcome = outcomes[launcher]
        want = case.native if launcher == NATIVE and case.native is not None else case.serves
        assert outcome.returncode is None, f"{launcher} exited {outcome.returncode}:\n{outcome.log[-3000:]}"
        assert outcome.answers == expected_answers(want), f"{launcher}:\n{outcome.log[-3000:]}"
        assert "Traceback" not in outcome.log, f"{launcher}:\n{outcome.log[-3000:]}"


def test_there_are_at_least_25_configurations():
    assert len(CASES) >= 25
