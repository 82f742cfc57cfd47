"""`ttd record` end to end: breakpoints with --hits, a crash recorded before it kills the
process, an exit snapshot, the program's output, incremental storage, and bad input."""

from __future__ import annotations

import os
import pty
import subprocess

import pytest
from sqlalchemy import func, select

from snapshotdb import queries
from snapshotdb.db import open_recording
from snapshotdb.models import PageContent, PageVersion
from tests.cli.conftest import timeline
from tests.conftest import TTD, run_ttd
from tests.record.memory import global_value

PAGE = 4096
HEAP_PAGES = (64 << 20) // PAGE


def test_breakpoints_hits_and_exit(build_target, tmp_path):
    bank = build_target("examples/bank.c")
    db = tmp_path / "bank.db"
    result = run_ttd(
        "record",
        "-o",
        str(db),
        "--break",
        "transfer",
        "--hits",
        "3",
        "--break",
        "total_cents",
        "--",
        str(bank),
        "5",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "5 transfers, 1500 cents moved, total 13200\n"  # the program's own
    assert f"recorded 5 snapshots into '{db}'" in result.stderr
    entries = timeline(db)
    assert [e["tick"] for e in entries] == [1, 2, 3, 4, 5]
    assert [e["reason"] for e in entries] == ["breakpoint"] * 4 + ["exit"]
    assert [e["function"] for e in entries[:4]] == ["transfer"] * 3 + ["total_cents"]
    assert all(e["file"].endswith("bank.c") and e["line"] > 0 for e in entries[:4])
    assert entries[0]["line"] == entries[1]["line"] == entries[2]["line"]
    assert len({e["thread"] for e in entries}) == 1
    assert all(e["pc"].startswith("0x") for e in entries)


def test_ledger_changes_between_ticks(build_target, tmp_path):
    """The recorded globals are the program's: ledger.transfers counts up tick by tick."""
    bank = build_target("examples/bank.c")
    db = tmp_path / "bank.db"
    run_ttd(
        "record",
        "-o",
        str(db),
        "--break",
        "transfer",
        "--",
        str(bank),
        "4",
        timeout=120,
        check=True,
    )
    with open_recording(db) as recording, recording.session() as session:
        counts = [global_value(session, bank, "ledger", t) for t in (1, 2, 3, 4)]
    assert counts == [0, 1, 2, 3]


def test_crash_is_recorded_before_it_kills(build_target, tmp_path):
    crash = build_target("tests/record/crash.c")
    db = tmp_path / "crash.db"
    result = run_ttd(
        "record", "-o", str(db), "--break", "step", "--hits", "2", "--", str(crash), timeout=120
    )
    assert result.returncode == 128 + 11, result.stderr  # the program's: SIGSEGV
    assert result.stdout == "about to crash after 6\n"
    assert "the program was killed by SIGSEGV" in result.stderr
    entries = timeline(db)
    assert [(e["tick"], e["reason"]) for e in entries] == [
        (1, "breakpoint"),
        (2, "breakpoint"),
        (3, "signal"),
    ]
    assert entries[2]["signal"] == "SIGSEGV" and entries[2]["function"] == "main"


def test_hundred_snapshots_store_only_what_changed(build_target, tmp_path):
    churn = build_target("tests/record/churn.c")
    db = tmp_path / "churn.db"
    result = run_ttd(
        "record",
        "-o",
        str(db),
        "--break",
        "checkpoint",
        "--hits",
        "100",
        "--",
        str(churn),
        "100",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with open_recording(db) as recording, recording.session() as session:
        assert [s.tick for s in queries.timeline(session)] == list(range(1, 102))
        contents = session.scalar(select(func.count()).select_from(PageContent))
        per_tick = dict(
            session.execute(
                select(PageVersion.first_tick, func.count()).group_by(PageVersion.first_tick)
            ).all()
        )
    # tick 1 holds the whole heap; each later tick its 10 rewritten pages, plus the
    # stack page and the PRNG's page of .data
    assert HEAP_PAGES <= per_tick[1] < HEAP_PAGES + 1000
    assert all(10 <= per_tick[t] <= 14 for t in range(2, 101)), per_tick
    assert contents < HEAP_PAGES + 1000 + 100 * 14
    # 100 x 64 MiB would be 6.4 GB; the content rows are raw 4 KiB pages (random
    # bytes do not compress), so the file is the content plus SQLite's row layout
    size = os.path.getsize(db)
    assert size < 1.5 * (HEAP_PAGES + 1000 + 1400) * PAGE, size


def test_program_not_found(tmp_path):
    result = run_ttd(
        "record", "-o", str(tmp_path / "x.db"), "--", "no-such-program-ttd", timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "ttd: Program 'no-such-program-ttd' not found."
    assert not (tmp_path / "x.db").exists()


def test_location_that_never_resolves(build_target, tmp_path):
    """Pending until the end (a library could have defined it), then an error that keeps
    what was recorded."""
    bank = build_target("examples/bank.c")
    db = tmp_path / "x.db"
    result = run_ttd(
        "record",
        "-o",
        str(db),
        "--break",
        "no_such_function",
        "--break",
        "transfer",
        "--hits",
        "2",
        "--",
        str(bank),
        "3",
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == "3 transfers, 600 cents moved, total 13200\n"
    assert result.stderr.strip() == (
        "ttd: Breakpoint location 'no_such_function' never resolved (Function "
        f"\"no_such_function\" not defined.); 3 snapshots recorded into '{db}'; the program "
        "exited with status 0."
    )
    assert [e["reason"] for e in timeline(db)] == ["breakpoint", "breakpoint", "exit"]


def test_location_that_can_never_resolve(build_target, tmp_path):
    bank = build_target("examples/bank.c")
    result = run_ttd(
        "record",
        "-o",
        str(tmp_path / "x.db"),
        "--break=-no_such_function",
        "--",
        str(bank),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ttd: Breakpoint location '-no_such_function' does not "
        'resolve: Function "-no_such_function" not defined.'
    )
    assert not (tmp_path / "x.db").exists()


def test_existing_output_is_refused(build_target, tmp_path):
    bank = build_target("examples/bank.c")
    existing = tmp_path / "old.db"
    existing.write_bytes(b"keep me")
    result = run_ttd("record", "-o", str(existing), "--", str(bank), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"ttd: '{existing}' already exists; ttd record writes a new recording."
    )
    assert existing.read_bytes() == b"keep me"


def test_no_program(tmp_path):
    result = run_ttd("record", "-o", str(tmp_path / "x.db"), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("ttd: No program to record.")


def test_gdb_missing(build_target, tmp_path):
    bank = build_target("examples/bank.c")
    env = dict(os.environ, PATH=str(tmp_path))  # no gdb on PATH
    result = run_ttd("record", "-o", str(tmp_path / "x.db"), "--", str(bank), timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "ttd: gdb is not installed: apt-get install gdb"


@pytest.mark.parametrize(
    "hits, why",
    [
        ("0", "must be at least 1, not 0"),
        ("-1", "must be at least 1, not -1"),
        ("x", "'x' is not a whole number"),
    ],
)
def test_bad_hits(tmp_path, hits, why):
    result = run_ttd(
        "record", "-o", str(tmp_path / "x.db"), f"--hits={hits}", "--", "true", timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"ttd record: error: argument --hits: {why}"


def test_timeout_kills_the_program_and_keeps_the_snapshots(tmp_path, build_target):
    sleeper = build_target("tests/record/sleeper.c")
    db = tmp_path / "s.db"
    result = run_ttd(
        "record",
        "-o",
        str(db),
        "--break",
        "tick",
        "--hits",
        "1",
        "--timeout",
        "2",
        "--",
        str(sleeper),
        str(tmp_path / "pid"),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"ttd: The program ran longer than 2 s (--timeout) and was "
        f"killed; 1 snapshot recorded into '{db}'."
    )
    assert [e["reason"] for e in timeline(db)] == ["breakpoint"]
    pid = int((tmp_path / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}") or "State:\tZ" in open(f"/proc/{pid}/status").read()


def test_progress_line_only_on_a_terminal(tmp_path, build_target):
    bank = build_target("examples/bank.c")
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [
                str(TTD),
                "record",
                "-o",
                str(tmp_path / "b.db"),
                "--break",
                "transfer",
                "--",
                str(bank),
                "2",
            ],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        os.close(slave)
    shown = b""
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other side is closed and drained
            break
        if not data:
            break
        shown += data
    os.close(master)
    assert proc.returncode == 0
    assert b"\r\x1b[Kttd record: Snapshot tick 1: " in shown
    assert b"\r\x1b[Kttd record: Snapshot tick 3: " in shown  # two transfers and the exit
    piped = run_ttd("record", "-o", str(tmp_path / "c.db"), "--", str(bank), "1", timeout=120)
    assert "ttd record:" not in piped.stderr


def test_program_gets_the_environment_and_arguments(tmp_path):
    env = dict(os.environ, TTD_RECORD_PROBE="it's here; $HOME stays literal")
    result = run_ttd("record", "-o", str(tmp_path / "e.db"), "--", "env", timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "TTD_RECORD_PROBE=it's here; $HOME stays literal" in result.stdout.splitlines()
    assert [e["reason"] for e in timeline(tmp_path / "e.db")] == ["exit"]
    args = run_ttd(
        "record",
        "-o",
        str(tmp_path / "a.db"),
        "--",
        "printf",
        "%s|",
        "a b",
        "'c'",
        "$HOME",
        timeout=120,
    )
    assert args.stdout == "a b|'c'|$HOME|"


def test_program_that_is_not_an_executable(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    result = run_ttd("record", "-o", str(tmp_path / "x.db"), "--", str(script), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"ttd: gdb cannot load '{script}': \"{script}\": not in "
        "executable format: file format not recognized"
    )
    script.chmod(0o644)
    result = run_ttd("record", "-o", str(tmp_path / "x.db"), "--", str(script), timeout=60)
    assert result.stderr.strip() == f"ttd: Program '{script}' is not executable."
    assert not (tmp_path / "x.db").exists()
