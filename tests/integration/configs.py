"""Real uWSGI configurations, run by every launcher, and which volume answers each path.

Each of unbit001..003 has /whoami.txt holding its own name (tests/conftest.py),
so the body of ``GET <mountpoint>/whoami.txt`` says which volume a launcher
mounted there. Used by test_config_differential.py (native vs uwsgi-gluster vs
./uwsgi) and test_config_fuzz.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from support import NATIVE_UWSGI, ROOT, UWSGI_GLUSTER, free_port, request

BUILT_UWSGI = str(ROOT / "uwsgi")
LAUNCHERS = {"native": [NATIVE_UWSGI], "uwsgi-gluster": [UWSGI_GLUSTER], "./uwsgi": [BUILT_UWSGI]}


def mount(mountpoint: str, volume: str) -> str:
    return f"mountpoint={mountpoint},volume={volume},server=127.0.0.1:0"


BASE = """[uwsgi]
plugins = glusterfs
http-socket = 127.0.0.1:{port}
http-socket-modifier1 = 27
manage-script-name = true
"""


@dataclass
class Outcome:
    """What a launcher did with a configuration."""

    returncode: Optional[int]  # None: it was serving (stopped by the test)
    answers: Dict[str, Tuple[int, bytes]]
    log: str


@dataclass
class Run:
    """One configuration started by one launcher in its own directory."""

    command: Sequence[str]
    files: Dict[str, str]
    args: Sequence[str]
    workdir: Path
    env: Dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: Optional[subprocess.Popen] = None

    def start(self, taken: Sequence[int] = ()) -> Run:
        self.port = free_port()
        while self.port in taken:
            self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name, text in self.files.items():
            (self.workdir / name).write_text(text.replace("{port}", str(self.port)).replace("{dir}", str(self.workdir)))
        env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
        env.update({k: v.replace("{port}", str(self.port)) for k, v in self.env.items()})
        self.log_path = self.workdir / "server.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([*self.command, *[a.replace("{port}", str(self.port)) for a in self.args]],
                                         cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float = 60) -> bool:
        """True once it answers HTTP, False if it exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                request(self.port, "HEAD", "/__ready__", timeout=5)
                return True
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{self.command} not serving nor exited after {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def outcome(self, paths: Sequence[str], timeout: float = 60) -> Outcome:
        try:
            if not self.wait(timeout):
                return Outcome(self.proc.returncode, {}, self.log())
            answers = {}
            for path in paths:
                reply = request(self.port, "GET", path)
                answers[path] = (reply.status, reply.body if reply.status == 200 else b"")
            return Outcome(None, answers, self.log())
        finally:
            self.stop()


def run_all(launchers: Sequence[str], files: Dict[str, str], args: Sequence[str], env: Dict[str, str],
            paths: Sequence[str], workdir: Path) -> Dict[str, Outcome]:
    """Start the configuration with every launcher at once; what each did."""
    runs = {name: Run(LAUNCHERS[name], files, args, workdir / name.strip("./"), env) for name in launchers}
    results: Dict[str, Outcome] = {}
    errors: List[BaseException] = []

    taken: List[int] = []

    def one(name: str) -> None:
        try:
            for _ in range(3):  # a port free_port() saw free can be taken by another process meanwhile
                with lock:
                    run = runs[name].start(taken)
                    taken.append(run.port)
                results[name] = run.outcome(paths)
                if "Address already in use" not in results[name].log:
                    break
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    lock = threading.Lock()

    threads = [threading.Thread(target=one, args=(name,)) for name in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
