"""What a PostgreSQL database holds: recordings of one program share identical pages
and files, a page changed behind ttd's back is caught by its sha256, and a call never
writes the recording."""

from __future__ import annotations

import hashlib

import psycopg

from snapshotdb.db import open_recording
from tests.team.calls import comparable, ttd_call
from tests.team.conftest import copy, record_bank, schema


def count(pg, database: str, statement: str) -> int:
    return pg.sql(statement, database)[0][0]


def distinct_contents(pg, database: str, name: str) -> int:
    return count(
        pg,
        database,
        f"SELECT count(DISTINCT content_id) FROM {schema(pg, database, name)}.page_version",
    )


def test_recordings_of_one_program_share_their_identical_pages(
    pg, pg_database, bank_binary, bank_sqlite
):
    db = pg_database
    pages = "SELECT count(*) FROM ttd.page_content"
    files = "SELECT count(*) FROM ttd.file_content"
    record_bank(bank_binary, pg.url(db, "first"))
    pages_1, files_1 = count(pg, db, pages), count(pg, db, files)
    assert pages_1 == distinct_contents(pg, db, "first") and files_1 >= 3  # exe, libc, ld.so
    record_bank(bank_binary, pg.url(db, "second"))
    copy(bank_sqlite, pg.url(db, "copied"))
    pages_3 = count(pg, db, pages)
    # the libraries' pages (and most of the program's) are stored once for all three
    added = pages_3 - pages_1
    assert added < distinct_contents(pg, db, "second") + distinct_contents(pg, db, "copied")
    assert added < distinct_contents(pg, db, "second") // 2
    assert count(pg, db, "SELECT count(DISTINCT digest) FROM ttd.page_content") == pages_3
    assert count(pg, db, files) == files_1  # the same ELF files, stored once
    for name in ("first", "second", "copied"):
        assert count(pg, db, f"SELECT count(*) FROM {schema(pg, db, name)}.recorded_file") >= 3


def test_a_page_changed_on_the_server_is_caught_by_its_sha256(pg, pg_database, bank_sqlite):
    db = pg_database
    url = pg.url(db, "bank")
    copy(bank_sqlite, url)
    assert ttd_call(url, 3, "balance_of(1)")["value"] == "9900"
    s = schema(pg, db, "bank")
    # the stack's pages at tick 3 get another page's bytes, well-formed (same codec)
    changed = pg.sql(
        "UPDATE ttd.page_content c SET data = o.data FROM ttd.page_content o "
        "WHERE o.codec = c.codec AND o.digest <> c.digest AND c.id IN ("
        f" SELECT v.content_id FROM {s}.page_version v JOIN {s}.mapping m"
        f'  ON v.address >= m.start AND v.address < m."end" JOIN {s}.snapshot n'
        "  ON n.id = m.snapshot_id WHERE m.path = '[stack]' AND n.tick = 3) RETURNING c.id",
        db,
    )
    assert changed
    result = ttd_call(url, 3, "balance_of(1)")
    assert result["status"] == "error" and result["value"] == ""
    assert "is corrupt" in result["error"] and "sha256" in result["error"], result["error"]


def recording_digest(pg, database: str, name: str) -> str:
    """A digest of every row of a recording and of the shared contents."""
    s = schema(pg, database, name)
    whole = hashlib.sha256()
    for table in (
        "meta",
        "recording",
        "snapshot",
        "thread",
        "mapping",
        "page_version",
        "recorded_file",
        "ttd.page_content",
        "ttd.file_content",
        "ttd.recordings",
    ):
        name_ = table if "." in table else f"{s}.{table}"
        rows = pg.sql(f"SELECT t::text FROM {name_} t ORDER BY 1", database)
        whole.update(repr(rows).encode())
    return whole.hexdigest()


def test_a_call_cannot_write_the_recording(pg, pg_database, bank_sqlite):
    db = pg_database
    url = pg.url(db, "bank")
    copy(bank_sqlite, url)
    before = recording_digest(pg, db, "bank")
    for tick in (2, 5):
        result = comparable(ttd_call(url, tick, "transfer(1, 2, 100)"))
        assert result["status"] == "returned" and result["pages"]  # it dirtied pages
    assert recording_digest(pg, db, "bank") == before
    # the page server's own connection: every transaction read-only
    with open_recording(url) as rec, psycopg.connect(rec.pageserver_location) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        try:
            conn.execute("UPDATE page_version SET content_id = NULL")
        except psycopg.errors.ReadOnlySqlTransaction:
            pass
        else:
            raise AssertionError("the page server's connection could write")
    assert recording_digest(pg, db, "bank") == before
