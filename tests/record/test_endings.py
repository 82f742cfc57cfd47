"""How `ttd record` ends: SIGINT and SIGTERM (with and without a terminal), the program's
exit status, a breakpoint in a library loaded later, a full disk, and a program that uses
userfaultfd itself."""

from __future__ import annotations

import os
import pty
import signal
import sqlite3
import subprocess
import time

import pytest

from snapshotdb.db import open_recording
from tests.cli.conftest import descendants, timeline
from tests.conftest import require, run_ttd
from tests.e2e.procs import stat_fields
from tests.record.memory import global_value
from tests.record.runs import record_checkpoints, start_record

WAIT_S = 60  # a ceiling that only catches hangs


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.05)


def snapshots_in(db) -> int:
    """Snapshots committed so far (read while the recording goes on)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM snapshot").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # tables not made yet


def ignore_sigint() -> None:
    """What a shell without job control does to a command it starts in the background."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "signum, popen",
    [
        (signal.SIGTERM, {"stdin": subprocess.DEVNULL}),
        (signal.SIGINT, {"stdin": subprocess.DEVNULL, "preexec_fn": ignore_sigint}),
    ],
    ids=["sigterm", "sigint-ignored-by-the-shell"],
)
def test_a_signal_stops_the_recording_cleanly(build_target, tmp_path, signum, popen):
    sleeper = build_target("tests/record/sleeper.c")
    db, pid_file = tmp_path / "s.db", tmp_path / "pid"
    proc = start_record(db, sleeper, pid_file, **popen)
    try:
        wait_for(lambda: snapshots_in(db) == 2, "second snapshot")
        below = descendants(proc.pid)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        proc.kill()
        proc.wait()
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum
    assert err == (
        f"ttd: recording stopped by {name}; 2 snapshots recorded into '{db}'; the "
        "program was killed.\n"
    )
    program = int(pid_file.read_text())
    assert program in below
    assert [p for p in below if stat_fields(p) is not None] == []  # GDB and the program
    assert [e["reason"] for e in timeline(db)] == ["breakpoint", "breakpoint"]


def test_ctrl_c_on_a_terminal_stops_the_recording(build_target, tmp_path):
    sleeper = build_target("tests/record/sleeper.c")
    db, pid_file = tmp_path / "s.db", tmp_path / "pid"
    master, slave = pty.openpty()
    try:
        proc = start_record(
            db,
            sleeper,
            pid_file,
            hits=1,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0),
        )
        wait_for(lambda: snapshots_in(db) == 1, "snapshot")
        os.write(master, b"\x03")  # the terminal sends SIGINT to its foreground group
        proc.wait(timeout=WAIT_S)
    finally:
        os.close(slave)
    shown = _drain(master)
    assert proc.returncode == 128 + signal.SIGINT
    assert (
        f"ttd: recording stopped by SIGINT; 1 snapshot recorded into '{db}'; the program "
        "was killed."
    ).encode() in shown.replace(b"\r\n", b"\n")
    assert stat_fields(int(pid_file.read_text())) is None


def _drain(master: int) -> bytes:
    shown = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed and drained
            break
        if not data:
            break
        shown += data
    os.close(master)
    return shown


@pytest.mark.parametrize(
    "arg, status, how",
    [
        ("0", 0, "the program exited with status 0"),
        ("3", 3, "the program exited with status 3"),
        ("abort", 128 + signal.SIGABRT, "the program was killed by SIGABRT"),
    ],
)
def test_exit_status_is_the_programs(build_target, tmp_path, arg, status, how):
    exits = build_target("tests/record/exits.c")
    db = tmp_path / "e.db"
    done = run_ttd("record", "-o", str(db), "--break", "step", "--", str(exits), arg, timeout=120)
    assert done.returncode == status, done.stderr
    # step, then the exit or the fatal signal
    assert done.stderr.splitlines()[-1] == f"ttd: recorded 2 snapshots into '{db}'; {how}."
    assert [e["reason"] for e in timeline(db)] == [
        "breakpoint",
        "signal" if arg == "abort" else "exit",
    ]


def test_one_snapshot_is_said_so(build_target, tmp_path):
    exits = build_target("tests/record/exits.c")
    done = run_ttd("record", "-o", str(tmp_path / "o.db"), "--", str(exits), "0", timeout=120)
    assert done.returncode == 0
    assert done.stderr.splitlines()[-1].startswith("ttd: recorded 1 snapshot into ")


