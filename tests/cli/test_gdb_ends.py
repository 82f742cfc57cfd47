"""When GDB dies, the command line notices at once and says how (issue 8, item 8), and
nothing GDB started is left: not gdbserver, the page server, the rematerialized
process or the recorded program, not even as a zombie."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.cli.conftest import descendants
from tests.conftest import TTD
from tests.e2e.procs import comm, stat_fields
from tests.record.runs import start_record

pytestmark = pytest.mark.timeout(180)

HANG_S = 60  # a ceiling that only catches hangs


def wait_for(condition, what: str):
    """Poll condition() until it gives something true; fail after HANG_S."""
    deadline = time.monotonic() + HANG_S
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def kill_gdb_when(proc: subprocess.Popen, ready) -> dict[int, str]:
    """Once ready(processes below ttd) holds, SIGKILL ttd's GDB; {pid: name} of every
    process that was below ttd then."""

    def below_when_ready():
        assert proc.poll() is None, proc.communicate()
        below = descendants(proc.pid)
        return below if ready(below) else None

    below = wait_for(below_when_ready, "ttd's GDB got to the point")
    names = {pid: comm(pid) for pid in below}
    gdb = [pid for pid, name in names.items() if name == "gdb"]
    assert len(gdb) == 1, names
    os.kill(gdb[0], signal.SIGKILL)
    return names


def running(pid: int) -> bool:
    fields = stat_fields(pid)
    return fields is not None and fields[0] == "R"


def test_gdb_killed_during_a_call(target_db):
    db, _ = target_db
    proc = subprocess.Popen(
        [str(TTD), "call", str(db), "--at", "1", "--timeout", "120", "spin()"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        below = kill_gdb_when(
            proc,
            lambda pids: (
                any(comm(p) == "gdbserver" for p in pids)
                and any(comm(p) == "ttd-stub" and running(p) for p in pids)
            ),
        )
        # the call spins (the stub also runs for a moment while it builds the process,
        # before gdbserver is there)
        out, err = proc.communicate(timeout=HANG_S)
    finally:
        proc.kill()
        proc.wait()
    assert set(below.values()) >= {"gdb", "gdbserver", "ttd-pageserver", "ttd-stub"}
    assert (proc.returncode, out) == (2, "")
    assert err == "ttd: GDB ended unexpectedly (killed by SIGKILL) during 'call-at-time'.\n"
    assert [p for p in below if stat_fields(p) is not None] == []  # gone, not even zombies


def test_gdb_killed_during_a_recording(build_target, tmp_path):
    sleeper = build_target("tests/record/sleeper.c")
    db, pid_file = tmp_path / "s.db", tmp_path / "pid"
    proc = start_record(db, sleeper, pid_file, hits=1)

    def sleeping_after_the_snapshot(pids) -> bool:  # stopped (t) at the breakpoint before
        if not pid_file.exists() or not pid_file.read_text().endswith("\n"):
            return False
        fields = stat_fields(int(pid_file.read_text()))
        return fields is not None and fields[0] == "S"

    try:
        below = kill_gdb_when(proc, sleeping_after_the_snapshot)
        out, err = proc.communicate(timeout=HANG_S)
    finally:
        proc.kill()
        proc.wait()
    program = int(pid_file.read_text())
    assert program in below
    assert proc.returncode == 2
    assert err == (
        "ttd: GDB ended unexpectedly (killed by SIGKILL) during the recording. "
        f"1 snapshot recorded into '{db}'.\n"
    )
    assert [p for p in below if stat_fields(p) is not None] == []
