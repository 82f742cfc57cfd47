"""`ttd timeline DB [--json]` on a recording written by the snapshot writer."""
from __future__ import annotations

import json

from snapshotdb.capture import SnapshotInfo, SnapshotWriter, ThreadState
from snapshotdb.db import open_engine
from tests.conftest import run_ttd

THREAD = ThreadState(tid=4242, gpregs=bytes(216), fpregs=bytes(512))


def make_recording(path, infos):
    engine = open_engine(path, create=True)
    writer = SnapshotWriter(engine, exe_path="/bin/prog", build_id=None, cmdline=["prog"])
    for info in infos:
        writer.write(info, [THREAD], [], [])
    engine.dispose()


def test_table_and_json(tmp_path):
    db = tmp_path / "t.db"
    make_recording(db, [
        SnapshotInfo("breakpoint", 4242, 0x401136, b"", {}, "main", "x.c", 12),
        SnapshotInfo("signal", 4242, 0x401140, b"", {}, "crash", "x.c", 20, "SIGSEGV"),
        SnapshotInfo("manual", 4242, 0x7F0000001000, b"", {}, note="by hand"),
    ])
    table = run_ttd("timeline", str(db), timeout=60)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines() == [
        "TICK  REASON      THREAD  PC              WHERE",
        "1     breakpoint  4242    0x401136        main at x.c:12",
        "2     signal      4242    0x401140        crash at x.c:20 (SIGSEGV)",
        "3     manual      4242    0x7f0000001000  ??  # by hand",
    ]
    entries = json.loads(run_ttd("timeline", str(db), "--json", timeout=60).stdout)
    assert entries[0] == {"tick": 1, "reason": "breakpoint", "pc": "0x401136",
                          "function": "main", "file": "x.c", "line": 12, "thread": 4242,
                          "signal": None, "note": None}
    assert [e["signal"] for e in entries] == [None, "SIGSEGV", None]


def test_empty_recording(tmp_path):
    db = tmp_path / "empty.db"
    open_engine(db, create=True).dispose()
    result = run_ttd("timeline", str(db), timeout=60)
    assert (result.returncode, result.stdout) == (0, "No snapshots.\n")
    assert run_ttd("timeline", str(db), "--json", timeout=60).stdout == "[]\n"
