"""What the rematerialized process is made of at one tick, read from the recording once:
its memory map (with room for the stack to grow), the mm fields, the auxv and every
thread with its registers, the thread-group leader first.

    layout = read_layout(recording, tick)
    layout.regions        ((start, end, prot), ...) sorted: what the process maps
    layout.stack_growth   (lo, hi) below the recorded [stack], or None
    layout.threads        (RecordedThread(tid, name, gpregs, fpregs, xstate), ...)
    layout.brk            the program break
    layout.same_process_as(other)   whether a process at `other` can be moved here:
                          the same threads (ids and names), auxv and mm fields but brk

Does not import gdb.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from snapshotdb import queries
from snapshotdb.regs import FPREGS_SIZE, GPREGS_SIZE

from . import spec
from .errors import RematerializeError

PAGE_SIZE = 4096
VSYSCALL_START = 0xFFFFFFFFFF600000  # the kernel's [vsyscall] page: not restorable, skipped
STACK_MAX = 8 << 20  # a live stack's usual limit (ulimit -s 8192)
PROT = {"r": 1, "w": 2, "x": 4}


def prot_of(perms: str) -> int:
    return sum(PROT[c] for c in perms[:3] if c in PROT)


@dataclass(frozen=True)
class RecordedThread:
    tid: int
    name: str | None
    gpregs: bytes
    fpregs: bytes
    xstate: bytes  # b"" when not recorded


@dataclass(frozen=True)
class TickLayout:
    tick: int
    regions: tuple[tuple[int, int, int], ...]
    stack_growth: tuple[int, int] | None
    mm: tuple[int, ...]  # spec.MM_FIELDS order
    auxv: bytes
    threads: tuple[RecordedThread, ...]  # the leader first

    @property
    def brk(self) -> int:
        return self.mm[spec.MM_FIELDS.index("brk")]

    def thread_names(self) -> tuple[tuple[int, str | None], ...]:
        return tuple((t.tid, t.name) for t in self.threads)

    def same_process_as(self, other: TickLayout) -> bool:
        """A process at `other` can become this one by a move: the same threads (a thread
        cannot be made or ended from outside, nor renamed), auxv and mm fields; only the
        memory, its map, the break and the registers differ."""
        brk = spec.MM_FIELDS.index("brk")
        return (
            self.thread_names() == other.thread_names()
            and self.auxv == other.auxv
            and self.mm[:brk] + self.mm[brk + 1 :] == other.mm[:brk] + other.mm[brk + 1 :]
        )


def _stack_growth(maps, start_stack: int) -> tuple[int, int] | None:
    """Room below the recorded [stack] for it to grow into: down to STACK_MAX in all,
    leaving a guard page above the next mapping below. None when there is none."""
    stack = next((m for m in maps if m.path == "[stack]"), None) or next(
        (m for m in maps if m.start <= start_stack < m.end), None
    )
    if stack is None:
        return None
    below = max((m.end for m in maps if m.end <= stack.start), default=0)
    lo = max(stack.end - STACK_MAX, below + PAGE_SIZE, PAGE_SIZE * 16)
    lo = (lo + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    return (lo, stack.start) if lo < stack.start else None


# A sweep reads one layout per tick: plain SQL rows (the ORM's objects and Core's
# statement compiling cost 0.3 ms a tick; these 0.1). The tables of snapshotdb/models.py.
_SNAPSHOT = text(
    f"SELECT id, reason, stop_tid, auxv, {', '.join(spec.MM_FIELDS)} FROM snapshot "
    "WHERE tick = :tick"
)
_MAPPINGS = text(
    'SELECT start, "end", perms, "offset", path FROM mapping WHERE snapshot_id = :id ORDER BY start'
)
_THREADS = text(
    "SELECT tid, name, gpregs, fpregs, xstate FROM thread WHERE snapshot_id = :id ORDER BY id"
)


_SPAN_SNAPSHOTS = text(
    f"SELECT id, tick, reason, stop_tid, auxv, {', '.join(spec.MM_FIELDS)} FROM snapshot "
    "WHERE tick BETWEEN :lo AND :hi"
)
_SPAN_MAPPINGS = text(
    'SELECT m.snapshot_id, m.start, m."end", m.perms, m."offset", m.path FROM mapping m '
    "JOIN snapshot s ON s.id = m.snapshot_id WHERE s.tick BETWEEN :lo AND :hi "
    "ORDER BY m.snapshot_id, m.start"
)
_SPAN_THREADS = text(
    "SELECT t.snapshot_id, t.tid, t.name, t.gpregs, t.fpregs, t.xstate FROM thread t "
    "JOIN snapshot s ON s.id = t.snapshot_id WHERE s.tick BETWEEN :lo AND :hi "
    "ORDER BY t.snapshot_id, t.id"
)


def span_rows(recording, lo: int, hi: int) -> dict:
    """tick_rows() of every tick from lo to hi, in three statements: {tick: rows}. What
    a sweep reads ahead (a tick's own three statements cost more than its rows)."""
    with recording.session() as session:
        snaps = session.execute(_SPAN_SNAPSHOTS, {"lo": lo, "hi": hi}).all()
        maps = _by_snapshot(session.execute(_SPAN_MAPPINGS, {"lo": lo, "hi": hi}))
        threads = _by_snapshot(session.execute(_SPAN_THREADS, {"lo": lo, "hi": hi}))
    return {s.tick: (s, maps.get(s.id, []), threads.get(s.id, [])) for s in snaps}


def _by_snapshot(rows) -> dict:
    grouped: dict = {}
    for row in rows:
        grouped.setdefault(row.snapshot_id, []).append(row)
    return grouped


def tick_rows(recording, tick: int):
    """The snapshot's row at `tick` (SnapshotNotFound when there is none), its mappings
    and its threads: plain rows, read once for the TickInfo and the layout both."""
    with recording.session() as session:
        snap = session.execute(_SNAPSHOT, {"tick": tick}).first()
        if snap is None:
            queries.snapshot_at(session, tick)  # raises, saying which ticks there are
        maps = session.execute(_MAPPINGS, {"id": snap.id}).all()
        threads = session.execute(_THREADS, {"id": snap.id}).all()
    return snap, maps, threads


def _threads_leader_first(rows, reason: str) -> list:
    """As snapshotdb.queries.threads_leader_first, of (tid, ...) rows in id order."""
    if not rows:
        return []
    leader = min(rows, key=lambda t: t.tid) if reason == "core" else rows[0]
    return [leader] + sorted((t for t in rows if t is not leader), key=lambda t: t.tid)


def read_layout(recording, tick: int, read=None) -> TickLayout:
    """The layout at `tick` of an open snapshotdb Recording (RecordingError when there is
    no such tick, RematerializeError when its registers are malformed); `read`: what
    tick_rows() gave, when already read."""
    snap, maps, rows = read or tick_rows(recording, tick)
    maps = [m for m in maps if m.start < VSYSCALL_START and m.path != "[vsyscall]"]
    growth = _stack_growth(maps, snap.start_stack)
    regions = sorted(
        [(m.start, m.end, prot_of(m.perms)) for m in maps]
        + ([(*growth, PROT["r"] | PROT["w"])] if growth else [])
    )
    threads = tuple(
        RecordedThread(
            t.tid, t.name, bytes(t.gpregs), bytes(t.fpregs), bytes(t.xstate) if t.xstate else b""
        )
        for t in _threads_leader_first(rows, snap.reason)
    )
    mm = tuple(getattr(snap, name) for name in spec.MM_FIELDS)
    auxv = bytes(snap.auxv)
    for t in threads:
        if len(t.gpregs) != GPREGS_SIZE or len(t.fpregs) != FPREGS_SIZE:
            raise RematerializeError(
                f"Corrupt recording: thread {t.tid} at tick {tick} has {len(t.gpregs)} bytes of "
                f"general registers and {len(t.fpregs)} of FP registers "
                f"({GPREGS_SIZE}/{FPREGS_SIZE} expected)."
            )
    if not threads:
        raise RematerializeError(f"Corrupt recording: tick {tick} has no threads.")
    return TickLayout(tick, tuple(regions), growth, mm, auxv, threads)


def pack_maps(layout: TickLayout) -> bytes:
    return b"".join(spec.pack_map(start, end, prot) for start, end, prot in layout.regions)
