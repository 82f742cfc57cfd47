"""The snapshot writer against a real SQLite file: only changed pages get versions,
zero and vanished pages get NULL versions, contents are shared, every tick reads back."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from snapshotdb import queries
from snapshotdb.capture import MappingInfo, SnapshotInfo, SnapshotWriter, ThreadState, parse_maps
from snapshotdb.db import open_engine
from snapshotdb.errors import CaptureError
from snapshotdb.models import PageContent, PageVersion
from snapshotdb.pages import PAGE_SIZE, ZERO_PAGE

BASE = 0x10000000
THREAD = ThreadState(tid=100, gpregs=bytes(216), fpregs=bytes(512), xstate=None, name="t")
INFO = SnapshotInfo(reason="manual", stop_tid=100, pc=0x401000, auxv=b"\0" * 16, mm={})


@pytest.fixture
def engine(tmp_path):
    engine = open_engine(tmp_path / "w.db", create=True)
    yield engine
    engine.dispose()


def writer(engine) -> SnapshotWriter:
    return SnapshotWriter(engine, exe_path="/bin/prog", build_id="ab", cmdline=["prog"])


def page(byte: int) -> bytes:
    return bytes([byte]) * PAGE_SIZE


def write(w: SnapshotWriter, memory: dict[int, bytes]):
    """Write one snapshot of `memory` (rec_addr -> page), one chunk per page run."""
    chunks, mappings = [], []
    for rec_addr in sorted(memory):
        chunks.append((rec_addr, memory[rec_addr]))
        mappings.append(MappingInfo(rec_addr, rec_addr + PAGE_SIZE, "rw-p", 0, ""))
    return w.write(INFO, [THREAD], mappings, chunks)


def versions(engine, tick: int) -> dict[int, int | None]:
    with Session(engine) as session:
        return dict(
            session.execute(
                select(PageVersion.address, PageVersion.content_id).where(
                    PageVersion.first_tick == tick
                )
            ).all()
        )


def count(engine, model) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_zero_pages_are_never_stored(engine):
    stats = write(writer(engine), {BASE: page(1), BASE + PAGE_SIZE: ZERO_PAGE})
    assert stats.tick == 1
    assert list(versions(engine, 1)) == [BASE]
    assert count(engine, PageContent) == 1


def test_only_changed_pages_get_versions(engine):
    w = writer(engine)
    write(w, {BASE: page(1), BASE + PAGE_SIZE: page(2)})
    stats = write(w, {BASE: page(1), BASE + PAGE_SIZE: page(3)})
    assert stats.tick == 2
    assert list(versions(engine, 2)) == [BASE + PAGE_SIZE]
    assert write(w, {BASE: page(1), BASE + PAGE_SIZE: page(3)}).versions_written == 0


def test_page_that_becomes_zero_or_vanishes_gets_a_null_version(engine):
    w = writer(engine)
    write(w, {BASE: page(1), BASE + PAGE_SIZE: page(2)})
    write(w, {BASE: ZERO_PAGE})  # second page unmapped
    assert versions(engine, 2) == {BASE: None, BASE + PAGE_SIZE: None}
    with Session(engine) as session:
        assert queries.page_at(session, BASE, 1) == page(1)
        assert queries.page_at(session, BASE, 2) == ZERO_PAGE
        assert queries.page_at(session, BASE + PAGE_SIZE, 2) == ZERO_PAGE
        assert queries.page_map(session, 2) == {}


def test_identical_contents_share_one_row(engine):
    w = writer(engine)
    write(w, {BASE: page(7), BASE + 5 * PAGE_SIZE: page(7)})
    write(w, {BASE + 9 * PAGE_SIZE: page(7)})
    assert count(engine, PageContent) == 1


def test_a_new_writer_continues_from_the_stored_page_map(engine):
    write(writer(engine), {BASE: page(1), BASE + PAGE_SIZE: page(2)})
    stats = write(writer(engine), {BASE: page(1), BASE + PAGE_SIZE: page(9)})
    assert stats.tick == 2 and list(versions(engine, 2)) == [BASE + PAGE_SIZE]


def test_every_tick_reads_back(engine):
    """A random walk over 3 regions for 25 ticks; each tick reads back as written."""
    rng = random.Random(7)
    w = writer(engine)
    regions = [(BASE, 40), (BASE + 0x100000, 300), (BASE + 0x800000, 8)]
    memory = {r + i * PAGE_SIZE: ZERO_PAGE for r, n in regions for i in range(n)}
    history = []
    for tick in range(1, 26):
        for rec_addr in rng.sample(sorted(memory), 12):
            memory[rec_addr] = rng.choice(
                [ZERO_PAGE, page(rng.randrange(1, 4)), rng.randbytes(PAGE_SIZE)]
            )
        live = {a: p for a, p in memory.items() if not (tick % 5 == 0 and a >= BASE + 0x800000)}
        chunks = [
            (r, b"".join(live.get(r + i * PAGE_SIZE, ZERO_PAGE) for i in range(n)))
            for r, n in regions
            if r in live
        ]
        mappings = [MappingInfo(r, r + n * PAGE_SIZE, "rw-p", 0, "") for r, n in regions]
        assert w.write(INFO, [THREAD], mappings, chunks).tick == tick
        history.append(dict(live))
    with Session(engine) as session:
        for tick, live in enumerate(history, start=1):
            stored = queries.page_map(session, tick)
            for rec_addr in memory:
                want = live.get(rec_addr, ZERO_PAGE)
                assert (rec_addr in stored) == (want != ZERO_PAGE), (tick, hex(rec_addr))
                assert queries.page_at(session, rec_addr, tick) == want, (tick, hex(rec_addr))


def test_unaligned_chunk_is_refused(engine):
    with pytest.raises(
        CaptureError, match=r"^Unaligned memory chunk at 0x10000010 \(4096 bytes\)\.$"
    ):
        writer(engine).write(INFO, [THREAD], [], [(BASE + 16, page(1))])
    assert count(engine, PageVersion) == 0


def test_another_executable_is_refused(engine):
    write(writer(engine), {BASE: page(1)})
    with pytest.raises(CaptureError) as exc:
        SnapshotWriter(engine, exe_path="/bin/other", build_id=None, cmdline=[])
    assert str(exc.value) == (
        "This database records '/bin/prog'; it cannot take a snapshot "
        "of '/bin/other'. Use a new database."
    )


def test_bad_register_sizes_are_refused(engine):
    bad = ThreadState(tid=1, gpregs=bytes(200), fpregs=bytes(512))
    with pytest.raises(
        CaptureError,
        match=r"^Thread 1: register sets have 200/512 bytes, "
        r"expected 216/512\.$",
    ):
        writer(engine).write(INFO, [bad], [], [])


def test_no_threads_is_refused(engine):
    with pytest.raises(CaptureError, match="^Cannot take a snapshot of a process without threads"):
        writer(engine).write(INFO, [], [], [])


@pytest.mark.parametrize(
    "line, expected",
    [
        (
            "555555554000-555555555000 r--p 00000000 fe:01 1234   /usr/bin/prog",
            MappingInfo(0x555555554000, 0x555555555000, "r--p", 0, "/usr/bin/prog"),
        ),
        (
            "7ffc1000-7ffc2000 rw-p 00000000 00:00 0                          [stack]",
            MappingInfo(0x7FFC1000, 0x7FFC2000, "rw-p", 0, "[stack]"),
        ),
        (
            "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ",
            MappingInfo(0x7F0000000000, 0x7F0000021000, "rw-p", 0, ""),
        ),
        (
            "7f00-8f00 r-xp 0001a000 08:01 99 /tmp/my lib.so (deleted)",
            MappingInfo(0x7F00, 0x8F00, "r-xp", 0x1A000, "/tmp/my lib.so (deleted)"),
        ),
    ],
)
def test_parse_maps(line, expected):
    assert parse_maps(line) == [expected]


def test_parse_maps_bad_line():
    with pytest.raises(CaptureError, match="^Cannot parse a line of /proc/PID/maps: 'garbage'$"):
        parse_maps("garbage")
