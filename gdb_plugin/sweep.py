"""A sweep: one expression called at each of many ticks, one row per tick (no GDB here).

Each tick's call goes through the one per-tick path, Context.call (the process at that
tick, the call, its report), so it starts from that tick's recorded state: what the
call at tick 4 wrote is never seen at tick 5. A tick whose call could not be made
(the process did not start, a page was corrupt) is a row with status "error", and the
sweep goes on.

    rows = sweep(call, ticks, expr, changes_only)   call(tick) -> CallResult
    table(rows), csv_rows(rows), [row.json for row in rows]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from gdb_plugin import report
from gdb_plugin.errors import TtdError
from gdb_plugin.report import printable

# how the table names a call that did not return
STATUS_WORDS = {
    "returned": "returned",
    "signalled": "crashed",
    "timeout": "timed out",
    "exited": "exited",
    "error": "error",
}
PROGRESS_MARK = "ttd-sweep-progress"  # ttd sweep --progress: "MARK I N TICK" before each call
CSV_HEADER = ("tick", "status", "value", "pages_changed", "error")


@dataclass
class Row:
    """One tick of a sweep: how its call ended, the value, the pages it changed, why it
    did not return (one line), and the `ttd call --json` object."""

    tick: int
    status: str
    value: str
    pages_changed: int
    reason: str | None
    json: dict
    warnings: list[str] = field(default_factory=list)  # the call's (missing files, ...)

    @property
    def key(self) -> tuple:
        """What --changes compares with the previous tick's."""
        return self.status, self.value, self.reason

    def cell(self) -> str:
        """The VALUE column: the value, or the status and its one-line reason."""
        if self.status == "returned":
            return printable(self.value, keep="") or "(void)"
        word = STATUS_WORDS.get(self.status, self.status)
        return printable(f"{word}: {self.reason}" if self.reason else word, keep="")


def failed_json(tick: int, expr: str, message: str) -> dict:
    """The `ttd call --json` object of a call that could not be made (status error)."""
    return report.report_json(
        tick=tick,
        expr=expr,
        status="error",
        value="",
        signal=None,
        pages=[],
        stdout="",
        stderr="",
        blocked_syscalls=[],
        error=message,
        timings_ms={},
        faults={},
        tracker=None,
    )


def row_of(obj: dict) -> Row:
    """The Row of a `ttd call --json` object."""
    reason = obj["error"]
    if obj["status"] == "signalled" and not reason:
        reason = obj["signal"]
    reason = reason.splitlines()[0] if reason else None
    changed = sum(1 for p in obj["dirtied_pages"] if p["changed"])
    return Row(obj["tick"], obj["status"], obj["value"], changed, reason, obj)


def one_tick(call: Callable, tick: int, expr: str) -> Row:
    """The Row of the call at `tick`; an error of the library is the row's reason."""
    from snapshotdb.errors import RecordingError

    try:
        result = call(tick)
    except (TtdError, RecordingError) as exc:
        return row_of(failed_json(tick, expr, str(exc)))
    row = row_of(result.to_json())
    row.warnings = list(result.warnings)
    return row


def sweep(
    call: Callable,
    ticks: list[int],
    expr: str,
    changes_only: bool = False,
    progress: Callable | None = None,
) -> Iterator[Row]:
    """The rows of EXPR at each tick in order; changes_only: only the ticks whose value
    (or status) differs from the previous tick's, the first always. progress(i, tick)
    is told before each call. A call stopped by SIGINT that no timeout sent is the
    user's Ctrl-C (it reaches the called process): its row, then KeyboardInterrupt."""
    previous = None
    for i, tick in enumerate(ticks):
        if progress is not None:
            progress(i, tick)
        row = one_tick(call, tick, expr)
        if not changes_only or row.key != previous:
            yield row
        previous = row.key
        if row.status == "signalled" and row.json["signal"] == "SIGINT":
            raise KeyboardInterrupt


def table(rows: list[Row]) -> list[str]:
    """TICK | VALUE | PAGES CHANGED, aligned; no rows: none."""
    if not rows:
        return []
    cells = [("TICK", "VALUE", "PAGES CHANGED")]
    cells += [(str(r.tick), r.cell(), str(r.pages_changed)) for r in rows]
    tick_w = max(len(c[0]) for c in cells)
    value_w = max(len(c[1]) for c in cells)
    return [f"{t:<{tick_w}}  {v:<{value_w}}  {p}".rstrip() for t, v, p in cells]


def summary(rows: list[Row], swept: int, changes_only: bool) -> str:
    """'Swept 50 ticks: 49 returned, 1 crashed.', or for --changes at how many ticks
    the value changed."""
    plural = "s" if swept != 1 else ""
    if changes_only:
        return f"Swept {swept} tick{plural}: the value changed at {len(rows)}."
    counts: dict[str, int] = {}
    for row in rows:
        word = STATUS_WORDS.get(row.status, row.status)
        counts[word] = counts.get(word, 0) + 1
    return f"Swept {swept} tick{plural}: " + ", ".join(f"{n} {w}" for w, n in counts.items()) + "."


def csv_rows(rows: list[Row]) -> list[tuple]:
    """CSV_HEADER's columns of each row (the value as GDB printed it)."""
    return [(r.tick, r.status, r.value, r.pages_changed, r.reason or "") for r in rows]


def numeric(value: str) -> float | None:
    """The number GDB printed (42, -1.5, 0x10, 'A' as 65 'A'), or None."""
    text = value.strip().split(" ", 1)[0]
    try:
        return float(int(text, 0))
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def recorded_ticks(recording) -> list[int]:
    """Every tick of the recording, in order."""
    from sqlalchemy import select

    from snapshotdb.models import Snapshot

    with recording.session() as session:
        return list(session.scalars(select(Snapshot.tick).order_by(Snapshot.tick)))
