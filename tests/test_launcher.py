"""The console script: argv handling, client commands, help/version, refusing bad
configurations in the master, and SIGINT while uWSGI's parser hangs."""

import json
import signal
import subprocess
import sys
import time

import pytest

from support import NATIVE_UWSGI, UWSGI_GLUSTER
from uwsgi_gluster import __version__, cplugin
from uwsgi_gluster.launcher import PLUGIN_ARGS, default_args, plugin_args, rewrite_own_options, uwsgi_argv

M = "mountpoint=/,volume=v,server=h:0"


@pytest.mark.parametrize("argv,expected", [
    (["--ini", "a.ini", "--glusterfs-mount", M, "--threads", "4"],
     ["--ini", "a.ini", "--set", f"glusterfs-mount={M}", "--threads", "4"]),
    ([f"--glusterfs-mount={M}", "--ini", "b.ini", "--glusterfs-timeout=0"],
     ["--set", f"glusterfs-mount={M}", "--ini", "b.ini", "--set", "glusterfs-timeout=0"]),
    (["--glusterfs-connect-timeout", "3", "--cap", "net_bind_service"],
     ["--set", "glusterfs-connect-timeout=3", "--set", "cap=net_bind_service"]),
    (["--stop", "x.pid"], ["--stop", "x.pid"]),
    (["--glusterfs-mountx", "y"], ["--glusterfs-mountx", "y"]),
])
def test_own_options_become_set_in_place(argv, expected):
    assert rewrite_own_options(argv) == expected


def test_uwsgi_argv_adds_the_plugin_and_is_stable_across_a_reload():
    argv = uwsgi_argv(["--ini", "a.ini", "--glusterfs-mount", M])
    assert argv == [*default_args(), "--ini", "a.ini", "--set", f"glusterfs-mount={M}", *PLUGIN_ARGS]
    assert "--shared-import" in PLUGIN_ARGS and "uwsgi_gluster.check" in PLUGIN_ARGS
    assert uwsgi_argv(argv) == argv  # a reload re-executes the script with the same argv


def test_with_the_c_plugin_it_is_loaded_first_and_modifier1_27_is_not_remapped():
    so = "/venv/lib/uwsgi-gluster/glusterfs_plugin.so"
    argv = uwsgi_argv(["--ini", "a.ini", "--glusterfs-mount", M], so)
    assert argv[:2] == ["--plugin", so]  # before any ini: a user's `plugins = glusterfs` finds it taken
    assert argv == [*default_args(so), "--ini", "a.ini", "--set", f"glusterfs-mount={M}", *plugin_args(so)]
    assert "--remap-modifier" not in argv and "setmodifier1:0" not in argv
    assert "--shared-import" in argv and "--disable-write-exception" in argv and "--route-if-not" in argv
    assert uwsgi_argv(argv, so) == argv
    # a reload after the plugin went away (or came) keeps the user's part
    without = uwsgi_argv(argv, None)
    assert without == uwsgi_argv(["--ini", "a.ini", "--glusterfs-mount", M])
    assert uwsgi_argv(without, so) == argv


def test_c_plugin_built_for_another_pyuwsgi_is_not_loaded(tmp_path):
    fake_pyuwsgi = tmp_path / "pyuwsgi.so"
    fake_pyuwsgi.write_bytes(b"x")
    so = tmp_path / "glusterfs_plugin.so"
    assert cplugin.load(str(fake_pyuwsgi), "2.0.30", so) == cplugin.NotLoaded(
        f"no C plugin at {so} (make pyplugin builds it)")
    so.write_bytes(b"not an ELF file")
    assert "glusterfs_plugin.json" in cplugin.load(str(fake_pyuwsgi), "2.0.30", so).reason
    cplugin.stamp_path(so).write_text(json.dumps(cplugin.stamp(str(fake_pyuwsgi), "2.0.29")))
    assert "built for another pyuwsgi" in cplugin.load(str(fake_pyuwsgi), "2.0.30", so).reason
    cplugin.stamp_path(so).write_text(json.dumps(cplugin.stamp(str(fake_pyuwsgi), "2.0.30")))
    assert "does not load" in cplugin.load(str(fake_pyuwsgi), "2.0.30", so).reason


def test_binary_path_is_the_console_script_so_vassals_and_reloads_run_it():
    args = default_args()
    path = args[args.index("--binary-path") + 1]
    assert path.endswith("/uwsgi-gluster") and "python" not in path.rsplit("/", 1)[1]


