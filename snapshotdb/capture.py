"""Capture: the snapshot writer shared by every way to record, and live-process capture.

    source of state                 SnapshotWriter.write(...)
    ───────────────                 ─────────────────────────
    live process (GDB / ptrace) ─┐   snapshot row (tick = max + 1), thread rows,
    core file (coreimport.py)   ─┼─▶ mapping rows, and a page_version row only for
    ttd record (record.py)      ─┘   each page that differs from the page map in
                                     force at the previous tick

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

Live capture (`snapshot_live`) reads memory with big preads of /proc/PID/mem,
uses /proc/PID/pagemap to skip anonymous pages that were never populated, and
reads registers with PTRACE_GETREGSET, so the caller must be the tracer of every
thread and every thread must be stopped (GDB in all-stop mode is; so is a
benchmark that PTRACE_SEIZEs and interrupts each thread).
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import struct
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import zstandard

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from . import queries
from .elf import build_id
from .errors import CaptureError
from .models import Mapping, PageContent, PageVersion, Recording, Snapshot, Thread
from .pages import PAGE_SIZE, ZERO_PAGE, ZSTD_LEVEL, digest_of

# Bytes read from /proc/PID/mem per pread, and the unit of "did this change" checks.
CHUNK_SIZE = 1 << 20
DIGEST_BATCH = 500  # digests per "IN (...)" lookup, well under SQLite's variable limit
ZERO_CHUNK = bytes(CHUNK_SIZE)

MM_FIELDS = ("start_code", "end_code", "start_data", "end_data", "start_brk", "brk",
             "start_stack", "arg_start", "arg_end", "env_start", "env_end")

# regset sizes (linux/elf.h NT_* notes, arch/x86 user.h)
NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_X86_XSTATE = 0x202
GPREGS_SIZE = 216  # struct user_regs_struct: 27 u64
FPREGS_SIZE = 512  # struct user_fpregs_struct (FXSAVE layout)
XSTATE_MAX_SIZE = 1 << 14  # large enough for any XSAVE area of today's CPUs
PTRACE_GETREGSET = 0x4204


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


# ─── the writer ────────────────────────────────────────────────────────────────


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
        rows = [(digest, *_compress(raw)) for digest, raw in diff.contents.items()]
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
        conn.execute(insert(table), [dict(zip(columns, row)) for row in rows])
        return
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
           f"VALUES ({', '.join([mark] * len(columns))})")
    conn.exec_driver_sql(sql, rows)


_compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False,
                                       write_content_size=True)


def _compress(raw: bytes) -> tuple[str, bytes]:
    """(codec, data) as pages.encode gives them, without hashing the page again."""
    packed = _compressor.compress(raw)
    return ("zstd", packed) if len(packed) < len(raw) else ("raw", raw)


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


# ─── live processes: /proc ────────────────────────────────────────────────────

_MAPS_LINE = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$")


def parse_maps(text: str) -> list[MappingInfo]:
    """Parse /proc/PID/maps text."""
    out = []
    for line in text.splitlines():
        m = _MAPS_LINE.match(line)
        if m is None:
            raise CaptureError(f"Cannot parse a line of /proc/PID/maps: {line!r}")
        out.append(MappingInfo(int(m[1], 16), int(m[2], 16), m[3], int(m[4], 16), m[5]))
    return out


# Mappings at or above this are the kernel's, shared by every process ([vsyscall]):
# nothing to record or restore, and they do not fit a signed 64-bit column.
KERNEL_SPACE = 1 << 63


def read_maps(pid: int) -> list[MappingInfo]:
    """The process's user-space mappings (kernel-space ones such as [vsyscall] left out)."""
    return [m for m in parse_maps(_read_proc(pid, "maps").decode()) if m.start < KERNEL_SPACE]


