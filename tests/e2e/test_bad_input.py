"""Bad input end to end, each with its one-line message, in GDB and from the shell; GDB's
session survives every one (a later good call works). Tick out of range, thread not in
the snapshot and an expression GDB rejects are in test_call_at_time.py and
test_cli_call.py; the executable missing or rebuilt and gdbserver missing in
test_setup_errors.py."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.conftest import PLUGIN, run_ttd
from tests.e2e.harness import result_json
from tests.e2e.procs import children, comm, descendants, state
from ttd_cli.mi import GdbFailed, MiGdb

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def escape_rec(escape_recording):
    return escape_recording


@pytest.fixture
def gdb():
    gdb = MiGdb()
    try:
        gdb.cli("set confirm off")
        gdb.cli(f"source {PLUGIN}")
        yield gdb
    finally:
        gdb.close()


def good_call_works(gdb: MiGdb, db) -> None:
    gdb.cli(f"ttd open {db}")
    text = gdb.cli("call-at-time --json 2 step_value()")
    assert result_json(text)["value"] == "20"


def expect_error(gdb: MiGdb, command: str) -> str:
    with pytest.raises(GdbFailed) as info:
        gdb.cli(command, 60)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the recording itself ------------------------------------------------------------------


def test_no_recording_open(gdb, escape_rec):
    for command in ("call-at-time 1 step_value()", "ttd goto 1", "ttd timeline"):
        assert expect_error(gdb, command) == 'No recording is open. Use "ttd open DB".'
    good_call_works(gdb, escape_rec[0])


def test_file_missing(gdb, escape_rec, tmp_path):
    missing = tmp_path / "no-such-dir" / "rec.db"
    assert expect_error(gdb, f"ttd open {missing}") == (
        f"No recording at '{missing}': file not found. "
        'Use "ttd open --create DB" to start a new one.'
    )
    assert expect_error(gdb, f"ttd open --create {missing}") == (
        f"Cannot create '{missing}': directory does not exist."
    )
    # ttd open --create makes a new recording for ttd snapshot; nothing to call in it yet
    new = tmp_path / "new.db"
    assert f"Created new recording '{new}'." in gdb.cli(f"ttd open --create {new}")
    assert expect_error(gdb, "call-at-time 1 step_value()") == (
        "No tick 1: the recording has no snapshots."
    )
    done = run_ttd("call", str(tmp_path / "none.db"), "--at", "1", "step_value()", timeout=60)
    assert (done.returncode, done.stderr) == (
        2,
        f"ttd: No recording at '{tmp_path / 'none.db'}': file not found.\n",
    )
    good_call_works(gdb, escape_rec[0])


def _not_sqlite(path):
    path.write_text("just some text, long enough to hold an SQLite header\n")


def _sqlite_not_recording(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()


def _other_schema(path, source):
    shutil.copy(source, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.close()


@pytest.mark.parametrize("kind", ["not-sqlite", "sqlite-not-a-recording", "other-schema-version"])
def test_bad_recording_file(gdb, escape_rec, tmp_path, kind):
    path = tmp_path / "bad.db"
    if kind == "not-sqlite":
        _not_sqlite(path)
        message = f"'{path}' is not a ttd recording (not an SQLite database)."
    elif kind == "sqlite-not-a-recording":
        _sqlite_not_recording(path)
        message = f"'{path}' is an SQLite database but not a ttd recording (no 'meta' table)."
    else:
        _other_schema(path, escape_rec[0])
        from snapshotdb.models import SCHEMA_VERSION

        message = (
            f"'{path}' is a ttd recording of schema version 999; "
            f"this ttd reads version {SCHEMA_VERSION}."
        )
    before = path.read_bytes()
    assert expect_error(gdb, f"ttd open {path}") == message
    done = run_ttd("call", str(path), "--at", "1", "step_value()", timeout=60)
    assert (done.returncode, done.stderr) == (2, f"ttd: {message}\n")
    assert path.read_bytes() == before  # not "repaired", not initialized
    good_call_works(gdb, escape_rec[0])


def _table_pages(db, binary) -> list[int]:
    """Recorded addresses of the pages of escape.c's `table` (read only by sum_table)."""
    out = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=True).stdout
    offset = next(int(line.split()[0], 16) for line in out.splitlines() if line.endswith(" table"))
    with sqlite3.connect(db) as conn:
        (base,) = conn.execute(
            "SELECT min(start) FROM mapping WHERE path = ?", (str(binary),)
        ).fetchone()
    conn.close()
    first = (base + offset + 4095) & ~4095
    return [first + i * 4096 for i in range(15)]


def _corrupt_copy(db, binary, tmp_path) -> tuple[object, int]:
    """A copy of the recording whose page 7 of `table` has its bytes zeroed (the digest no
    longer matches); (the copy, the page's recorded address)."""
    copy = tmp_path / "corrupt.db"
    shutil.copy(db, copy)
    rec_page = _table_pages(copy, binary)[7]
    with sqlite3.connect(copy) as conn:
        rows = conn.execute(
            "SELECT content_id FROM page_version WHERE address = ?", (rec_page,)
        ).fetchall()
        assert len(rows) == 1  # written once, before tick 1
        conn.execute(
            "UPDATE page_content SET codec = 'raw', data = zeroblob(4096) WHERE id = ?", rows[0]
        )
    conn.close()
    return copy, rec_page