@pytest.mark.parametrize("line,problem", [
    ("glusterfs-mount = mountpoint=/,server=127.0.0.1:0", "missing volume"),
    ("glusterfs-mount = mountpoint=/,volume=v,server=127.0.0.1:0,typo=1", "unknown key 'typo'"),
    ("glusterfs-mount = mountpoint=/,volume=v,server=127.0.0.1:x", "bad port 'x'"),
    ("glusterfs-mount = volume=v,server=127.0.0.1:0", "missing mountpoint"),
    ("glusterfs-mount = mountpoint=/,volume=v", "missing server (or volfile)"),
    ("glusterfs-mount = mountpoint=/,volume=bad.name,server=127.0.0.1:0", "not one libgfapi accepts"),
    ("glusterfs-timeout = 99999999999999999999", "from 0 to 2147483647"),
])
def test_bad_value_stops_start_up_in_the_master_with_one_line(tmp_path, line, problem):
    ini = tmp_path / "bad.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:0\nhttp-socket-modifier1 = 27\nmaster = true\n"
                   f"lazy-apps = true\n{line}\n")
    done = subprocess.run([UWSGI_GLUSTER, "--ini", str(ini)], capture_output=True, text=True, timeout=60)
    out = done.stdout + done.stderr
    assert done.returncode == 1
    ours = [text for text in out.splitlines() if text.startswith("[glusterfs]")]
    assert len(ours) == 1 and problem in ours[0], out
    assert ours[0].startswith(f"[glusterfs] {line.split(' = ')[0]} #1 = ")
    assert f"(config: {ini})" in ours[0]
    assert "Traceback" not in out and "spawned uWSGI worker" not in out


def test_bad_command_line_mount_is_checked_like_any_other():
    done = subprocess.run([UWSGI_GLUSTER, "--http-socket", "127.0.0.1:0", "--glusterfs-mount", "mountpoint=/"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "[glusterfs] glusterfs-mount #1 = 'mountpoint=/': mount requires" in done.stderr


def test_version_prints_ours_and_uwsgis():
    done = subprocess.run([UWSGI_GLUSTER, "--version"], capture_output=True, text=True, timeout=60)
    native = subprocess.run([NATIVE_UWSGI, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == f"uwsgi-gluster {__version__}"
    assert lines[1].startswith("uWSGI 2.0.") and native.stdout.startswith("2.0.")


def test_help_lists_our_options_under_our_name():
    done = subprocess.run([UWSGI_GLUSTER, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: uwsgi-gluster ")
    for key in ("glusterfs-mount", "glusterfs-timeout", "glusterfs-connect-timeout"):
        line = next(text for text in done.stdout.splitlines() if text.strip().startswith(f"--{key} "))
        assert len(line.split(None, 1)[1]) > 10  # a one-line help
    assert "--http-socket" in done.stdout  # and uWSGI's own
    assert sys.executable not in done.stdout and "/bin/python" not in done.stdout


@pytest.mark.parametrize("args", [["--stop", "/nonexistent/x.pid"], ["--reload", "/nonexistent/x.pid"],
                                  ["--connect-and-read", "127.0.0.1:1"]])
def test_uwsgi_client_commands_pass_through_like_native(args):
    mine = subprocess.run([UWSGI_GLUSTER, *args], capture_output=True, text=True, timeout=60)
    theirs = subprocess.run([NATIVE_UWSGI, *args], capture_output=True, text=True, timeout=60)
    assert mine.returncode == theirs.returncode
    assert "glusterfs" not in mine.stderr + mine.stdout
    assert mine.stderr.split(" [core/")[0].split("(")[0] == theirs.stderr.split(" [core/")[0].split("(")[0]


def test_sigint_stops_launcher_while_uwsgi_parser_hangs_on_self_referential_placeholder(tmp_path):
    """Regression (issue 10 item 9): uWSGI's parser loops for ever on a placeholder
    that refers to itself (native too), in C code that never returns to Python's
    deferred signal handling; the launcher then ignored SIGINT until SIGKILL."""
    ini = tmp_path / "loop.ini"
    ini.write_text("[uwsgi]\nset-placeholder = a=x%(a)\nbar = %(a)\nhttp-socket = 127.0.0.1:0\n"
                   "glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0\n")
    proc = subprocess.Popen([UWSGI_GLUSTER, "--ini", str(ini)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = proc.stdout.readline()  # uWSGI announces the file, then hangs in its parser
        assert b"getting INI configuration" in line
        time.sleep(1)
        assert proc.poll() is None, "the parser did not hang: this test no longer tests anything"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == -signal.SIGINT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_log_finds_uwsgi_created_after_import(monkeypatch, capsys):
    """Regression: the launcher imports log.py before pyuwsgi creates `uwsgi`;
    worker ids and uWSGI's logger must still be used once it exists."""
    import types

    from uwsgi_gluster import log

    assert log.worker_id() == 0
    lines = []
    fake = types.SimpleNamespace(worker_id=lambda: 3, log=lines.append)
    monkeypatch.setitem(sys.modules, "uwsgi", fake)
    log.log(f"worker {log.worker_id()} connected")
    assert lines == ["[glusterfs] worker 3 connected"]
