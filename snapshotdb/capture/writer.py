"""The snapshot writer shared by every way to record.

    source of state                  SnapshotWriter.write(...)
    ───────────────                  ─────────────────────────
    live process (live.py: GDB's  ─┐  snapshot row (tick = max + 1), thread rows,
      `ttd snapshot`, ttd record,  ├▶ mapping rows, and a page_version row only for
      a benchmark under ptrace)    │  each page that differs from the page map in
    core file (core.py)           ─┘  force at the previous tick

A page source yields (rec_addr, data) chunks: contiguous, page-aligned bytes of
the recorded process. Pages no chunk covers read as zeros (never populated).
Per page the writer decides, against the page map it holds (address -> content id):

    zero now, had content      -> version with content NULL
    zero now, had none         -> nothing
    content now (digest D)     -> reuse the page_content row of D, or insert it;
                                  version only when the id differs from the map's
    had content, not covered   -> version with content NULL (unmapped or unpopulated)

Incremental speed: the writer keeps the bytes of every chunk it wrote last time
(memory = the recorded process's resident size) and skips a chunk whose bytes
compare equal (a memcmp) without hashing it; only chunks that changed are split
into pages and hashed. A writer that sees another writer's tick in the database
drops this cache and reloads the page map.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .. import queries
from ..errors import CaptureError
from ..models import Mapping, PageContent, PageVersion, Recording, Snapshot, Thread
from ..pages import PAGE_SIZE, ZERO_PAGE, compress, digest_of
from ..regs import FPREGS_SIZE, GPREGS_SIZE

# Bytes read from /proc/PID/mem per pread, and the unit of "did this change" checks.
CHUNK_SIZE = 1 << 20
DIGEST_BATCH = 500  # digests per "IN (...)" lookup, well under SQLite's variable limit
ZERO_CHUNK = bytes(CHUNK_SIZE)

MM_FIELDS = ("start_code", "end_code", "start_data", "end_data", "start_brk", "brk",
             "start_stack", "arg_start", "arg_end", "env_start", "env_end")



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
class WriteStats:
    tick: int
    pages_scanned: int = 0
    bytes_scanned: int = 0
    versions_written: int = 0
    contents_written: int = 0
    chunks_skipped: int = 0


@dataclass
class _Chunk:
    data: bytes
    pages: dict[int, int] = field(default_factory=dict)  # rec_addr -> content id (non-zero)


class SnapshotWriter:
    """Appends snapshots to one recording. Opened on a read-write engine.

    The first write creates the recording row from exe_path/build_id/cmdline; a
    database that already holds a recording of another executable is refused.
    """

    def __init__(self, engine: Engine, *, exe_path: str, build_id: str | None,
                 cmdline: list[str], keep_bytes: bool = True):
        self.engine = engine
        self.keep_bytes = keep_bytes
        with Session(engine) as session, session.begin():
            self.recording_id = self._recording(session, exe_path, build_id, cmdline)
            self._digests: dict[bytes, int] = dict(
                session.execute(select(PageContent.digest, PageContent.id)).all())
        self._last_tick: int | None = None
        self._map: dict[int, int] = {}
        self._chunks: dict[int, _Chunk] = {}

    @staticmethod
    def _recording(session: Session, exe_path: str, build_id: str | None,
                   cmdline: list[str]) -> int:
        rec = session.scalars(select(Recording).order_by(Recording.id)).first()
        if rec is None:
            rec = Recording(exe_path=exe_path, build_id=build_id, cmdline=json.dumps(cmdline))
            session.add(rec)
            session.flush()
        elif rec.exe_path != exe_path or (build_id and rec.build_id and build_id != rec.build_id):
            raise CaptureError(
                f"This database records '{rec.exe_path}'; it cannot take a snapshot of "
                f"'{exe_path}'. Use a new database.")
        return rec.id

    def _sync(self, session: Session) -> int:
        """Bring the page map up to the database's latest tick; return that tick (0: none)."""
        latest = session.scalar(select(func.max(Snapshot.tick))) or 0
        if latest != self._last_tick:
            self._map = queries.page_map(session, latest) if latest else {}
            self._chunks = {}
            self._last_tick = latest
        return latest

    def write(self, info: SnapshotInfo, threads: list[ThreadState],
              mappings: list[MappingInfo], chunks: Iterable[tuple[int, bytes]]) -> WriteStats:
        """Write one snapshot in one transaction and return its statistics."""
        if not threads:
            raise CaptureError("Cannot take a snapshot of a process without threads.")
        with Session(self.engine) as session, session.begin():
            _large_cache(session)
            tick = self._sync(session) + 1
            stats = WriteStats(tick=tick)
            snap_id = self._insert_snapshot(session, info, tick)
            self._insert_threads(session, snap_id, threads)
            self._insert_mappings(session, snap_id, mappings)
            diff = _Diff(dict(self._map))
            self._diff(chunks, diff, stats)
            self._insert_contents(session, diff)
            if diff.versions:
                _bulk_insert(session.connection(), PageVersion.__table__,
                             ("address", "first_tick", "content_id"),
                             [(a, tick, c) for a, c in diff.versions.items()])
            stats.versions_written = len(diff.versions)
            stats.contents_written = len(diff.contents)
        self._map, self._last_tick = diff.new_map, tick
        self._chunks = diff.new_chunks if self.keep_bytes else {}
        return stats

    def _insert_snapshot(self, session: Session, info: SnapshotInfo, tick: int) -> int:
        row = {"recording_id": self.recording_id, "tick": tick, "reason": info.reason,
               "stop_tid": info.stop_tid, "pc": info.pc, "function": info.function,
               "file": info.file, "line": info.line, "signal": info.signal,
               "note": info.note, "auxv": info.auxv}
        row.update({name: info.mm.get(name, 0) for name in MM_FIELDS})
        return session.execute(insert(Snapshot).returning(Snapshot.id), [row]).scalar_one()

    @staticmethod
    def _insert_threads(session: Session, snap_id: int, threads: list[ThreadState]) -> None:
        for t in threads:
            if len(t.gpregs) != GPREGS_SIZE or len(t.fpregs) != FPREGS_SIZE:
                raise CaptureError(
                    f"Thread {t.tid}: register sets have {len(t.gpregs)}/{len(t.fpregs)} bytes, "
                    f"expected {GPREGS_SIZE}/{FPREGS_SIZE}.")
        session.execute(insert(Thread), [
            {"snapshot_id": snap_id, "tid": t.tid, "name": t.name, "gpregs": t.gpregs,
             "fpregs": t.fpregs, "xstate": t.xstate} for t in threads])

    @staticmethod
    def _insert_mappings(session: Session, snap_id: int, mappings: list[MappingInfo]) -> None:
        if mappings:
            session.execute(insert(Mapping), [
                {"snapshot_id": snap_id, "start": m.start, "end": m.end, "perms": m.perms,
                 "offset": m.offset, "path": m.path} for m in mappings])

    def _diff(self, chunks, diff: _Diff, stats: WriteStats) -> None:
        """Compare the chunks with the page map and fill `diff` with what to write."""
        covered: set[int] = set()
        for rec_addr, data in chunks:
            if rec_addr % PAGE_SIZE or len(data) % PAGE_SIZE:
                raise CaptureError(f"Unaligned memory chunk at {rec_addr:#x} ({len(data)} bytes).")
            stats.bytes_scanned += len(data)
            covered.update(range(rec_addr, rec_addr + len(data), PAGE_SIZE))
            prev = self._chunks.get(rec_addr)
            if prev is not None and prev.data == data:
                stats.chunks_skipped += 1
                diff.new_chunks[rec_addr] = prev
                continue
            chunk = _Chunk(data)
            self._diff_chunk(rec_addr, data, prev, chunk, diff)
            diff.new_chunks[rec_addr] = chunk
        stats.pages_scanned = stats.bytes_scanned // PAGE_SIZE
        for rec_addr in set(diff.new_map) - covered:
            diff.set_zero(rec_addr)

    def _diff_chunk(self, rec_addr: int, data: bytes, prev: _Chunk | None, chunk: _Chunk,
                    diff: _Diff) -> None:
        if len(data) <= CHUNK_SIZE and data == ZERO_CHUNK[:len(data)]:
            for page_addr in range(rec_addr, rec_addr + len(data), PAGE_SIZE):
                diff.set_zero(page_addr)
            return
        same_shape = prev is not None and len(prev.data) == len(data)
        for off in range(0, len(data), PAGE_SIZE):
            page_addr = rec_addr + off
            page = data[off:off + PAGE_SIZE]
            if same_shape and page == prev.data[off:off + PAGE_SIZE]:
                cid = prev.pages.get(page_addr)
                if cid is not None:
                    chunk.pages[page_addr] = cid
                    continue
                if page_addr not in diff.new_map:
                    continue  # was zero, still zero
            if page == ZERO_PAGE:
                diff.set_zero(page_addr)
                continue
            digest = digest_of(page)
            cid = self._digests.get(digest)
            if cid is None:
                diff.contents.setdefault(digest, page)
                diff.pending.append((page_addr, chunk, digest))
                continue
            chunk.pages[page_addr] = cid
            if diff.new_map.get(page_addr) != cid:
                diff.versions[page_addr] = diff.new_map[page_addr] = cid

    def _insert_contents(self, session: Session, diff: _Diff) -> None:
        """Insert new page contents and point their pages at the new ids."""
        if not diff.contents:
            return
        rows = [(digest, *compress(raw)) for digest, raw in diff.contents.items()]
        # executemany without RETURNING (SQLite would insert row by row to return ids
        # in order), then look the new ids up by digest, which is unique.
        conn = session.connection()
        _bulk_insert(conn, PageContent.__table__, ("digest", "codec", "data"), rows)
        digests = list(diff.contents)
        for i in range(0, len(digests), DIGEST_BATCH):
            batch = digests[i:i + DIGEST_BATCH]
            self._digests.update(tuple(row) for row in conn.execute(
                select(PageContent.digest, PageContent.id).where(PageContent.digest.in_(batch))))
        for page_addr, chunk, digest in diff.pending:
            cid = self._digests[digest]
            chunk.pages[page_addr] = diff.versions[page_addr] = diff.new_map[page_addr] = cid


