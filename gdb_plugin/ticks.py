"""What a call at one tick needs from the recording: the layout, the registers, the
executable and its libraries (TickInfo), and the recorded bytes of pages.

A snapshot never changes once written, so each TickInfo is read once per open
recording (TickCache, kept by the Context until the recording closes).
Importable without GDB; SQLAlchemy is imported when a tick is first read.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from gdb_plugin import report

PROGRAM_SQL = "SELECT exe_path, build_id FROM recording ORDER BY id LIMIT 1"


@dataclass
class TickInfo:
    """The recording at one tick, as the report and the call session need it."""

    recording: object = field(repr=False)  # snapshotdb.db.Recording, read-only
    tick: int
    tid: int
    exe_path: str
    build_id: str | None
    regions: list[report.Region]
    rsp: int
    fs_base: int
    libraries: list[tuple[int, str]] = field(default_factory=list)  # (load address, path)
    file_warnings: list[str] | None = None  # build-id checks, made once per tick
    layout: object = field(default=None, repr=False)  # remat's TickLayout (replay.layout_of)
    rows: tuple | None = field(default=None, repr=False)  # remat.layout.tick_rows(), for it

    @property
    def db_path(self) -> str:
        """What the page server opens: the SQLite file (or the URL, which it refuses)."""
        return self.recording.path or self.recording.name


class TickCache:
    """TickInfo per (tick, requested thread) of one open recording. A sweep tells the
    ticks it will visit (plan): their rows are then read READ_AHEAD ticks at a time."""

    READ_AHEAD = 64

    def __init__(self, recording) -> None:
        self.recording = recording
        self._infos: dict[tuple[int, int | None], TickInfo] = {}
        self._planned: list[int] = []
        self._rows: dict[int, tuple] = {}  # read ahead, not yet made a TickInfo
        self._program: tuple[str, str | None] | None = None

    def get(self, tick: int, tid: int | None) -> TickInfo:
        """Raises snapshotdb's errors (no such tick or thread), one line each."""
        from gdb_plugin.remat.layout import tick_rows

        key = (tick, tid)
        if key not in self._infos:
            rows = self._rows.pop(tick, None) or self._read_ahead(tick)
            if rows is None:  # raises first when there is no such tick (or no tick at all)
                rows = tick_rows(self.recording, tick)
            if self._program is None:
                self._program = _program(self.recording)
            self._infos[key] = read_tick_info(self.recording, tick, tid, rows, self._program)
        return self._infos[key]

    def plan(self, ticks: list[int]) -> None:
        """The ticks about to be visited in this order (a sweep's)."""
        self._planned = list(ticks)
        self._rows.clear()

    def _read_ahead(self, tick: int) -> tuple | None:
        """tick's rows, read with the next planned ticks' when it is planned."""
        if tick not in self._planned:
            return None
        from gdb_plugin.remat.layout import span_rows

        at = self._planned.index(tick)
        upcoming = self._planned[at : at + self.READ_AHEAD]
        del self._planned[: at + 1]
        span = span_rows(self.recording, min(upcoming), max(upcoming))
        self._rows = {t: span[t] for t in upcoming[1:] if t in span}
        return span.get(tick)

    def clear(self) -> None:
        self._infos.clear()
        self._rows.clear()
        self._planned = []


def read_tick_info(
    recording, tick: int, tid: int | None, read: tuple | None = None, program=None
) -> TickInfo:
    """Layout, registers and executable at `tick` (thread `tid`, None: the one that stopped).
    Plain rows (`read`: remat.layout.tick_rows(), when read already), kept for the layout a
    move reads (replay.layout_of): one read of the tick. program: _program(), when known."""
    from gdb_plugin.remat.layout import tick_rows
    from snapshotdb.regs import gpreg

    read = read or tick_rows(recording, tick)
    snap, maps, threads = read
    thread = _thread_at(tick, threads, snap.stop_tid if tid is None else tid)
    exe_path, build_id = program or _program(recording)
    libraries = {
        (m.start, m.path)
        for m in maps
        if m.offset == 0 and m.path.startswith("/") and m.path != exe_path
    }
    return TickInfo(
        recording=recording,
        tick=tick,
        tid=thread.tid,
        exe_path=exe_path,
        build_id=build_id,
        regions=report.regions_of(maps),
        rsp=gpreg(thread.gpregs, "rsp"),
        fs_base=gpreg(thread.gpregs, "fs_base"),
        libraries=sorted(libraries),
        rows=read,
    )


def _thread_at(tick: int, threads, want: int):
    """The row of thread `want` among a tick's (ThreadNotFound naming them otherwise)."""
    from snapshotdb.errors import ThreadNotFound

    for thread in threads:
        if thread.tid == want:
            return thread
    tids = ", ".join(str(t.tid) for t in threads)
    raise ThreadNotFound(f"No thread {want} at tick {tick}: threads are {tids}.")


def _program(recording) -> tuple[str, str | None]:
    """The recorded executable's path and build-id."""
    from sqlalchemy import text

    from snapshotdb import queries

    with recording.session() as session:
        row = session.execute(text(PROGRAM_SQL)).first()
        if row is None:
            queries.recording(session)  # raises: the recording is empty
        return row.exe_path, row.build_id


@contextlib.contextmanager
def page_reader(recording, tick: int):
    """A reader of recorded pages at `tick`: .page(rec_addr) -> 4096 verified bytes
    (snapshotdb's PageReader: one compiled lookup on one cursor), for a `with` block; a
    server lost meanwhile is snapshotdb's ServerUnavailable, one line."""
    from snapshotdb.reader import PageReader

    with recording.server_errors(), PageReader(recording.engine, tick) as reader:
        yield reader
