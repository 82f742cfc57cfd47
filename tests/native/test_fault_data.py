"""A page read by its data alone (issue 12): once the page map has its digests and
codecs, the page server reads a page's data column through a kept blob handle and
checks it against the map's digest (store_data, store_sqlite.c). fault_driver.c's
"fetch ... map" waits for the map with its digests, so every page below goes that
way first; a row that is damaged in any way must still be named as test_corrupt.py
names it (the whole row is read again to say why), and a page stored raw is read
as it is."""

from __future__ import annotations

import re
import shutil
import sqlite3

import pytest

from snapshotdb.pages import PAGE_SIZE
from tests.native.fault_driver import (
    NPAGES,
    REC,
    content,
    expected_lines,
    module_fixtures,
    run_driver,
)
from tests.native.test_corrupt import CORRUPTIONS

pytestmark = pytest.mark.timeout(120)

driver, ticks_db, no_cache = module_fixtures()

BAD = REC + 5 * PAGE_SIZE  # F0 at tick 1


def damaged(ticks_db, tmp_path, how) -> str:
    """A copy of the ticks recording with the content of BAD at tick 1 changed by how."""
    db = tmp_path / "damaged.db"
    shutil.copy(ticks_db, db)
    with sqlite3.connect(db) as conn:
        (content_id,) = conn.execute(
            "SELECT content_id FROM page_version WHERE address = ? AND first_tick = 1",
            (BAD,),
        ).fetchone()
        how(conn, content_id)
    conn.close()
    return str(db)


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_damaged_row_is_named_as_the_whole_row_names_it(driver, ticks_db, tmp_path, kind):
    db = damaged(ticks_db, tmp_path, CORRUPTIONS[kind][0])
    lines = run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map")
    assert lines[:5] == expected_lines(1)[:5]
    why = CORRUPTIONS[kind][1]
    pattern = rf"{BAD:#x} ERROR page {BAD:#x} at tick 1 is corrupt \(({why})\)"
    assert re.fullmatch(pattern, lines[5]), lines[5]
    assert len(lines) == 6


def test_a_page_stored_raw_is_read_as_it_is(driver, ticks_db, tmp_path):
    def store_raw(conn, content_id):
        conn.execute(
            "UPDATE page_content SET codec = 'raw', data = ? WHERE id = ?",
            (content("F0"), content_id),
        )

    db = damaged(ticks_db, tmp_path, store_raw)
    assert run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map") == expected_lines(1)
