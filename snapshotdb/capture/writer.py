"""The snapshot writer shared by every way to record.

    source of state                  SnapshotWriter.write(info, threads, mappings, delta)
    ───────────────                  ─────────────────────────────────────────────────────
    live process (live.py: GDB's  ─┐  snapshot row (tick = max + 1), thread rows,
      `ttd snapshot`, ttd record,  ├▶ mapping rows, and a page_version row only for
      a benchmark under ptrace)    │  each page that differs from the page map in
    core file (core.py)           ─┘  force at the previous tick; all in one transaction

What the memory is now comes as a PageDelta against the writer's previous tick:

    chunks   (rec_addr, bytes): contiguous, page-aligned bytes read from the process
    reads    whole runs still to read from the process (`reader`): big ones, stored by the
             bulk path (bulk_store.py) for SQLite files, else read here as chunks
    zero     ranges whose pages no chunk or read covers read as zeros now (unmapped,
             dropped); None: the whole address space (a full description, as a first
             snapshot is)
    kept     ranges known unchanged, which `zero` does not touch
    outside chunks, reads, `zero` and `kept`, a page is as it was at the previous tick

Per page the writer decides, against the page map it holds (page_map.py):

    zero now, had content      -> version with content NULL
    content now                -> its page_content id (content_store.py: stored once);
                                  a version when the id differs from the map's

Chunks go through in batches (BATCH_BYTES): hashed and compressed (page_codec.py), their
contents and versions inserted with one executemany each; reads are stored by the native
SQLite extension in the same transaction (bulk_store.py), or read here as chunks. Nothing
of the process's memory is kept after a batch. Writes are not synced to disk (synchronous=OFF, as
gcore does not sync): a recorder killed at any moment leaves a consistent database (the
rollback journal); a machine that loses power may not. A delta made against an older tick
than the database's latest (another writer wrote meanwhile) is refused with StaleBase: its
maker reads again.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..errors import CaptureError
from ..models import Mapping, PageVersion, Recording, Snapshot, Thread
from ..pages import PAGE_SIZE
from ..regs import FPREGS_SIZE, GPREGS_SIZE, MM_FIELDS
from . import bulk_store
from .content_store import ContentStore
from .page_codec import PageCodec
from .page_map import PageMap
from .ranges import merged, subtract

# Bytes read from /proc/PID/mem per pread, and the granule of the scan's "did it change".
CHUNK_SIZE = 1 << 20
BATCH_BYTES = 4 << 20  # pages hashed, compressed and inserted together
ALL = (0, 1 << 64)


@dataclass
class ThreadState:
    tid: int
    gpregs: bytes
    fpregs: bytes
    xstate: bytes | None = None
    name: str | None = None


@dataclass
class MappingInfo:
    start: int
    end: int
    perms: str
    offset: int
    path: str
    inode: int = field(default=0, compare=False)  # of the mapped file (not recorded)


@dataclass
class SnapshotInfo:
    """What one snapshot says about its moment, apart from threads, mappings and pages."""

    reason: str
    stop_tid: int
    pc: int
    auxv: bytes
    mm: dict[str, int]
    function: str | None = None
    file: str | None = None
    line: int | None = None
    signal: str | None = None
    note: str | None = None


@dataclass
class PageDelta:
    """The memory of a snapshot as a change from the writer's previous tick (see above).
    base_tick: the tick it was made against; None when it describes everything afresh."""

    chunks: Iterable[tuple[int, bytes]]
    zero: list[tuple[int, int]] | None = None
    kept: list[tuple[int, int]] = field(default_factory=list)
    base_tick: int | None = None
    reads: list[tuple[int, int]] = field(default_factory=list)
    reader: object = None  # with mem_fd and run_chunks(start, end), when there are reads


@dataclass
class WriteStats:
    tick: int
    pages_scanned: int = 0
    bytes_scanned: int = 0
    versions_written: int = 0
    contents_written: int = 0
    chunks_skipped: int = 0
    tracker: str = "scan"  # how the changed pages were found: "wp-async" or "scan"
    notes: list[str] = field(default_factory=list)  # one line each, for the user, once


class StaleBase(CaptureError):
    """The delta was made against an older tick than the database's latest."""


class DiskFull(CaptureError):
    """The database's disk (or its size limit) is full; the snapshot was not written."""