def test_breakpoint_in_a_library_loaded_later(build_target, tmp_path):
    lib = build_target("tests/record/late_lib.c", "-shared", "-fPIC")
    prog = build_target("tests/record/dlopens.c", "-ldl")
    db = tmp_path / "d.db"
    done = run_ttd(
        "record", "-o", str(db), "--break", "lib_step", "--", str(prog), str(lib), timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "lib total 6\n"
    entries = timeline(db)
    assert [e["reason"] for e in entries] == ["breakpoint"] * 3 + ["exit"]
    assert [e["function"] for e in entries[:3]] == ["lib_step"] * 3
    assert all(e["file"].endswith("late_lib.c") for e in entries[:3])


def test_full_disk(build_target, tmp_path):
    """The snapshot that does not fit fails with the database named; the ones before stay
    readable, by timeline and by call."""
    require(os.geteuid() == 0, "mounting a small tmpfs needs root")
    grows = build_target("tests/record/grows.c")
    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    require(mounted.returncode == 0, f"cannot mount a tmpfs: {mounted.stderr}")
    try:
        db = disk / "g.db"
        done = run_ttd(
            "record", "-o", str(db), "--break", "checkpoint", "--", str(grows), "32", timeout=300
        )
        entries = timeline(db)
        n = len(entries)
        assert done.returncode == 2
        assert done.stderr.splitlines()[-1] == (
            f"ttd: Snapshot failed: The disk is full: tick {n + 1} could not be written into "
            f"'{db}'; {n} snapshot{'s' if n != 1 else ''} recorded into '{db}' before it."
        )
        assert 1 <= n < 32 and [e["tick"] for e in entries] == list(range(1, n + 1))
        called = run_ttd("call", str(db), "--at", str(n), "--json", "grown", timeout=120)
        assert called.returncode == 0, called.stderr
        assert f'"value": "{n}"' in called.stdout
        assert not (disk / "g.db-journal").exists()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _killed_during_a_write(db) -> None:
    """What a recorder killed during a snapshot leaves: a write transaction's pages in the
    file (a 1-page cache spills them), their originals in the journal, no commit."""
    pid = os.fork()
    if pid == 0:
        try:
            conn = sqlite3.connect(db, isolation_level=None)
            conn.execute("PRAGMA cache_size=1")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE page_content SET data = zeroblob(100), xxh3 = NULL")
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)


def test_a_recorder_killed_during_a_snapshot_leaves_the_others_readable(build_target, tmp_path):
    """The next ttd that opens the recording rolls the unfinished snapshot back (a
    read-only connection cannot); timeline and call see the snapshots committed before."""
    done, db, _ = record_checkpoints(build_target, tmp_path, "tests/record/grows.c", "3")
    assert done.returncode == 0, done.stderr
    _killed_during_a_write(db)
    assert (tmp_path / "r.db-journal").stat().st_size > 0
    assert [e["tick"] for e in timeline(db)][:3] == [1, 2, 3]
    assert not (tmp_path / "r.db-journal").exists()
    called = run_ttd("call", str(db), "--at", "3", "--json", "grown", timeout=120)
    assert called.returncode == 0, called.stderr
    assert '"value": "3"' in called.stdout


def test_a_program_that_uses_userfaultfd_itself(build_target, tmp_path):
    done, db, prog = record_checkpoints(build_target, tmp_path, "tests/record/own_uffd.c")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "own userfaultfd ok\n"
    assert done.stderr.splitlines()[0] == (
        "ttd: writes of process "
        + done.stderr.split("writes of process ")[1].split()[0]
        + " are not tracked (the program uses userfaultfd itself): every snapshot reads all "
        "its memory"
    )
    with open_recording(db) as recording, recording.session() as session:
        values = [global_value(session, prog, "value", t, 4) for t in (1, 2, 3)]
    assert values == [1, 2, 3]


def test_a_program_that_runs_exec_of_itself(build_target, tmp_path):
    """The memory the tracking was armed on goes away with exec: the next snapshot reads
    everything, and the tracking is armed again on the new image."""
    done, db, prog = record_checkpoints(build_target, tmp_path, "tests/record/reexec.c")
    assert done.returncode == 0, done.stderr
    assert "not tracked" not in done.stderr
    with open_recording(db) as recording, recording.session() as session:
        assert [global_value(session, prog, "value", t) for t in (1, 2, 3)] == [1, 2, 3]
