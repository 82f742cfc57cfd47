"""The timeline of a recording: its snapshots in time order, as JSON-ready rows and as
the table `ttd timeline` prints (the command line's and the GDB plugin's)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import queries
from .models import Snapshot, Thread


def entry(snap: Snapshot, threads: list[dict] | None = None) -> dict:
    """One snapshot as the JSON timeline shows it; `threads` its recorded threads, each
    {"tid", "name"}, in the order they were recorded (the thread-group leader first)."""
    return {
        "tick": snap.tick,
        "reason": snap.reason,
        "pc": f"{snap.pc:#x}",
        "function": snap.function,
        "file": snap.file,
        "line": snap.line,
        "thread": snap.stop_tid,
        "signal": snap.signal,
        "note": snap.note,
        "threads": list(threads or []),
    }


def where(e: dict) -> str:
    text = e["function"] or "??"
    if e["file"]:
        text += f" at {e['file']}" + (f":{e['line']}" if e["line"] is not None else "")
    if e["signal"]:
        text += f" ({e['signal']})"
    if e["note"]:
        text += f"  # {e['note']}"
    return text


def format_table(entries: list[dict]) -> str:
    """TICK REASON THREAD THREADS PC WHERE, one snapshot a line (THREAD: the one that
    stopped; THREADS: how many were recorded); "No snapshots." when empty."""
    if not entries:
        return "No snapshots."
    rows = [("TICK", "REASON", "THREAD", "THREADS", "PC", "WHERE")]
    rows += [
        (str(e["tick"]), e["reason"], str(e["thread"]), str(len(e["threads"])), e["pc"], where(e))
        for e in entries
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    )


def load(engine) -> list[dict]:
    with Session(engine) as session:
        threads = _threads(session)
        return [entry(s, threads.get(s.id)) for s in queries.timeline(session)]


def _threads(session: Session) -> dict[int, list[dict]]:
    """snapshot id -> its threads ({"tid", "name"}), in one query."""
    by_snapshot: dict[int, list[dict]] = {}
    rows = session.execute(
        select(Thread.snapshot_id, Thread.tid, Thread.name).order_by(Thread.snapshot_id, Thread.id)
    )
    for snapshot_id, tid, name in rows:
        by_snapshot.setdefault(snapshot_id, []).append({"tid": tid, "name": name})
    return by_snapshot