# SQLite page cache for a write, in KiB: the unique digest index takes random inserts,
# which thrash the 2 MiB default once a recording holds a few hundred MiB.
WRITE_CACHE_KIB = 256 * 1024


def _large_cache(session: Session) -> None:
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{WRITE_CACHE_KIB}")


_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _bulk_insert(conn, table, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """executemany of plain tuples: SQLAlchemy's per-value bind processing costs more
    than SQLite's insert for page rows. Other paramstyles go through Core insert()."""
    mark = _PLACEHOLDER.get(conn.dialect.paramstyle)
    if mark is None:
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    conn.exec_driver_sql(sql, rows)


@dataclass
class _Diff:
    """What one write changes: the page map after it, and the rows to insert.

    versions: rec_addr -> content id, or None for a page that reads as zeros now.
    contents: digest -> raw bytes of contents not stored yet; pending: the pages
    (address, chunk, digest) that wait for those contents' ids.
    """
    new_map: dict[int, int]
    new_chunks: dict[int, _Chunk] = field(default_factory=dict)
    versions: dict[int, int | None] = field(default_factory=dict)
    contents: dict[bytes, bytes] = field(default_factory=dict)
    pending: list[tuple[int, _Chunk, bytes]] = field(default_factory=list)

    def set_zero(self, page_addr: int) -> None:
        if page_addr in self.new_map:
            del self.new_map[page_addr]
            self.versions[page_addr] = None
