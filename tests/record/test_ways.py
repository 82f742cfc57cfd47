"""The two ways of finding a snapshot's changed pages make the same recording, byte for
byte: one run of tests/record/ways.c (heap writes, mmap/munmap, MADV_DONTNEED, sbrk,
mremap, mprotect, shared and private file mappings, a forked child, a thread) recorded at
every checkpoint both by reading all memory and by the kernel's write tracking, under GDB."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import pytest
from sqlalchemy import select

from snapshotdb import queries
from snapshotdb.capture import bulk_store
from snapshotdb.db import open_recording
from snapshotdb.models import PageContent, PageVersion
from snapshotdb.pages import check_of, decode
from snapshotdb.regs import MM_FIELDS
from tests.conftest import PLUGIN, TOP, require
from tests.record.memory import digest_table_problems

ROUNDS = 6
GDB_TIMEOUT = 300


@pytest.fixture(scope="module", params=["native", "python"])
def both_ways(request, build_target, tmp_path_factory):
    """The run recorded both ways; the tracked way's big reads stored by the native SQLite
    extension (native/capture), or read in Python (TTD_NO_NATIVE_CAPTURE=1)."""
    if request.param == "native":
        require(bulk_store.LIBRARY.exists(), "make -C native/capture")
    exe = build_target("tests/record/ways.c", "-pthread")
    out = tmp_path_factory.mktemp("ways")
    env = dict(
        os.environ,
        TTD_SCAN=str(out / "scan.db"),
        TTD_TRACKED=str(out / "tracked.db"),
        TTD_OUT=str(out / "log.json"),
        TTD_NO_NATIVE_CAPTURE="1" if request.param == "python" else "0",
    )
    proc = subprocess.run(
        [
            "gdb",
            "--nx",
            "-q",
            "-batch",
            "-ex",
            f"source {PLUGIN}",
            "-x",
            str(TOP / "tests/record/gdb_ways.py"),
            "--args",
            str(exe),
            str(out / "scratch"),
        ],
        capture_output=True,
        text=True,
        timeout=GDB_TIMEOUT,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert (out / "log.json").exists(), proc.stdout + proc.stderr
    return {
        "log": json.loads((out / "log.json").read_text()),
        "output": proc.stdout,
        "scan": out / "scan.db",
        "tracked": out / "tracked.db",
    }


def test_the_program_ran_as_without_a_recorder(both_ways):
    assert "ways ok" in both_ways["output"]
    assert (
        "[Inferior 1 (process" in both_ways["output"] and "exited normally" in both_ways["output"]
    )


def test_tracking_was_armed_and_read_little(both_ways):
    log = both_ways["log"]
    assert len(log) == ROUNDS
    assert all(
        e["wp-async"]["tracker"] == "wp-async" and e["scan"]["tracker"] == "scan" for e in log
    )
    later = log[1:]
    # the tracked way reads what was written, new and rescanned; the scan reads everything
    assert all(e["wp-async"]["bytes"] < e["scan"]["bytes"] for e in later), later


def test_every_page_version_is_the_same(both_ways):
    scan, tracked = versions(both_ways["scan"]), versions(both_ways["tracked"])
    differ = sorted(k for k in set(scan) | set(tracked) if scan.get(k) != tracked.get(k))
    assert differ == [], [(hex(a), t, scan.get((a, t)), tracked.get((a, t))) for a, t in differ[:5]]
    assert {t for _, t in scan} == set(range(1, ROUNDS + 1))


def test_every_snapshot_row_is_the_same(both_ways):
    assert snapshots(both_ways["scan"]) == snapshots(both_ways["tracked"])


def test_every_content_carries_its_check(both_ways):
    """page_content.xxh3, what the page server checks a page against, is check_of(page,
    digest) for every content, whichever way (native or Python) stored it."""
    for db in (both_ways["scan"], both_ways["tracked"]):
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT codec, data, digest, xxh3 FROM page_content").fetchall()
        conn.close()
        assert rows
        wrong = [d.hex() for c, data, d, x in rows if x != check_of(decode(c, data, d), d)]
        assert wrong == [], (db, len(wrong), wrong[:3])


def test_every_content_is_found_by_its_digest(both_ways):
    """page_digest (what writers find a content by) holds every content, whichever way
    stored it: the native store appends a call's digests at its end, Python per batch."""
    for db in (both_ways["scan"], both_ways["tracked"]):
        assert digest_table_problems(db) == [], db


def versions(db) -> dict[tuple[int, int], str | None]:
    """(address, first tick) -> sha256 of the content (None: zeros) of every page version."""
    with open_recording(db) as recording, recording.session() as session:
        digest = dict(session.execute(select(PageContent.id, PageContent.digest)).all())
        rows = session.execute(
            select(PageVersion.address, PageVersion.first_tick, PageVersion.content_id)
        )
        return {(a, t): digest[c].hex() if c else None for a, t, c in rows}


def snapshots(db) -> list[dict]:
    """Every snapshot with its threads and mappings, as plain values."""
    out = []
    with open_recording(db) as recording, recording.session() as session:
        for snap in queries.timeline(session):
            row = {
                c: getattr(snap, c)
                for c in ("tick", "reason", "stop_tid", "pc", "auxv", *MM_FIELDS)
            }
            row["threads"] = [(t.tid, t.name, t.gpregs, t.fpregs, t.xstate) for t in snap.threads]
            row["mappings"] = [(m.start, m.end, m.perms, m.offset, m.path) for m in snap.mappings]
            out.append(row)
    return out
