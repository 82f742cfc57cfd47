"""The GDB side: ttd open / close / timeline / snapshot, and their error messages."""

from __future__ import annotations

import sqlite3
import subprocess

from snapshotdb import queries
from snapshotdb.db import open_recording
from tests.conftest import PLUGIN
from tests.record.memory import digest_table_problems, to_old_form

GDB_TIMEOUT = 120


def gdb_batch(*commands: str, program=None) -> list[str]:
    """Run GDB with the plugin and `commands`; return its output lines (stdout + stderr)."""
    argv = ["gdb", "--nx", "-q", "-batch", "-ex", "set confirm off", "-ex", f"source {PLUGIN}"]
    for command in commands:
        argv += ["-ex", command]
    if program is not None:
        argv.append(str(program))
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=GDB_TIMEOUT, stdin=subprocess.DEVNULL
    )
    return (proc.stdout + proc.stderr).splitlines()


def test_commands_need_an_open_recording():
    lines = gdb_batch("ttd snapshot", "ttd timeline", "ttd close")
    assert lines.count('No recording is open. Use "ttd open DB".') == 3


def test_open_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    lines = gdb_batch(
        f"ttd open {tmp_path}/x.db",
        f"ttd open --create {tmp_path}/no/such/dir/x.db",
        f"ttd open {text}",
        "ttd open",
    )
    assert (
        f"No recording at '{tmp_path}/x.db': file not found. "
        'Use "ttd open --create DB" to start a new one.'
    ) in lines
    assert not (tmp_path / "x.db").exists()
    assert f"Cannot create '{tmp_path}/no/such/dir/x.db': directory does not exist." in lines
    assert f"'{text}' is not a ttd recording (not an SQLite database)." in lines
    assert "Usage: ttd open [--create] DB" in lines


def test_snapshot_needs_a_live_process(tmp_path, build_target):
    bank = build_target("examples/bank.c")
    lines = gdb_batch(
        f"ttd open --create {tmp_path}/a.db", "ttd snapshot", "ttd timeline", program=bank
    )
    assert f"Created new recording '{tmp_path}/a.db'." in lines
    assert "The program is not being run." in lines
    assert "No snapshots." in lines


def test_snapshot_refuses_a_core_file(tmp_path, build_target):
    bank = build_target("examples/bank.c")
    core = tmp_path / "bank.core"
    gdb_batch("break transfer", "run", f"gcore {core}", "kill", program=bank)
    lines = gdb_batch(
        f"core-file {core}", f"ttd open --create {tmp_path}/a.db", "ttd snapshot", program=bank
    )
    assert "ttd snapshot needs a native process; this inferior runs on a 'core' target." in lines


def test_snapshot_timeline_and_bad_arguments(tmp_path, build_target):
    bank = build_target("examples/bank.c")
    db = tmp_path / "a.db"
    lines = gdb_batch(
        f"ttd open --create {db}",
        "break transfer",
        "run",
        "ttd snapshot --reason bogus",
        "ttd snapshot",
        "continue",
        "ttd snapshot --reason breakpoint second call",
        "ttd timeline",
        "ttd close",
        f"ttd open {db}",
        "ttd timeline",
        program=bank,
    )
    assert (
        "ttd snapshot: argument --reason: invalid choice: 'bogus' (choose from 'manual', "
        "'breakpoint', 'signal', 'exit')"
    ) in lines
    assert any(line.startswith("Snapshot tick 1: ") for line in lines)
    assert any(line.startswith("Snapshot tick 2: ") for line in lines)
    assert f"Opened recording '{db}'." in lines
    header = [
        i
        for i, line in enumerate(lines)
        if line.split() == ["TICK", "REASON", "THREAD", "THREADS", "PC", "WHERE"]
    ]
    assert len(header) == 2  # before and after reopening
    rows = lines[header[1] + 1 : header[1] + 3]
    assert rows[0].split()[:2] == ["1", "manual"] and "transfer at " in rows[0]
    assert rows[1].split()[:2] == ["2", "breakpoint"] and rows[1].endswith("# second call")