def _read_proc(pid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    except PermissionError as exc:
        raise CaptureError(f"Cannot read /proc/{pid}/{name}: {exc.strerror}. Please make sure "
                           "to run as root or with the ptrace capability.") from None


def mm_fields(pid: int, mappings: list[MappingInfo]) -> dict[str, int]:
    """The mm fields of /proc/PID/stat, and brk = the [heap] end (start_brk without a heap)."""
    stat = _read_proc(pid, "stat").decode()
    fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is stat field 3
    value = lambda n: int(fields[n - 3])  # noqa: E731 (1-based stat field number)
    mm = {"start_code": value(26), "end_code": value(27), "start_stack": value(28),
          "start_data": value(45), "end_data": value(46), "start_brk": value(47),
          "arg_start": value(48), "arg_end": value(49), "env_start": value(50),
          "env_end": value(51)}
    heap = [m for m in mappings if m.path == "[heap]"]
    mm["brk"] = heap[-1].end if heap else mm["start_brk"]
    return mm


def thread_ids(pid: int) -> list[int]:
    """The process's threads, the main thread first."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    return sorted(tids, key=lambda tid: tid != pid)


def thread_name(pid: int, tid: int) -> str | None:
    try:
        return _read_proc(pid, f"task/{tid}/comm").decode().rstrip("\n")
    except CaptureError:
        return None


def is_special(m: MappingInfo) -> bool:
    """A kernel-made mapping ([vdso], [vvar], [vsyscall], ...), not [heap] or [stack]."""
    return m.path.startswith("[") and m.path != "[heap]" and not m.path.startswith("[stack")


def is_anonymous(m: MappingInfo) -> bool:
    """Memory whose never-populated pages read as zeros (no file behind them)."""
    return m.path in ("", "[heap]") or m.path.startswith("[stack") or (
        m.path.startswith("[anon:"))


# ─── live processes: memory ──────────────────────────────────────────────────

_PRESENT_OR_SWAPPED = re.compile(rb"[\x40-\xff]+")  # pagemap bits 62 (swapped), 63 (present)


def populated_runs(pagemap_fd: int, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) runs of pages in [start, end) that are present or swapped."""
    npages = (end - start) // PAGE_SIZE
    raw = os.pread(pagemap_fd, npages * 8, (start // PAGE_SIZE) * 8)
    top = raw[7::8]  # the high byte of each little-endian u64 entry
    return [(start + m.start() * PAGE_SIZE, start + m.end() * PAGE_SIZE)
            for m in _PRESENT_OR_SWAPPED.finditer(top)]


def live_chunks(pid: int, mappings: list[MappingInfo]) -> Iterator[tuple[int, bytes]]:
    """Yield (rec_addr, bytes) of a stopped process's memory, CHUNK_SIZE at most each.

    Readable mappings are read whole, except anonymous ones, of which only the
    populated pages are read. Unreadable mappings ('---p' guards and reserves)
    are read only where populated: their content survives an mprotect back.
    Special mappings that the kernel refuses to read ([vvar], [vsyscall]) give
    no pages.
    """
    mem_fd = _open_proc(pid, "mem")
    pagemap_fd = _open_proc(pid, "pagemap")
    try:
        for m in mappings:
            if is_anonymous(m) or "r" not in m.perms:
                runs = populated_runs(pagemap_fd, m.start, m.end)
            else:
                runs = [(m.start, m.end)]
            for start, end in runs:
                yield from _read_run(mem_fd, m, start, end)
    finally:
        os.close(mem_fd)
        os.close(pagemap_fd)


def _open_proc(pid: int, name: str) -> int:
    try:
        return os.open(f"/proc/{pid}/{name}", os.O_RDONLY)
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    except PermissionError as exc:
        raise CaptureError(f"Cannot open /proc/{pid}/{name}: {exc.strerror}. Please make sure "
                           "to run as root or with the ptrace capability.") from None


def _read_run(mem_fd: int, m: MappingInfo, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    # Chunks are aligned to CHUNK_SIZE in the address space so the same addresses
    # fall into the same chunk at every snapshot (the writer's cache is keyed by start).
    rec_addr = start
    while rec_addr < end:
        stop = min(end, (rec_addr // CHUNK_SIZE + 1) * CHUNK_SIZE)
        data = _pread(mem_fd, rec_addr, stop - rec_addr)
        if data is not None:
            yield rec_addr, data
        elif is_special(m):
            return  # the kernel keeps it to itself ([vvar], [vsyscall], ...)
        else:
            yield from _read_pages(mem_fd, rec_addr, stop)
        rec_addr = stop


def _pread(mem_fd: int, rec_addr: int, length: int) -> bytes | None:
    """All `length` bytes at rec_addr, or None when any of them cannot be read."""
    try:
        data = os.pread(mem_fd, length, rec_addr)
    except OSError:
        return None
    return data if len(data) == length else None


def _read_pages(mem_fd: int, start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    """Page by page, leaving out pages the kernel cannot read: a file mapping beyond
    the end of its file (the process would get SIGBUS there), a PROT_NONE guard."""
    for rec_addr in range(start, stop, PAGE_SIZE):
        data = _pread(mem_fd, rec_addr, PAGE_SIZE)
        if data is not None:
            yield rec_addr, data


# ─── live processes: registers ──────────────────────────────────────────────

class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = None


def _ptrace():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.ptrace.restype = ctypes.c_long
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    return _libc.ptrace


def get_regset(tid: int, note_type: int, size: int) -> bytes:
    """PTRACE_GETREGSET: the kernel's own layout of one register set of a stopped tracee.

    Only the tracer (the thread that attached) may call it; GDB's Python runs on
    GDB's main thread, which is the tracer of its native inferiors.
    """
    buf = ctypes.create_string_buffer(size)
    iov = _IoVec(ctypes.cast(buf, ctypes.c_void_p), size)
    if _ptrace()(PTRACE_GETREGSET, tid, note_type, ctypes.byref(iov)) < 0:
        err = ctypes.get_errno()
        raise CaptureError(
            f"Cannot read the registers of thread {tid}: {os.strerror(err)}. The thread must be "
            "stopped and traced by this process (a native GDB inferior in all-stop mode).")
    return buf.raw[:iov.iov_len]


def read_thread(pid: int, tid: int) -> ThreadState:
    gpregs = get_regset(tid, NT_PRSTATUS, GPREGS_SIZE)
    fpregs = get_regset(tid, NT_PRFPREG, FPREGS_SIZE)
    try:
        xstate = get_regset(tid, NT_X86_XSTATE, XSTATE_MAX_SIZE)
    except CaptureError:
        xstate = None  # a CPU without XSAVE
    return ThreadState(tid, gpregs, fpregs, xstate, thread_name(pid, tid))


def gpreg(gpregs: bytes, name: str) -> int:
    """One register from a struct user_regs_struct."""
    return struct.unpack_from("<Q", gpregs, 8 * GPREG_NAMES.index(name))[0]


GPREG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
               "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
               "fs_base", "gs_base", "ds", "es", "fs", "gs")


# ─── live processes: one snapshot ──────────────────────────────────────────────

def writer_for_pid(engine: Engine, pid: int, *, keep_bytes: bool = True) -> SnapshotWriter:
    """A writer whose recording describes process `pid` (exe, build-id, argv)."""
    try:
        exe_path = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    cmdline = [a.decode(errors="replace") for a in _read_proc(pid, "cmdline").split(b"\0")[:-1]]
    return SnapshotWriter(engine, exe_path=exe_path, build_id=build_id(f"/proc/{pid}/exe"),
                          cmdline=cmdline, keep_bytes=keep_bytes)


def snapshot_live(writer: SnapshotWriter, pid: int, *, reason: str = "manual",
                  stop_tid: int | None = None, threads: list[ThreadState] | None = None,
                  function: str | None = None, file: str | None = None,
                  line: int | None = None, signal: str | None = None,
                  note: str | None = None) -> WriteStats:
    """Snapshot a stopped live process into the writer's recording.

    threads=None reads every thread's registers with PTRACE_GETREGSET (the caller
    must be their tracer); pass ThreadState objects to supply them otherwise.
    stop_tid defaults to the main thread; pc is the stop thread's rip.
    """
    if threads is None:
        threads = [read_thread(pid, tid) for tid in thread_ids(pid)]
    stop_tid = pid if stop_tid is None else stop_tid
    stop = next((t for t in threads if t.tid == stop_tid), None)
    if stop is None:
        raise CaptureError(f"Thread {stop_tid} is not a thread of process {pid}.")
    mappings = read_maps(pid)
    info = SnapshotInfo(reason=reason, stop_tid=stop_tid, pc=gpreg(stop.gpregs, "rip"),
                        auxv=_read_proc(pid, "auxv"), mm=mm_fields(pid, mappings),
                        function=function, file=file, line=line, signal=signal, note=note)
    return writer.write(info, threads, mappings, live_chunks(pid, mappings))


# ─── outside GDB: stop a process with ptrace ─────────────────────────────────

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000  # __WALL: wait for clone threads too


class ptrace_stopped:
    """Context manager: seize and stop every thread of `pid`, detach on exit.

    For capture outside GDB (benchmarks, tools): inside the block this thread is
    the tracer, so snapshot_live(..., threads=None) can read the registers.
    Threads created while seizing are not handled (stop the process first if it
    spawns threads).
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.tids: list[int] = []

    def __enter__(self) -> "ptrace_stopped":
        try:
            for tid in thread_ids(self.pid):
                self._call(PTRACE_SEIZE, tid, "seize")
                self.tids.append(tid)
                self._call(PTRACE_INTERRUPT, tid, "interrupt")
                os.waitpid(tid, WALL)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for tid in self.tids:
            _ptrace()(PTRACE_DETACH, tid, None, None)
        self.tids = []

    @staticmethod
    def _call(request: int, tid: int, what: str) -> None:
        if _ptrace()(request, tid, None, None) < 0:
            err = ctypes.get_errno()
            raise CaptureError(f"Cannot {what} thread {tid}: {os.strerror(err)}. Please make "
                               "sure to run as root or with the ptrace capability.")
