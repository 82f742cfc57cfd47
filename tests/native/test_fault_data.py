"""A page read by its data alone (issue 12): once the page map has its digests and
codecs, the page server reads a page's data column through a kept blob handle and
checks it against the map's digest (store_data, store_sqlite.c). fault_driver.c's
"fetch ... map" waits for the map with its digests, so every page below goes that
way first; a row that is damaged in any way must still be named as test_corrupt.py
names it (the whole row is read again to say why), and a page stored raw is read
as it is.

Such a page is checked against its recorded check (page_content.xxh3,
native/pageserver/page_check.h) in place of sha256; sha256 runs on a mismatch and
decides, and a recording without the column is checked by sha256 alone."""

from __future__ import annotations

import re
import shutil
import sqlite3

import pytest

from snapshotdb.pages import PAGE_SIZE, check_of, digest_of
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


def test_a_damaged_check_alone_is_overruled_by_sha256(driver, ticks_db, tmp_path):
    def damage_check(conn, content_id):
        conn.execute("UPDATE page_content SET xxh3 = zeroblob(16) WHERE id = ?", (content_id,))

    db = damaged(ticks_db, tmp_path, damage_check)
    assert run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map") == expected_lines(1)


def _forge(conn, content_id):
    """Other bytes (ZZ) under the content's digest, with the check of both."""
    other = content("ZZ")
    (digest,) = conn.execute(
        "SELECT digest FROM page_content WHERE id = ?", (content_id,)
    ).fetchone()
    conn.execute(
        "UPDATE page_content SET codec = 'raw', data = ?, xxh3 = ? WHERE id = ?",
        (other, check_of(other, digest), content_id),
    )


FORGED_LINE = f"{BAD:#x} {digest_of(content('ZZ')).hex()}"


def test_the_check_is_what_a_page_is_verified_against(driver, ticks_db, tmp_path):
    """Other bytes under F0's digest, with the check of those bytes and that digest: the
    page server takes them (a recording's writer can write any digest and check alike:
    the check finds damage, not forgery), which shows sha256 was not what decided."""
    db = damaged(ticks_db, tmp_path, _forge)
    assert digest_of(content("ZZ")) != digest_of(content("F0"))
    lines = run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map")
    assert lines[5] == FORGED_LINE, lines[5]


def test_bytes_made_to_fit_a_check_never_reach_the_page_cache(
    driver, ticks_db, tmp_path, monkeypatch
):
    """The verified-page cache keys a page by its digest and the recording file (device,
    inode, birth time): a page taken on its check alone is hashed with sha256 before it is
    put there, so the recording written back over the same file gets F0, not the bytes
    that only fit the check."""
    monkeypatch.setenv("TTD_PAGE_CACHE", str(tmp_path / "cache"))
    db = damaged(ticks_db, tmp_path, _forge)
    assert run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map")[5] == FORGED_LINE
    with open(ticks_db, "rb") as genuine, open(db, "r+b") as same_file:
        same_file.write(genuine.read())
        same_file.truncate()
    assert run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map") == expected_lines(1)


@pytest.mark.parametrize("kind", ["flipped-byte", "other-bytes"])
def test_a_recording_without_checks_is_checked_by_sha256(driver, ticks_db, tmp_path, kind):
    def drop_checks_and_damage(conn, content_id):
        conn.execute("ALTER TABLE page_content DROP COLUMN xxh3")
        CORRUPTIONS[kind][0](conn, content_id)

    db = damaged(ticks_db, tmp_path, drop_checks_and_damage)
    lines = run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map")
    assert lines[:5] == expected_lines(1)[:5]
    pattern = rf"{BAD:#x} ERROR page {BAD:#x} at tick 1 is corrupt \(({CORRUPTIONS[kind][1]})\)"
    assert re.fullmatch(pattern, lines[5]), lines[5]
