"""`ttd timeline DB [--json]` on a recording written by the snapshot writer."""

from __future__ import annotations

import json

from snapshotdb.capture import SnapshotInfo, SnapshotWriter, ThreadState
from snapshotdb.db import open_engine
from tests.conftest import run_ttd

THREAD = ThreadState(tid=4242, gpregs=bytes(216), fpregs=bytes(512), name="prog")
WORKER = ThreadState(tid=4250, gpregs=bytes(216), fpregs=bytes(512), name="worker")


def make_recording(path, infos, threads=None):
    """One snapshot per info; threads[i] the threads of the i-th (default: THREAD)."""
    engine = open_engine(path, create=True)
    writer = SnapshotWriter(engine, exe_path="/bin/prog", build_id=None, cmdline=["prog"])
    for i, info in enumerate(infos):
        writer.write(info, threads[i] if threads else [THREAD], [], [])
    engine.dispose()


def test_table_and_json(tmp_path):
    db = tmp_path / "t.db"
    make_recording(
        db,
        [
            SnapshotInfo("breakpoint", 4242, 0x401136, b"", {}, "main", "x.c", 12),
            SnapshotInfo("signal", 4242, 0x401140, b"", {}, "crash", "x.c", 20, "SIGSEGV"),
            SnapshotInfo("manual", 4242, 0x7F0000001000, b"", {}, note="by hand"),
        ],
    )
    table = run_ttd("timeline", str(db), timeout=60)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "TICK  REASON      THREAD  THREADS  PC              WHERE",
        "1     breakpoint  4242    1        0x401136        main at x.c:12",
        "2     signal      4242    1        0x401140        crash at x.c:20 (SIGSEGV)",
        "3     manual      4242    1        0x7f0000001000  ??  # by hand",
    ]
    entries = json.loads(run_ttd("timeline", str(db), "--json", timeout=60).stdout)
    assert entries[0] == {
        "tick": 1,
        "reason": "breakpoint",
        "pc": "0x401136",
        "function": "main",
        "file": "x.c",
        "line": 12,
        "thread": 4242,
        "signal": None,
        "note": None,
        "threads": [{"tid": 4242, "name": "prog"}],
    }
    assert [e["signal"] for e in entries] == [None, "SIGSEGV", None]


def test_empty_recording(tmp_path):
    db = tmp_path / "empty.db"
    open_engine(db, create=True).dispose()
    result = run_ttd("timeline", str(db), timeout=60)
    assert (result.returncode, result.stdout) == (0, "No snapshots.\n")
    assert run_ttd("timeline", str(db), "--json", timeout=60).stdout == "[]\n"


def test_threads_of_each_tick(tmp_path):
    """THREADS counts the threads recorded at each tick; --json lists their ids and names
    in the order recorded (the leader first)."""
    db = tmp_path / "threads.db"
    make_recording(
        db,
        [
            SnapshotInfo("breakpoint", 4242, 0x401136, b"", {}, "main"),
            SnapshotInfo("breakpoint", 4250, 0x401200, b"", {}, "work"),
            SnapshotInfo("breakpoint", 4242, 0x401136, b"", {}, "main"),
        ],
        threads=[[THREAD], [THREAD, WORKER], [THREAD]],
    )
    table = run_ttd("timeline", str(db), timeout=60)
    assert [line.split()[3] for line in table.stdout.splitlines()] == ["THREADS", "1", "2", "1"]
    entries = json.loads(run_ttd("timeline", str(db), "--json", timeout=60).stdout)
    assert [e["threads"] for e in entries] == [
        [{"tid": 4242, "name": "prog"}],
        [{"tid": 4242, "name": "prog"}, {"tid": 4250, "name": "worker"}],
        [{"tid": 4242, "name": "prog"}],
    ]
    assert entries[1]["thread"] == 4250