def add_tick_2_and_call_both(db, bank) -> None:
    """A second session on a recording of examples/bank with one snapshot (at the first
    transfer): a snapshot at the second transfer, then a call at each tick."""
    lines = gdb_batch(
        f"ttd open {db}",
        "break transfer",
        "run",
        "continue",
        "ttd snapshot",
        "call-at-time 1 balance_of(1)",
        "call-at-time 2 balance_of(1)",
        program=bank,
    )
    assert any(line.startswith("Snapshot tick 2: ") for line in lines), lines
    assert [line for line in lines if line.startswith("$")] == ["$1 = 10000", "$2 = 9900"]


def test_a_recording_made_before_page_checks_is_added_to_and_called(tmp_path, build_target):
    """page_content.xxh3 is new: a recording without the column (made before it) takes
    new snapshots without it, both stores (Python and native/capture) and calls at its
    ticks are checked by sha256 alone, as before."""
    bank = build_target("examples/bank.c")
    db = tmp_path / "old.db"
    gdb_batch(f"ttd open --create {db}", "break transfer", "run", "ttd snapshot", program=bank)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE page_content DROP COLUMN xxh3")
    conn.close()
    add_tick_2_and_call_both(db, bank)
    with sqlite3.connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(page_content)")]
        contents = conn.execute("SELECT count(*) FROM page_content").fetchone()[0]
    conn.close()
    assert "xxh3" not in columns and contents > 0


def test_a_recording_made_before_page_digest_is_added_to_and_called(tmp_path, build_target):
    """page_digest is new: a recording made before it (a UNIQUE constraint on
    page_content.digest instead) gets the table, filled from its contents, when it is
    opened to be written; the new snapshot's contents that it held already are not stored
    again, and calls at both ticks work."""
    bank = build_target("examples/bank.c")
    db = tmp_path / "old.db"
    gdb_batch(f"ttd open --create {db}", "break transfer", "run", "ttd snapshot", program=bank)
    to_old_form(db)
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM page_content").fetchone()[0]
    conn.close()
    add_tick_2_and_call_both(db, bank)
    assert digest_table_problems(db) == []
    with sqlite3.connect(db) as conn:
        contents, digests = conn.execute(
            "SELECT count(*), count(DISTINCT digest) FROM page_content"
        ).fetchone()
    conn.close()
    # the second run's libc, stack and heap pages mostly as the first's: few new ones
    assert contents == digests and before < contents < 2 * before, (before, contents)


def test_every_command_has_help():
    lines = gdb_batch("help ttd")
    for sub in ("open", "close", "timeline", "snapshot"):
        assert any(line.startswith(f"ttd {sub} -- ") for line in lines), sub


def test_snapshot_of_a_mapping_past_the_end_of_its_file(tmp_path, build_target):
    holes = build_target("tests/record/holes.c")
    db = tmp_path / "h.db"
    data = tmp_path / "data.bin"
    lines = gdb_batch(
        f"ttd open --create {db}",
        "break stop_here",
        f"run {data}",
        "ttd snapshot",
        "kill",
        program=holes,
    )
    assert any(line.startswith("Snapshot tick 1: ") for line in lines), lines
    with open_recording(db) as recording, recording.session() as session:
        snap = queries.snapshot_at(session, 1)
        mapping = next(m for m in snap.mappings if m.path == str(data))
        assert mapping.end - mapping.start == 3 * 4096
        first = queries.read_memory(session, mapping.start, 4096, 1)
        assert first.startswith(b"inside the file\0")
        assert queries.read_memory(session, mapping.start + 4096, 8192, 1) == bytes(8192)


def test_snapshot_refuses_breakpoints_left_in_memory(tmp_path, build_target):
    bank = build_target("examples/bank.c")
    lines = gdb_batch(
        f"ttd open --create {tmp_path}/a.db",
        "set breakpoint always-inserted on",
        "break transfer",
        "run",
        "ttd snapshot",
        "kill",
        program=bank,
    )
    assert (
        'ttd snapshot needs breakpoints out of memory while stopped: "set breakpoint '
        'always-inserted off".'
    ) in lines
    assert not any(line.startswith("Snapshot tick") for line in lines)
