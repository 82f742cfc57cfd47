"""Queries on a recording: timeline, the snapshot (layout, threads) at a tick, pages at a tick.

Functions take a Session and return plain results; callers own the session.
"""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from .errors import SnapshotNotFound, ThreadNotFound
from .models import PageContent, PageVersion, Recording, Snapshot, Thread
from .pages import ZERO_PAGE, decode


def recording(session: Session) -> Recording:
    rec = session.scalars(select(Recording).order_by(Recording.id)).first()
    if rec is None:
        raise SnapshotNotFound("The recording is empty: it has no snapshots yet.")
    return rec


def timeline(session: Session) -> list[Snapshot]:
    return list(session.scalars(select(Snapshot).order_by(Snapshot.tick)))


def tick_range(session: Session) -> tuple[int, int] | None:
    lo, hi = session.execute(select(func.min(Snapshot.tick), func.max(Snapshot.tick))).one()
    return None if lo is None else (lo, hi)


def snapshot_at(session: Session, tick: int) -> Snapshot:
    """The snapshot at exactly `tick`, with its threads and mappings loaded."""
    snap = session.scalars(select(Snapshot).where(Snapshot.tick == tick)).first()
    if snap is None:
        span = tick_range(session)
        if span is None:
            raise SnapshotNotFound(f"No tick {tick}: the recording has no snapshots.")
        raise SnapshotNotFound(f"No tick {tick}: valid ticks are {span[0]} to {span[1]}.")
    return snap


def thread_at(snap: Snapshot, tid: int | None) -> Thread:
    """The thread `tid` of a snapshot; None means the thread that stopped."""
    want = snap.stop_tid if tid is None else tid
    for thread in snap.threads:
        if thread.tid == want:
            return thread
    tids = ", ".join(str(t.tid) for t in snap.threads)
    raise ThreadNotFound(f"No thread {want} at tick {snap.tick}: threads are {tids}.")


def threads_leader_first(snap: Snapshot) -> list[Thread]:
    """The threads of a snapshot, the thread-group leader first, then the others by id
    (the order they were most likely created in: GDB numbers them so). The leader is the
    first thread recorded (a live capture lists it first), or for a core, whose first
    thread is the one that stopped, the lowest id."""
    threads = list(snap.threads)
    if not threads:
        return threads
    leader = min(threads, key=lambda t: t.tid) if snap.reason == "core" else threads[0]
    return [leader] + sorted((t for t in threads if t is not leader), key=lambda t: t.tid)


def _latest_versions(tick: int):
    """Subquery: for each address, the first_tick of its version in force at `tick`."""
    return (
        select(PageVersion.address, func.max(PageVersion.first_tick).label("first_tick"))
        .where(PageVersion.first_tick <= tick)
        .group_by(PageVersion.address)
        .subquery()
    )


def page_map(session: Session, tick: int) -> dict[int, int]:
    """The whole page map at `tick` in one query: address -> page_content id.

    Pages that read as zeros at `tick` are left out.
    """
    latest = _latest_versions(tick)
    rows = session.execute(
        select(PageVersion.address, PageVersion.content_id)
        .join(
            latest,
            and_(
                PageVersion.address == latest.c.address,
                PageVersion.first_tick == latest.c.first_tick,
            ),
        )
        .where(PageVersion.content_id.is_not(None))
    )
    return {address: content_id for address, content_id in rows}


def page_content_id(session: Session, rec_addr: int, tick: int) -> int | None:
    return session.scalar(
        select(PageVersion.content_id)
        .where(PageVersion.address == rec_addr, PageVersion.first_tick <= tick)
        .order_by(PageVersion.first_tick.desc())
        .limit(1)
    )


def content(session: Session, content_id: int, *, where: str = "") -> bytes:
    row = session.get(PageContent, content_id)
    return decode(row.codec, row.data, row.digest, where=where)


def page_at(session: Session, rec_addr: int, tick: int) -> bytes:
    """The 4096 bytes of the page at `rec_addr` (page-aligned) as they were at `tick`."""
    content_id = page_content_id(session, rec_addr, tick)
    if content_id is None:
        return ZERO_PAGE
    return content(session, content_id, where=f"tick {tick}, address {rec_addr:#x}")


def read_memory(session: Session, rec_addr: int, length: int, tick: int) -> bytes:
    """Bytes [rec_addr, rec_addr+length) at `tick`, pages assembled from the store."""
    out = bytearray()
    page = rec_addr & ~0xFFF
    while page < rec_addr + length:
        out += page_at(session, page, tick)
        page += 0x1000
    skip = rec_addr & 0xFFF
    return bytes(out[skip : skip + length])