class SnapshotWriter:
    """Appends snapshots to one recording. Opened on a read-write engine.

    The first write creates the recording row from exe_path/build_id/cmdline; a
    database that already holds a recording of another executable is refused.
    """

    def __init__(self, engine: Engine, *, exe_path: str, build_id: str | None, cmdline: list[str]):
        self.engine = engine
        with Session(engine) as session, session.begin():
            self.recording_id = self._recording(session, exe_path, build_id, cmdline)
        self.tick: int | None = None  # the latest tick this writer knows the page map of
        self.map = PageMap()
        self.path = database_name(engine) if engine.dialect.name == "sqlite" else None

    @staticmethod
    def _recording(
        session: Session, exe_path: str, build_id: str | None, cmdline: list[str]
    ) -> int:
        rec = session.scalars(select(Recording).order_by(Recording.id)).first()
        if rec is None:
            rec = Recording(exe_path=exe_path, build_id=build_id, cmdline=json.dumps(cmdline))
            session.add(rec)
            session.flush()
        elif rec.exe_path != exe_path or (build_id and rec.build_id and build_id != rec.build_id):
            raise CaptureError(
                f"This database records '{rec.exe_path}'; it cannot take a snapshot of "
                f"'{exe_path}'. Use a new database."
            )
        return rec.id

    def _sync(self, session: Session, base_tick: int | None) -> int:
        """Bring the page map up to the database's latest tick; return that tick (0: none).
        StaleBase when the delta was made against another tick."""
        latest = session.scalar(select(func.max(Snapshot.tick))) or 0
        if latest != self.tick:
            from .. import queries

            self.map = PageMap(queries.page_map(session, latest).items() if latest else ())
            self.tick = latest
        if base_tick is not None and base_tick != latest:
            raise StaleBase(f"the recording moved on to tick {latest} meanwhile")
        return latest

    def write(
        self,
        info: SnapshotInfo,
        threads: list[ThreadState],
        mappings: list[MappingInfo],
        delta: PageDelta | Iterable[tuple[int, bytes]],
    ) -> WriteStats:
        """Write one snapshot in one transaction and return its statistics. `delta` may be
        plain chunks: a full description."""
        if not isinstance(delta, PageDelta):
            delta = PageDelta(delta)
        if not threads:
            raise CaptureError("Cannot take a snapshot of a process without threads.")
        _check_threads(threads)
        try:
            with Session(self.engine) as session, session.begin():
                _write_settings(session)
                tick = self._sync(session, delta.base_tick) + 1
                snap_id = self._insert_snapshot(session, info, tick)
                self._insert_threads(session, snap_id, threads)
                self._insert_mappings(session, snap_id, mappings)
                pages = _PageWrite(session.connection(), self.map, tick)
                pages.write(delta)
        except OperationalError as exc:
            if "full" in str(exc.orig):  # SQLITE_FULL: "database or disk is full"
                raise self._disk_full() from None
            raise
        pages.apply(self.map)
        self.tick = tick
        return pages.stats

    def _disk_full(self) -> DiskFull:
        return DiskFull(
            f"The disk is full: tick {(self.tick or 0) + 1} could not be written "
            f"into '{self.path or database_name(self.engine)}'."
        )

    def _insert_snapshot(self, session: Session, info: SnapshotInfo, tick: int) -> int:
        row = {
            "recording_id": self.recording_id,
            "tick": tick,
            "reason": info.reason,
            "stop_tid": info.stop_tid,
            "pc": info.pc,
            "function": info.function,
            "file": info.file,
            "line": info.line,
            "signal": info.signal,
            "note": info.note,
            "auxv": info.auxv,
        }
        row.update({name: info.mm.get(name, 0) for name in MM_FIELDS})
        return session.execute(insert(Snapshot).returning(Snapshot.id), [row]).scalar_one()

    @staticmethod
    def _insert_threads(session: Session, snap_id: int, threads: list[ThreadState]) -> None:
        session.execute(
            insert(Thread),
            [
                {
                    "snapshot_id": snap_id,
                    "tid": t.tid,
                    "name": t.name,
                    "gpregs": t.gpregs,
                    "fpregs": t.fpregs,
                    "xstate": t.xstate,
                }
                for t in threads
            ],
        )

    @staticmethod
    def _insert_mappings(session: Session, snap_id: int, mappings: list[MappingInfo]) -> None:
        if mappings:
            session.execute(
                insert(Mapping),
                [
                    {
                        "snapshot_id": snap_id,
                        "start": m.start,
                        "end": m.end,
                        "perms": m.perms,
                        "offset": m.offset,
                        "path": m.path,
                    }
                    for m in mappings
                ],
            )


def _check_threads(threads: list[ThreadState]) -> None:
    for t in threads:
        if len(t.gpregs) != GPREGS_SIZE or len(t.fpregs) != FPREGS_SIZE:
            raise CaptureError(
                f"Thread {t.tid}: register sets have {len(t.gpregs)}/{len(t.fpregs)} bytes, "
                f"expected {GPREGS_SIZE}/{FPREGS_SIZE}."
            )


