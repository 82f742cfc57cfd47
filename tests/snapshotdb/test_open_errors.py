"""Opening recordings: every bad input gives one line that names the problem."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from snapshotdb import pages, queries
from snapshotdb.db import open_engine
from snapshotdb.errors import (
    CorruptPage,
    NotARecording,
    RecordingNotFound,
    SchemaVersionMismatch,
    SnapshotNotFound,
)
from snapshotdb.models import SCHEMA_VERSION, Meta, PageContent, PageVersion


def test_missing_file(tmp_path):
    path = tmp_path / "nope.db"
    with pytest.raises(
        RecordingNotFound, match=r"^No recording at '.*nope\.db': file not found\.$"
    ):
        open_engine(path)


def test_not_sqlite(tmp_path):
    path = tmp_path / "text.db"
    path.write_text("hello, I am not a database\n" * 10)
    with pytest.raises(
        NotARecording, match=r"is not a ttd recording \(not an SQLite database\)\.$"
    ):
        open_engine(path)


def test_empty_file_is_not_a_recording(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with pytest.raises(NotARecording, match="not an SQLite database"):
        open_engine(path)


def test_sqlite_but_not_a_recording(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("create table customers (id integer primary key, name text)")
    conn.commit()
    conn.close()
    with pytest.raises(NotARecording, match=r"is an SQLite database but not a ttd recording"):
        open_engine(path)


def test_other_schema_version(tmp_path):
    path = tmp_path / "old.db"
    engine = open_engine(path, create=True)
    with Session(engine) as session, session.begin():
        session.execute(update(Meta).where(Meta.key == "schema_version").values(value="99"))
    engine.dispose()
    with pytest.raises(
        SchemaVersionMismatch,
        match=rf"schema version 99; this ttd reads version {SCHEMA_VERSION}\.$",
    ):
        open_engine(path)


def test_directory_is_not_a_recording(tmp_path):
    with pytest.raises(NotARecording, match="is a directory"):
        open_engine(tmp_path)


def test_readonly_open_cannot_write(tmp_path):
    path = tmp_path / "ro.db"
    open_engine(path, create=True).dispose()
    before = path.read_bytes()
    engine = open_engine(path, readonly=True)
    with pytest.raises(OperationalError, match="attempt to write a readonly database"):
        with Session(engine) as session, session.begin():
            session.add(Meta(key="x", value="y"))
    engine.dispose()
    assert path.read_bytes() == before


def test_create_then_reopen(tmp_path):
    path = tmp_path / "new.db"
    open_engine(path, create=True).dispose()
    engine = open_engine(path)
    with Session(engine) as session:
        assert queries.timeline(session) == []
        assert queries.tick_range(session) is None
        with pytest.raises(SnapshotNotFound, match="^No tick 3: the recording has no snapshots.$"):
            queries.snapshot_at(session, 3)


def _store_page(session: Session, rec_addr: int, tick: int, raw: bytes) -> int:
    digest, codec, data = pages.encode(raw)
    content_id = session.execute(
        insert(PageContent).values(digest=digest, codec=codec, data=data)
    ).inserted_primary_key[0]
    session.execute(
        insert(PageVersion).values(address=rec_addr, first_tick=tick, content_id=content_id)
    )
    return content_id


def test_page_versions_and_page_map(tmp_path):
    engine = open_engine(tmp_path / "p.db", create=True)
    a, b = 0x10000, 0x11000
    one, two = b"\x01" * 4096, bytes(range(256)) * 16
    with Session(engine) as session, session.begin():
        c1 = _store_page(session, a, 1, one)
        c2 = _store_page(session, a, 3, two)
        session.execute(insert(PageVersion).values(address=a, first_tick=5, content_id=None))
        c3 = _store_page(session, b, 2, b"\x07" * 4096)
    with Session(engine) as session:
        assert queries.page_at(session, a, 1) == one
        assert queries.page_at(session, a, 2) == one
        assert queries.page_at(session, a, 4) == two
        assert queries.page_at(session, a, 5) == pages.ZERO_PAGE
        assert queries.page_at(session, b, 1) == pages.ZERO_PAGE
        assert queries.page_map(session, 1) == {a: c1}
        assert queries.page_map(session, 3) == {a: c2, b: c3}
        assert queries.page_map(session, 9) == {b: c3}
        assert queries.read_memory(session, a + 4090, 12, 3) == two[4090:] + b"\x07" * 6


def test_corrupt_page_names_tick_and_address(tmp_path):
    path = tmp_path / "c.db"
    engine = open_engine(path, create=True)
    with Session(engine) as session, session.begin():
        _store_page(session, 0x7F0000001000, 2, bytes(range(256)) * 16)
    engine.dispose()
    conn = sqlite3.connect(path)
    conn.execute("update page_content set data = ?", (b"\x00" * 4096,))
    conn.execute("update page_content set codec = 'raw'")
    conn.commit()
    conn.close()
    with Session(open_engine(path)) as session:
        with pytest.raises(
            CorruptPage,
            match=r"^Corrupt recording: page at tick 2, address "
            r"0x7f0000001000 does not match its hash\.$",
        ):
            queries.page_at(session, 0x7F0000001000, 2)


@pytest.mark.parametrize(
    "raw",
    [bytes(4096), b"\xaa" * 4096, bytes(range(256)) * 16],
    ids=["zero", "repeated", "pattern"],
)
def test_encode_decode_roundtrip(raw):
    digest, codec, data = pages.encode(raw)
    assert codec in ("zstd", "raw")
    assert pages.decode(codec, data, digest) == raw


def test_incompressible_page_stored_raw():
    import os

    raw = os.urandom(4096)
    digest, codec, data = pages.encode(raw)
    assert codec == "raw" and data == raw


def test_page_reader_agrees_with_queries(tmp_path):
    from snapshotdb.reader import PageReader

    engine = open_engine(tmp_path / "r.db", create=True)
    raw = bytes(range(256)) * 16
    with Session(engine) as session, session.begin():
        _store_page(session, 0x20000, 2, raw)
    with PageReader(engine, 1) as at1, PageReader(engine, 2) as at2:
        assert at1.page(0x20000) == pages.ZERO_PAGE
        assert at2.page(0x20000) == raw
        assert at2.read(0x20000 + 4000, 200) == raw[4000:] + bytes(104)
