"""What a call at one tick needs from the recording: the layout, the registers, the
executable and its libraries (TickInfo), and the recorded bytes of pages.

A snapshot never changes once written, so each TickInfo is read once per open
recording (TickCache, kept by the Context until the recording closes).
Importable without GDB; SQLAlchemy is imported when a tick is first read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gdb_plugin import report


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

    @property
    def db_path(self) -> str:
        """What the page server opens: the SQLite file (or the URL, which it refuses)."""
        return self.recording.path or self.recording.name


class TickCache:
    """TickInfo per (tick, requested thread) of one open recording."""

    def __init__(self, recording) -> None:
        self.recording = recording
        self._infos: dict[tuple[int, int | None], TickInfo] = {}

    def get(self, tick: int, tid: int | None) -> TickInfo:
        """Raises snapshotdb's errors (no such tick or thread), one line each."""
        key = (tick, tid)
        if key not in self._infos:
            self._infos[key] = read_tick_info(self.recording, tick, tid)
        return self._infos[key]

    def clear(self) -> None:
        self._infos.clear()


def read_tick_info(recording, tick: int, tid: int | None) -> TickInfo:
    """Layout, registers and executable at `tick` (thread `tid`, None: the one that stopped)."""
    from snapshotdb import queries
    from snapshotdb.regs import gpreg

    with recording.session() as session:
        snap = queries.snapshot_at(session, tick)
        thread = queries.thread_at(snap, tid)
        rec = queries.recording(session)
        libraries = [
            (m.start, m.path)
            for m in snap.mappings
            if m.offset == 0 and m.path.startswith("/") and m.path != rec.exe_path
        ]
        return TickInfo(
            recording=recording,
            tick=tick,
            tid=thread.tid,
            exe_path=rec.exe_path,
            build_id=rec.build_id,
            regions=report.regions_of(snap.mappings),
            rsp=gpreg(thread.gpregs, "rsp"),
            fs_base=gpreg(thread.gpregs, "fs_base"),
            libraries=sorted(set(libraries)),
        )


def page_reader(recording, tick: int):
    """A reader of recorded pages at `tick`: .page(rec_addr) -> 4096 verified bytes;
    a context manager (snapshotdb's PageReader: one compiled lookup on one cursor)."""
    from snapshotdb.reader import PageReader

    return PageReader(recording.engine, tick)
