"""The fault path's reads of the recording (issue 12): a content row read by reference
(the page map's way) says what is wrong with a damaged row in the same words as the
range query (the way before the map), a row is never read as it was before a writer
changed it, and a window the helper prepared is installed from its slots only when
every page of it passed its hash."""

from __future__ import annotations

import re
import shutil
import sqlite3

import pytest

from snapshotdb.pages import PAGE_SIZE
from tests.native.fault_driver import (
    NPAGES,
    REC,
    expected_lines,
    module_fixtures,
    run_driver,
)
from tests.native.test_corrupt import CORRUPTIONS, MISMATCH

pytestmark = pytest.mark.timeout(120)

driver, ticks_db, no_cache = module_fixtures()

BAD = 5  # page 5 at tick 1: content F0
BAD_ADDR = REC + BAD * PAGE_SIZE


def _sql(statement):
    return lambda conn, content_id: conn.execute(statement, (content_id,))


# damage beyond test_corrupt.py's: values longer than any good row holds, a row gone
MORE = {
    "long-codec": (
        _sql(
            "UPDATE page_content SET codec = 'zstd-but-not-really-a-codec-name-at-all' WHERE id = ?"
        ),
        "unknown codec 'zstd-but-not-really-a-codec-name'",
    ),
    "long-blob": (
        _sql("UPDATE page_content SET codec = 'raw', data = zeroblob(9000) WHERE id = ?"),
        "raw blob of 9000 bytes",
    ),
    "long-digest": (
        _sql("UPDATE page_content SET digest = zeroblob(40) WHERE id = ?"),
        "a digest of 40 bytes",
    ),
    "missing-row": (_sql("DELETE FROM page_content WHERE id = ?"), "its content row is missing"),
}
KINDS = {**CORRUPTIONS, **MORE}


def content_id_of(db, rec_addr: int, tick: int) -> int:
    with sqlite3.connect(db) as conn:
        (content_id,) = conn.execute(
            "SELECT content_id FROM page_version WHERE address = ? AND first_tick <= ? "
            "ORDER BY first_tick DESC LIMIT 1",
            (rec_addr, tick),
        ).fetchone()
    conn.close()
    return content_id


def damaged(ticks_db, tmp_path, kind: str):
    db = tmp_path / f"{kind}.db"
    shutil.copy(ticks_db, db)
    content_id = content_id_of(db, BAD_ADDR, 1)
    with sqlite3.connect(db) as conn:
        KINDS[kind][0](conn, content_id)
    conn.close()
    return db


@pytest.mark.parametrize("way", ["map", "ranged"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_damaged_row_is_named_the_same_both_ways(driver, ticks_db, tmp_path, kind, way):
    lines = run_driver(driver, damaged(ticks_db, tmp_path, kind), "fetch", 1, hex(REC), NPAGES, way)
    assert lines[:BAD] == expected_lines(1)[:BAD]
    assert len(lines) == BAD + 1
    prefix = f"{BAD_ADDR:#x} ERROR page {BAD_ADDR:#x} at tick 1 is corrupt ("
    assert lines[BAD].startswith(prefix) and lines[BAD].endswith(")"), lines[BAD]
    why = lines[BAD][len(prefix) : -1]
    assert re.fullmatch(KINDS[kind][1], why), why


def other_bytes_sql(content_id: int) -> str:
    """A writer's change: the row gets another row's data (its digest does not match)."""
    return (
        f"UPDATE page_content SET data = (SELECT data FROM page_content WHERE id != "
        f"{content_id} LIMIT 1) WHERE id = {content_id}"
    )


def test_a_row_a_writer_changed_is_read_as_it_is_now(driver, ticks_db, tmp_path):
    """Once the store is idle, the writer gets in and the next read sees its change:
    the store keeps nothing from before."""
    db = tmp_path / "changed.db"
    shutil.copy(ticks_db, db)
    sql = other_bytes_sql(content_id_of(db, BAD_ADDR, 1))
    lines = run_driver(driver, db, "reread", 1, hex(REC), NPAGES, "idle", sql)
    assert lines[:NPAGES] == expected_lines(1)
    assert lines[NPAGES] == "writer ok"
    assert lines[NPAGES + 1 :] == [
        *expected_lines(1)[:BAD],
        f"{BAD_ADDR:#x} ERROR page {BAD_ADDR:#x} at tick 1 is corrupt ({MISMATCH})",
    ]


def test_a_writer_waits_while_the_store_reads(driver, ticks_db, tmp_path):
    """While the store is reading (between idles), a writer cannot change a row under
    it: its read transaction holds the lock."""
    db = tmp_path / "busy.db"
    shutil.copy(ticks_db, db)
    sql = other_bytes_sql(content_id_of(db, BAD_ADDR, 1))
    lines = run_driver(driver, db, "reread", 1, hex(REC), NPAGES, "busy", sql)
    assert lines == [*expected_lines(1), "writer busy", *expected_lines(1)]


@pytest.mark.parametrize(("first", "npages"), [(5, 3), (0, 2)])
def test_a_prepared_window_is_installed_from_its_slots(driver, ticks_db, first, npages):
    """Pages 5-7 (0-1) at tick 1 all have content: held in place, the same bytes, then
    released (not taken twice) and fetched again."""
    lines = run_driver(driver, ticks_db, "held", 1, hex(REC + first * PAGE_SIZE), npages)
    want = expected_lines(1)[first : first + npages]
    assert lines == [*want, "released", *want]


def test_a_window_with_zeros_is_not_taken_in_place(driver, ticks_db):
    """Page 2 is zeros at tick 1: the window 0-3 is fetched the usual way."""
    lines = run_driver(driver, ticks_db, "held", 1, hex(REC), 4)
    assert lines == ["not prepared", *expected_lines(1)[:4]]


def test_a_window_with_a_corrupt_page_is_not_taken_in_place(driver, ticks_db, tmp_path):
    """Page 5 is corrupt: the window 5-7 is not installed from the slots; fetching it
    names the page."""
    db = damaged(ticks_db, tmp_path, "other-bytes")
    lines = run_driver(driver, db, "held", 1, hex(BAD_ADDR), 3)
    assert lines == [
        "not prepared",
        f"{BAD_ADDR:#x} ERROR page {BAD_ADDR:#x} at tick 1 is corrupt ({MISMATCH})",
    ]