def database_name(engine: Engine) -> str:
    """The file behind a SQLite engine, or the URL of any other database (no password)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            for row in conn.exec_driver_sql("PRAGMA database_list"):
                if row[1] == "main" and row[2]:
                    return row[2]
    return engine.url.render_as_string(hide_password=True)


class _PageWrite:
    """The pages of one snapshot, written inside the snapshot's transaction."""

    def __init__(self, conn, page_map: PageMap, tick: int):
        self.conn = conn
        self.map = page_map
        self.tick = tick
        self.contents = ContentStore(conn)
        self.codec = PageCodec()
        self.changes: dict[int, int] = {}  # rec_addr -> content id (0: zero) once committed
        self.run_changes: list[tuple[int, array]] = []  # (start, ids) of stored reads
        self.covered: list[tuple[int, int]] = []
        self.stats = WriteStats(tick=tick)

    def write(self, delta: PageDelta) -> None:
        chunks = delta.chunks
        if delta.reads and bulk_store.usable(self.conn):
            self._store_reads(delta.reads, delta.reader.mem_fd)
        elif delta.reads:
            chunks = chain(
                (c for start, end in delta.reads for c in delta.reader.run_chunks(start, end)),
                chunks,
            )
        for batch in _batches(chunks, self.stats):
            self._write_batch(batch)
        self._zero(delta.zero, list(delta.kept))
        self.stats.contents_written += self.contents.inserted

    def apply(self, page_map: PageMap) -> None:
        """Bring the page map to this snapshot (once it is committed)."""
        for start, ids in self.run_changes:
            page_map.assign(start, ids)
        for rec_addr, content_id in self.changes.items():
            page_map.set(rec_addr, content_id)

    def _store_reads(self, reads: list[tuple[int, int]], mem_fd: int) -> None:
        """The reads stored by the native extension: contents and versions."""
        prev = array("q")
        for start, end in reads:
            prev.extend(self.map.ids(start, end))
        ids, contents, versions = bulk_store.store(self.conn, mem_fd, reads, prev, self.tick)
        pos = 0
        for start, end in reads:
            count = (end - start) // PAGE_SIZE
            self.run_changes.append((start, ids[pos : pos + count]))
            self.covered.append((start, end))
            pos += count
        self.stats.pages_scanned += pos
        self.stats.bytes_scanned += pos * PAGE_SIZE
        self.stats.contents_written += contents
        self.stats.versions_written += versions

    def _write_batch(self, batch: list[tuple[int, bytes]]) -> None:
        """Version every page of the batch whose content id differs from the map's."""
        for rec_addr, data in batch:
            self.covered.append((rec_addr, rec_addr + len(data)))
        encoded = self.codec.encode(batch)  # [(rec_addr, digest or None)], zero pages None
        rows, index = [], {}
        for _, digest in encoded:
            if digest is not None and digest not in index:
                index[digest] = len(rows)
                rows.append(digest)
        ids = self.contents.ids(self.codec.rows(rows)) if rows else []
        versions = []
        for rec_addr, digest in encoded:
            content_id = 0 if digest is None else ids[index[digest]]
            if self.map.get(rec_addr) != content_id:
                versions.append((rec_addr, self.tick, content_id or None))
                self.changes[rec_addr] = content_id
        self.stats.versions_written += len(versions)
        self._insert_versions(versions)

    def _zero(self, zero: list[tuple[int, int]] | None, kept: list[tuple[int, int]]) -> None:
        """NULL versions for pages with content in `zero` that no chunk covered and that
        are not kept."""
        versions = []
        for start, end in subtract(
            merged(zero if zero is not None else [ALL]), merged(self.covered + kept)
        ):
            for rec_addr in self.map.with_content(start, end):
                versions.append((rec_addr, self.tick, None))
                self.changes[rec_addr] = 0
        self.stats.versions_written += len(versions)
        self._insert_versions(versions)

    def _insert_versions(self, versions: list[tuple]) -> None:
        if versions:
            _bulk_insert(
                self.conn, PageVersion.__table__, ("address", "first_tick", "content_id"), versions
            )


def _batches(
    chunks: Iterable[tuple[int, bytes]], stats: WriteStats
) -> Iterator[list[tuple[int, bytes]]]:
    """The chunks in batches of about BATCH_BYTES, checked for alignment, counted."""
    batch, size = [], 0
    for rec_addr, data in chunks:
        if rec_addr % PAGE_SIZE or len(data) % PAGE_SIZE:
            raise CaptureError(f"Unaligned memory chunk at {rec_addr:#x} ({len(data)} bytes).")
        stats.bytes_scanned += len(data)
        stats.pages_scanned += len(data) // PAGE_SIZE
        batch.append((rec_addr, data))
        size += len(data)
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# SQLite page cache for a write, in KiB: the unique digest index takes random inserts,
# which thrash the 2 MiB default once a recording holds a few hundred MiB; more is memory
# the recorder keeps (the pooled connection keeps its cache).
WRITE_CACHE_KIB = 16 * 1024


def _write_settings(session: Session) -> None:
    """A larger page cache, no sync to disk (see the module's docstring). Both are settings
    of the connection, which SQLite takes outside a transaction: pysqlite opens it at the
    first INSERT."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")
        conn.exec_driver_sql("PRAGMA synchronous=OFF")


_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _bulk_insert(conn, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """executemany of plain tuples: SQLAlchemy's per-value bind processing costs more
    than SQLite's insert for page rows. Other paramstyles go through Core insert()."""
    mark = _PLACEHOLDER.get(conn.dialect.paramstyle)
    if mark is None:
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    conn.exec_driver_sql(sql, rows)