def _nothing_left(gdb: MiGdb) -> None:
    gdb.cli("python from gdb_plugin.commands import context; context().sessions.close_all()")
    assert descendants(gdb.pid) == {}


def test_corrupt_page_reached_during_a_call(gdb, escape_rec, tmp_path):
    db, binary = escape_rec
    copy, rec_page = _corrupt_copy(db, binary, tmp_path)
    gdb.cli(f"ttd open {copy}")
    assert result_json(gdb.cli("call-at-time --json 1 step_value()"))["value"] == "10"  # not read
    started = time.monotonic()
    got = result_json(gdb.cli("call-at-time --json 1 sum_table()", 60))
    assert time.monotonic() - started < 20  # within a second; the ceiling catches hangs
    assert got["status"] == "error"
    assert f"{rec_page:#x}" in got["error"] and "corrupt" in got["error"].lower()
    assert "tick 1" in got["error"]
    with pytest.raises(GdbFailed) as info:
        gdb.cli("call-at-time 1 sum_table()", 60)
    assert str(info.value) == got["error"]
    _nothing_left(gdb)
    good_call_works(gdb, db)


def test_corrupt_page_read_by_gdb_is_bounded(gdb, escape_rec, tmp_path):
    """GDB itself reads the corrupt page (gdbserver waits for its fill): the call ends
    within its timeout's steps and the page server's bounds, and leaves nothing."""
    db, binary = escape_rec
    copy, rec_page = _corrupt_copy(db, binary, tmp_path)
    gdb.cli(f"ttd open {copy}")
    started = time.monotonic()
    got = result_json(gdb.cli(f"call-at-time --timeout 1 --json 1 *(long *){rec_page + 96}", 180))
    assert time.monotonic() - started < 120  # timeout + steps + the page server's 30 s bound
    assert got["status"] == "error" and got["value"] == ""
    _nothing_left(gdb)
    good_call_works(gdb, db)


# --- the page server or the process killed in the middle of a call -------------------------


def _server_and_process(gdb: MiGdb) -> tuple[int, int]:
    """(page server pid, rematerialized process pid) of the process kept by the last call."""
    gdb_pid = gdb.pid
    servers = [p for p in children(gdb_pid) if comm(p) == "ttd-pageserver"]
    assert len(servers) == 1, servers
    processes = children(servers[0])
    assert len(processes) == 1, processes
    return servers[0], processes[0]


def _kill_while_spinning(gdb: MiGdb, victim: str) -> dict:
    """Start spin() at tick 1 in the kept process, wait until it runs, SIGKILL the page
    server or the process, and return the call's JSON."""
    assert result_json(gdb.cli("call-at-time --json 1 step_value()"))["value"] == "10"
    server, process = _server_and_process(gdb)
    gdb.send("call-at-time --timeout 20 --json 1 spin()")
    deadline = time.monotonic() + 30
    while state(process) != "R":  # stopped (t) until GDB resumes it into spin()
        assert time.monotonic() < deadline, "the call never started"
        time.sleep(0.01)
    os.kill(server if victim == "server" else process, signal.SIGKILL)
    record, text = gdb.wait(lambda r: r["type"] == "result", "call-at-time spin()", 60)
    assert record["message"] == "done", record
    return result_json(text)


def test_page_server_killed_during_a_call(gdb, escape_rec):
    gdb.cli(f"ttd open {escape_rec[0]}")
    got = _kill_while_spinning(gdb, "server")
    assert got["status"] == "error"
    assert got["error"].startswith("The page server (pid ")
    assert got["error"].endswith(" ended during the call: what the call wrote is unknown.")
    good_call_works(gdb, escape_rec[0])


def test_process_killed_during_a_call(gdb, escape_rec):
    gdb.cli(f"ttd open {escape_rec[0]}")
    got = _kill_while_spinning(gdb, "process")
    assert (got["status"], got["signal"]) == ("signalled", "SIGKILL")
    assert got["error"] == "The process was killed by SIGKILL during the call."
    good_call_works(gdb, escape_rec[0])


# --- timeouts that are no timeouts -----------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "soon"])
def test_bad_call_timeout_is_refused(gdb, escape_rec, value):
    gdb.cli(f"ttd open {escape_rec[0]}")
    assert expect_error(gdb, f"call-at-time --timeout {value} 2 step_value()").startswith(
        f"Invalid timeout '{value}': a timeout is a number of seconds greater than 0. Usage: "
    )
    good_call_works(gdb, escape_rec[0])


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_bad_timeout_setting_is_refused(gdb, escape_rec, value):
    assert expect_error(gdb, f"set ttd timeout {value}") == (
        f"Invalid timeout '{value}': a timeout is a number of seconds greater than 0, "
        'or "unlimited" (or 0) for no limit.'
    )
    shown = gdb.cli("show ttd timeout").strip().splitlines()[-1]
    assert shown == "Calls of the past are interrupted after 10 seconds."  # unchanged
    good_call_works(gdb, escape_rec[0])


def test_timeout_setting_unlimited_and_fractions(gdb):
    for value, shown in [
        ("unlimited", "Calls of the past are not interrupted (no time limit)."),
        ("2.5", "Calls of the past are interrupted after 2.5 seconds."),
        ("0", "Calls of the past are not interrupted (no time limit)."),
        ("10", "Calls of the past are interrupted after 10 seconds."),
    ]:
        gdb.cli(f"set ttd timeout {value}")
        assert gdb.cli("show ttd timeout").strip().splitlines()[-1] == shown
