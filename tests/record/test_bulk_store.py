"""ttd_store_pages (native/capture) makes the rows a page-by-page insert would make: the same
page_content ids in address order, one row per content, contents stored before reused, zero
pages and unreadable pages as id 0, a page_version row exactly where the id changed, and a
page_digest row of every content.

The "process memory" is a regular file read with pread: the extension reads MEM_FD at the
runs' addresses whatever the descriptor is. Pages repeat within a batch of 256 pages,
across batches and across calls, so every way the store finds a content is exercised."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
from array import array

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from snapshotdb.capture import bulk_store
from snapshotdb.capture.content_store import ContentStore
from snapshotdb.db import open_engine
from snapshotdb.pages import PAGE_SIZE, ZERO_PAGE, check_of, decode
from tests.conftest import require
from tests.record.memory import digest_table_problems, to_old_form

BATCH = 256  # native/capture/encoder.h BATCH_PAGES


def page_of(kind: str, n: int) -> bytes:
    """A page of random bytes (stored raw) or of text (stored as a zstd frame)."""
    if kind == "random":
        return random.Random(n).randbytes(PAGE_SIZE)
    line = f"page {n} of a text that compresses well\n".encode()
    return (line * (PAGE_SIZE // len(line) + 1))[:PAGE_SIZE]


def memory_file(path, pages: list[bytes]) -> int:
    with open(path, "wb") as f:
        f.write(b"".join(pages))
    return os.open(path, os.O_RDONLY)


class Model:
    """What a page-by-page INSERT OR IGNORE makes."""

    def __init__(self):
        self.ids: dict[bytes, int] = {}
        self.versions: list[tuple[int, int, int | None]] = []

    def store(self, pages: list[bytes], addrs: list[int], prev: list[int], tick: int):
        out, inserted = [], 0
        for page, addr, before in zip(pages, addrs, prev, strict=True):
            cid = 0
            if page != ZERO_PAGE:
                digest = hashlib.sha256(page).digest()
                if digest not in self.ids:
                    self.ids[digest] = len(self.ids) + 1
                    inserted += 1
                cid = self.ids[digest]
            if cid != before:
                self.versions.append((addr, tick, cid or None))
            out.append(cid)
        return out, inserted


@pytest.fixture
def conn(tmp_path):
    require(bulk_store.LIBRARY.exists(), "make -C native/capture")
    engine = open_engine(tmp_path / "rec.db", create=True)
    with engine.connect() as conn, conn.begin():
        assert bulk_store.usable(conn)
        yield conn
    engine.dispose()


def call_pages(n_calls: int) -> list[list[bytes]]:
    """Pages of each call: runs of random, text and zero pages, repeating within a batch,
    across batches and from one call to the next."""
    rng = random.Random(7)
    calls = []
    for call in range(n_calls):
        pages = []
        for i in range(3 * BATCH + 17):
            pick = rng.random()
            if pick < 0.15:
                pages.append(ZERO_PAGE)
            elif pick < 0.35:  # a content seen before, in this call or an earlier one
                pages.append(page_of("text", rng.randrange(40)))
            elif pick < 0.5:
                pages.append(page_of("random", rng.randrange(1000, 1030)))
            else:
                pages.append(page_of("random" if i % 2 else "text", 10_000 * call + i))
        calls.append(pages)
    return calls


def test_the_rows_of_a_page_by_page_insert(conn, tmp_path):
    model = Model()
    base = 0x10000000
    prev = [0] * (3 * BATCH + 17)
    # two runs with a gap: one batch never spans two runs
    runs = [
        (base, base + 100 * PAGE_SIZE),
        (base + 200 * PAGE_SIZE, base + (200 + 3 * BATCH - 83) * PAGE_SIZE),
    ]
    addrs = [a for start, end in runs for a in range(start, end, PAGE_SIZE)]
    calls = call_pages(2)
    # the last call finds most pages as they were
    calls.append([p if i % 5 else ZERO_PAGE for i, p in enumerate(calls[-1])])
    for tick, pages in enumerate(calls, start=1):
        fd = sparse_memory(tmp_path / f"mem{tick}", runs, pages)
        try:
            ids, contents, versions = bulk_store.store(conn, fd, runs, array("q", prev), tick)
        finally:
            os.close(fd)
        want, inserted = model.store(pages, addrs, prev, tick)
        assert list(ids) == want
        assert contents == inserted
        assert versions == sum(1 for v in model.versions if v[1] == tick)
        prev = want
    rows = conn.execute(text("SELECT id, digest, codec, data FROM page_content ORDER BY id"))
    stored = {}
    for cid, digest, codec, data in rows:
        stored[bytes(digest)] = cid
        decode(codec, data, bytes(digest))  # verifies the digest
    assert stored == model.ids
    found = conn.execute(text("SELECT digest, content_id FROM page_digest"))
    assert {bytes(d): cid for d, cid in found} == model.ids
    got = conn.execute(
        text("SELECT address, first_tick, content_id FROM page_version ORDER BY id")
    ).all()
    assert [tuple(r) for r in got] == model.versions


def sparse_memory(path, runs, pages: list[bytes]) -> int:
    """A file holding the pages at the runs' addresses (a sparse file: the addresses are
    large)."""
    with open(path, "wb") as f:
        i = 0
        for start, end in runs:
            n = (end - start) // PAGE_SIZE
            f.seek(start)
            f.write(b"".join(pages[i : i + n]))
            i += n
    return os.open(path, os.O_RDONLY)


def test_unreadable_pages_are_zeros(conn, tmp_path):
    """A run past the end of the descriptor's data reads as zeros: id 0, no version."""
    pages = [page_of("text", 1), page_of("random", 2)]
    fd = memory_file(tmp_path / "mem", pages)
    runs = [(0, 4 * PAGE_SIZE)]
    try:
        ids, contents, versions = bulk_store.store(conn, fd, runs, array("q", [0] * 4), 1)
    finally:
        os.close(fd)
    assert ids[2:] == array("q", [0, 0]) and all(ids[:2])
    assert (contents, versions) == (2, 2)


