"""The Debian plugin adds the same options as ./uwsgi's embedded configuration.

``profiles/glusterfs-embed.ini`` is what ./uwsgi reads before any ini; the
Debian plugin (``profiles/plugins/glusterfs.c``, UWSGI_GLUSTER_DSO) adds its
own options from C when ``plugins = glusterfs`` loads it. A key added to one
and not the other would make the two ways of running differ, so this pins them
together. Neither has ``remap-modifier`` nor ``route-run = setmodifier1:0``:
in both, the plugin's request hook gets modifier1 27 requests, sets modifier1 0
and answers a fresh hot answer or calls the Python plugin (see
test_debian_uwsgi.py's exception test, tests/build/test_hot_answers.py).
"""

from __future__ import annotations

import re

from distrosupport import REPO

EMBED_INI = REPO / "profiles" / "glusterfs-embed.ini"
PLUGIN_C = REPO / "profiles" / "plugins" / "glusterfs.c"
#: ./uwsgi's SIGHUP-as-chain-reload hook (uwsgi_gluster/reload.py) and the
#: enable-threads it needs: not in the Debian plugin yet (with them, the package's
#: throw-away-root lifecycle test left uwsgi processes behind; not investigated)
NOT_IN_THE_DEBIAN_PLUGIN = {("enable-threads", "true"), ("hook-master-start", "call:PyGILState_Ensure"),
                            ("hook-master-start", "call:PyRun_SimpleString import uwsgi_gluster.reload"),
                            ("hook-master-start", "callint:PyGILState_Release 1")}


def embed_options() -> set:
    options = set()
    for line in EMBED_INI.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith((";", "#", "[")):
            continue
        key, _, value = line.partition("=")
        options.add((key.strip(), value.strip()))
    return options


def dso_options() -> set:
    source = PLUGIN_C.read_text()
    dso = source[source.index("#ifdef UWSGI_GLUSTER_DSO"):]
    calls = re.findall(r'glusterfs_add_option\("([^"]+)",\s*(?:"((?:[^"\\]|\\.)*)"|PYTHON_MODULE)\)', dso)
    module = re.search(r'#define PYTHON_MODULE "([^"]+)"', source).group(1)
    # C string literals: the escapes used are \\ and \"
    return {(key, value.replace('\\"', '"').replace("\\\\", "\\") if value else module) for key, value in calls}


def _normalise(options: set) -> set:
    truthy = {"true", "1", "yes", "on"}
    return {(key, "true" if value.lower() in truthy else value) for key, value in options}


def test_dso_adds_what_the_embedded_config_says():
    assert _normalise(dso_options()) == _normalise(embed_options() - NOT_IN_THE_DEBIAN_PLUGIN)

