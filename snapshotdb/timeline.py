"""The timeline of a recording: its snapshots in time order, as JSON-ready rows and as
the table `ttd timeline` prints (the command line's and the GDB plugin's)."""
from __future__ import annotations

from sqlalchemy.orm import Session

from . import queries
from .models import Snapshot


def entry(snap: Snapshot) -> dict:
    """One snapshot as the JSON timeline shows it."""
    return {"tick": snap.tick, "reason": snap.reason, "pc": f"{snap.pc:#x}",
            "function": snap.function, "file": snap.file, "line": snap.line,
            "thread": snap.stop_tid, "signal": snap.signal, "note": snap.note}


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
    """TICK REASON THREAD PC WHERE, one snapshot a line; "No snapshots." when empty."""
    if not entries:
        return "No snapshots."
    rows = [("TICK", "REASON", "THREAD", "PC", "WHERE")]
    rows += [(str(e["tick"]), e["reason"], str(e["thread"]), e["pc"], where(e)) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True))
                     + "  " + r[4]
                     for r in rows)


def load(engine) -> list[dict]:
    with Session(engine) as session:
        return [entry(s) for s in queries.timeline(session)]