def test_foreign_keys_are_checked_after_the_call(conn, tmp_path):
    """The extension stores without foreign key checks and turns them back on: a version
    naming a content that does not exist is still refused in the same transaction."""
    fd = memory_file(tmp_path / "mem", [page_of("text", 1)])
    try:
        bulk_store.store(conn, fd, [(0, PAGE_SIZE)], array("q", [0]), 1)
    finally:
        os.close(fd)
    assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        conn.execute(
            text("INSERT INTO page_version (address, first_tick, content_id) VALUES (4096, 1, 999)")
        )


def test_a_full_database_fails_the_call_and_keeps_the_checks(tmp_path):
    """A database that cannot grow (max_page_count) fails the call with SQLite's error; the
    foreign key checks are back on and the rolled-back transaction left no page row."""
    require(bulk_store.LIBRARY.exists(), "make -C native/capture")
    engine = open_engine(tmp_path / "rec.db", create=True)
    pages = [page_of("random", n) for n in range(2 * BATCH)]
    fd = memory_file(tmp_path / "mem", pages)
    try:
        with engine.connect() as conn:
            with pytest.raises(OperationalError, match="full"), conn.begin():
                assert bulk_store.usable(conn)
                size = conn.execute(text("PRAGMA page_count")).scalar()
                conn.execute(text(f"PRAGMA max_page_count={size + 8}"))
                bulk_store.store(
                    conn, fd, [(0, len(pages) * PAGE_SIZE)], array("q", [0] * len(pages)), 1
                )
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            counts = [
                conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("page_content", "page_version")
            ]
            assert counts == [0, 0]
    finally:
        os.close(fd)
        engine.dispose()


@pytest.fixture
def half_digested(tmp_path):
    """A recording in the old form whose page_digest misses half of its contents (an older
    ttd stored them after page_digest was added), and the pages of its contents."""
    require(bulk_store.LIBRARY.exists(), "make -C native/capture")
    db = tmp_path / "rec.db"
    engine = open_engine(db, create=True)
    pages = [page_of("random", n) for n in range(40)]
    fd = memory_file(tmp_path / "mem", pages)
    try:
        with engine.begin() as conn:
            assert bulk_store.usable(conn)
            bulk_store.store(conn, fd, [(0, 40 * PAGE_SIZE)], array("q", [0] * 40), 1)
    finally:
        os.close(fd)
    engine.dispose()
    to_old_form(db, keep_digests=True)
    raw = sqlite3.connect(db)
    raw.execute("DELETE FROM page_digest WHERE content_id % 2 = 0")
    raw.commit()
    raw.close()
    return db, pages


def test_a_content_missing_from_page_digest_is_found_not_stored_again(half_digested, tmp_path):
    """The native store: a content page_digest does not know but the old form's UNIQUE
    constraint refuses is looked up by its digest, and added to page_digest."""
    db, pages = half_digested
    fd = memory_file(tmp_path / "mem2", pages)
    engine = open_engine(db, readonly=False)
    try:
        with engine.begin() as conn:
            assert bulk_store.usable(conn)
            ids, contents, _ = bulk_store.store(
                conn, fd, [(0, 40 * PAGE_SIZE)], array("q", [0] * 40), 2
            )
    finally:
        os.close(fd)
        engine.dispose()
    assert (list(ids), contents) == (list(range(1, 41)), 0)
    assert digest_table_problems(db) == []


def test_python_finds_a_content_missing_from_page_digest(half_digested):
    """Python's ContentStore, likewise."""
    db, pages = half_digested
    rows = [(d, "raw", p, check_of(p, d)) for p in pages for d in [hashlib.sha256(p).digest()]]
    engine = open_engine(db, readonly=False)
    try:
        with engine.begin() as conn:
            store = ContentStore(conn)
            assert store.ids(rows) == list(range(1, 41)) and store.inserted == 0
    finally:
        engine.dispose()
    assert digest_table_problems(db) == []
