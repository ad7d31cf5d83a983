"""`make run` as a user runs it: in a terminal, read the address, browse, press Ctrl-C."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
import urllib.request

from support import ROOT, free_port

READY = re.compile(rb"\[uwsgi-gluster\] ready at (http://127\.0\.0\.1:\d+/) \(Ctrl-C to stop\)")


class Terminal:
    """A command on its own pseudo-terminal (its controlling tty, like a shell's job)."""

    def __init__(self, argv: list) -> None:
        self.fd, slave = os.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.output = b""

    def read_until(self, pattern: re.Pattern, limit: float) -> re.Match | None:
        """Read until ``pattern`` shows up in the output, EOF or ``limit`` seconds (a safety net)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            match = pattern.search(self.output)
            if match:
                return match
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: every process holding the terminal is gone
                    return pattern.search(self.output)
                if not chunk:
                    return pattern.search(self.output)
                self.output += chunk
        return pattern.search(self.output)

    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")

    def close(self) -> None:
        if self.proc.poll() is None:  # only the session this test started
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        os.close(self.fd)


def descendants(pid: int) -> list:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as handle:
                kids = [int(p) for p in handle.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def get(url: str) -> tuple:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.status, resp.read()


def test_make_run_says_where_it_serves_lists_docs_and_exits_0_on_ctrl_c():
    """Before: ~70 lines and no address, no master (Ctrl-C gave `make: *** Error 30`), /docs/ 403."""
    port = free_port()
    term = Terminal(["make", "-C", str(ROOT), "-o", "venv", f"VENV={sys.prefix}", "run", f"RUN_PORT={port}"])
    try:
        ready = term.read_until(READY, 300)
        assert ready, term.text()[-3000:]
        assert ready.group(1).decode() == f"http://127.0.0.1:{port}/"
        before_ready = term.output[:ready.start()].decode(errors="replace").splitlines()
        assert len(before_ready) <= 15, term.text()

        status, body = get(f"http://127.0.0.1:{port}/docs/")
        assert status == 200 and b"Index of /docs/" in body and b"read me.txt" in body
        assert get(f"http://127.0.0.1:{port}/hello.txt") == (200, b"Hello, Gluster\n")

        servers = descendants(term.proc.pid)
        assert len(servers) >= 2, "a master and its worker"

        os.write(term.fd, b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground group
        assert term.read_until(re.compile(rb"goodbye to uWSGI"), 60), term.text()[-3000:]
        term.proc.wait(60)
        term.read_until(re.compile(rb"\Z\A"), 2)  # drain the rest
        # uWSGI exited 0: make reports no error; make itself then ends by the same SIGINT
        assert "make: ***" not in term.text(), term.text()[-3000:]
        assert term.proc.returncode in (0, -signal.SIGINT)
        assert [pid for pid in servers if alive(pid)] == []
    finally:
        term.close()
