"""A corrupt page reached during a call, through real GDB (issue 8 item 4): the call
reports "page 0x... at tick T is corrupt (why)" at once, GDB's session makes a good
call next, and no process is left (page server, process, gdbserver). The corruption
kinds themselves are tested without GDB in tests/native/test_corrupt.py; the time
bound only catches hangs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time

import pytest

from tests.conftest import run_ttd
from tests.e2e.harness import gdb_with_recording
from ttd_cli.mi import MiGdb

pytestmark = pytest.mark.timeout(180)

HANG_S = 20  # "within a second", with room for a busy machine: only a hang exceeds it
OURS = {"gdbserver", "ttd-pageserver", "ttd-stub"}


def _flip_a_byte(conn, content_id):
    (data,) = conn.execute("SELECT data FROM page_content WHERE id = ?", (content_id,)).fetchone()
    data = bytearray(data)
    data[len(data) // 2] ^= 0x01
    conn.execute("UPDATE page_content SET data = ? WHERE id = ?", (bytes(data), content_id))


CORRUPTIONS = {
    "flipped-byte": _flip_a_byte,
    "wrong-digest": lambda conn, cid: conn.execute(
        "UPDATE page_content SET digest = ? WHERE id = ?", (hashlib.sha256(b"x").digest(), cid)
    ),
    "bad-codec": lambda conn, cid: conn.execute(
        "UPDATE page_content SET codec = 'lz4' WHERE id = ?", (cid,)
    ),
    "short-blob": lambda conn, cid: conn.execute(
        "UPDATE page_content SET codec = 'raw', data = zeroblob(100) WHERE id = ?", (cid,)
    ),
}
WHY = {
    "flipped-byte": r"its sha256 does not match the recorded digest|zstd blob of \d+ bytes: .+",
    "wrong-digest": "its sha256 does not match the recorded digest",
    "bad-codec": "unknown codec 'lz4'",
    "short-blob": "raw blob of 100 bytes",
}


def table_page(db, binary) -> int:
    """A page of escape.c's `table` (read only by sum_table), as recorded."""
    out = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=True).stdout
    offset = next(int(line.split()[0], 16) for line in out.splitlines() if line.endswith(" table"))
    with sqlite3.connect(db) as conn:
        (base,) = conn.execute(
            "SELECT min(start) FROM mapping WHERE path = ?", (str(binary),)
        ).fetchone()
    conn.close()
    return ((base + offset + 4095) & ~4095) + 7 * 4096


def corrupt_copy(escape_recording, tmp_path, kind: str):
    db, binary = escape_recording
    copy = tmp_path / f"{kind}.db"
    shutil.copy(db, copy)
    page = table_page(copy, binary)
    with sqlite3.connect(copy) as conn:
        rows = conn.execute(
            "SELECT content_id FROM page_version WHERE address = ?", (page,)
        ).fetchall()
        assert len(rows) == 1  # written once, before tick 1
        CORRUPTIONS[kind](conn, rows[0][0])
    conn.close()
    return copy, page


def json_of(text: str) -> dict:
    return json.loads(text[text.index('{"tick"') :].splitlines()[0])


def descendants(pid: int) -> list[tuple[int, str]]:
    """(pid, command name) of the living descendants of pid."""
    children: dict[int, list[int]] = {}
    names = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        try:  # a rematerialized process has its recorded thread's name: its program's
            name = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
        except OSError:
            pass
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if state != "Z":
            children.setdefault(int(ppid), []).append(int(entry))
            names[int(entry)] = name
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append((child, names[child]))
            todo.append(child)
    return found


def ours_left(gdb: MiGdb) -> list[tuple[int, str]]:
    return [d for d in descendants(gdb.pid) if d[1] in OURS]


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_call_at_time_names_the_corrupt_page_and_the_session_goes_on(
    escape_recording, tmp_path, kind
):
    db, page = corrupt_copy(escape_recording, tmp_path, kind)
    with gdb_with_recording(db) as gdb:
        session_goes_on(gdb, page, kind)


def session_goes_on(gdb: MiGdb, page: int, kind: str) -> None:
    """A call that reads the corrupt page reports it at once; its processes end; a call
    that does not read it works next, in the same session."""
    assert json_of(gdb.cli("call-at-time --json 1 step_value()"))["value"] == "10"  # not read
    t0 = time.monotonic()
    got = json_of(gdb.cli("call-at-time --json 1 sum_table()", 60))
    assert time.monotonic() - t0 < HANG_S
    assert got["status"] == "error"
    assert re.fullmatch(rf"page {page:#x} at tick 1 is corrupt \(({WHY[kind]})\)", got["error"])
    deadline = time.monotonic() + HANG_S
    while ours_left(gdb):  # the failed call's processes end with it
        assert time.monotonic() < deadline, ours_left(gdb)
        time.sleep(0.05)
    assert json_of(gdb.cli("call-at-time --json 1 step_value()"))["value"] == "10"
    gdb.cli("ttd close")
    assert ours_left(gdb) == []


def test_ttd_call_names_the_corrupt_page_at_once(escape_recording, tmp_path):
    db, page = corrupt_copy(escape_recording, tmp_path, "bad-codec")
    t0 = time.monotonic()
    done = run_ttd("call", str(db), "--at", "1", "--json", "sum_table()", timeout=120)
    assert time.monotonic() - t0 < HANG_S
    got = json.loads(done.stdout)
    assert (done.returncode, got["status"]) == (2, "error")
    assert got["error"] == f"page {page:#x} at tick 1 is corrupt (unknown codec 'lz4')"
