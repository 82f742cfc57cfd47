"""Quitting an interactive GDB after a call: no "Quit anyway?" question about ttd's own
temporary inferiors (gdb_plugin/commands/before_quit.py), and nothing of ttd's left running. With
one of the user's own processes live, GDB still asks, and both end on "y"."""

from __future__ import annotations

import os
import pty
import select
import signal
import time

import pytest

from tests.conftest import PLUGIN
from tests.e2e.procs import alive, descendants

pytestmark = pytest.mark.timeout(180)

CEILING_S = 60  # only catches a hang
PROMPT = b"(gdb) "
QUESTION = b"Quit anyway? (y or n)"


class PtyGdb:
    """GDB on a terminal, as a user runs it (confirmations on)."""

    def __init__(self, db):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execvp(
                "gdb",
                ["gdb", "-nx", "-q", "-iex", "set style enabled off", "-ex", f"source {PLUGIN}"]
                + ["-ex", f"ttd open {db}"],
            )
        self.out = b""
        self.wait_for(PROMPT)

    def wait_for(self, *marks: bytes) -> bytes:
        """Read until one of `marks` is in what came since the last wait; that text."""
        start, deadline = len(self.out), time.monotonic() + CEILING_S
        while not any(m in self.out[start:] for m in marks):
            left = deadline - time.monotonic()
            assert left > 0, f"GDB printed no {marks!r}:\n{self.out.decode(errors='replace')}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready and not self._read():
                break
        return self.out[start:]

    def _read(self) -> bool:
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: GDB is gone
            return False
        self.out += data
        return bool(data)

    def send(self, command: str) -> None:
        os.write(self.fd, command.encode() + b"\n")

    def run(self, command: str, *marks: bytes) -> str:
        self.send(command)
        return self.wait_for(*(marks or (PROMPT,))).decode(errors="replace")

    def exit_status(self) -> int:
        """GDB's exit status once it has ended (bounded)."""
        deadline = time.monotonic() + CEILING_S
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                self._read()
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError(f"GDB did not exit:\n{self.out.decode(errors='replace')}")


def _all_gone(pids) -> bool:
    deadline = time.monotonic() + CEILING_S
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_quit_after_a_call_asks_nothing_and_ends_everything(targets_db):
    db, _ = targets_db
    gdb = PtyGdb(db)
    assert "$1 = " in gdb.run("call-at-time 1 depth(3)")
    ours = descendants(gdb.pid)
    assert ours, "a call keeps its process: there must be something to end"
    gdb.send("quit")
    assert gdb.exit_status() == 0  # a question would wait for its answer: no exit
    assert QUESTION not in gdb.out
    assert _all_gone(ours), f"left running: {[p for p in ours if alive(p)]}"


def test_quit_from_goto_asks_nothing(targets_db):
    db, _ = targets_db
    gdb = PtyGdb(db)
    gdb.run("ttd goto 1")
    assert "#0" in gdb.run("bt 1")
    ours = descendants(gdb.pid)
    gdb.send("quit")
    assert gdb.exit_status() == 0
    assert QUESTION not in gdb.out
    assert _all_gone(ours)


def test_the_users_own_process_still_gets_the_question(targets_db):
    db, binary = targets_db
    gdb = PtyGdb(db)
    gdb.run(f"file {binary}")
    gdb.run("starti")
    gdb.run("call-at-time 1 depth(3)")
    ours = descendants(gdb.pid)
    asked = gdb.run("quit", QUESTION)
    assert "will be killed" in asked  # the user's own program
    gdb.send("y")
    assert gdb.exit_status() == 0
    assert _all_gone(ours)
