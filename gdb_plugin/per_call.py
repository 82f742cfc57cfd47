"""One call's share of what a kept process accumulates: its output on fds 1 and 2, the
faults the page server served and the system calls the sandbox blocked.

A process serves several calls at one tick; each call's report holds what happened
during it only. Output is bounded: of each stream the first and the last OUTPUT_KEEP
bytes, with the count of those left out between them (remat keeps no more; for a
remat that keeps everything, the same cut is made here).
Importable without GDB.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTPUT_KEEP = 1 << 20  # bytes kept at the start and at the end of each stream


@dataclass
class Output:
    """One stream's text for the report: what was kept, the bytes left out between its
    first and last part, and where in `text` they were (0 when none)."""

    text: str = ""
    left_out: int = 0
    cut: int = 0


def bounded(data: bytes, dropped: int) -> Output:
    """The Output of kept bytes `data` (the first and last OUTPUT_KEEP joined when
    `dropped` > 0); cuts `data` itself when it is longer than what is kept."""
    if len(data) > 2 * OUTPUT_KEEP:
        dropped += len(data) - 2 * OUTPUT_KEEP
        data = data[:OUTPUT_KEEP] + data[-OUTPUT_KEEP:]
    if not dropped:
        return Output(data.decode(errors="replace"))
    head = data[: min(OUTPUT_KEEP, len(data))].decode(errors="replace")
    tail = data[min(OUTPUT_KEEP, len(data)) :].decode(errors="replace")
    return Output(head + tail, dropped, len(head))


class PerCall:
    """Counts seen so far in one process; each take_* gives what is new since the last."""

    def __init__(self) -> None:
        self._out_seen = 0
        self._err_seen = 0
        self._faults_seen = {"served": 0, "bytes": 0}
        self._blocked_seen: dict[tuple, int] = {}

    def take_output(self, proc) -> tuple[Output, Output]:
        """What the call wrote to fds 1 and 2. The process is stopped (or gone), so its
        writes are complete: remat takes what the pipes still hold."""
        try:
            take = getattr(proc, "take_output", None)
            if take is not None:  # one call's output, bounded, with its dropped count
                out, err = take(timeout=1.0)
                return bounded(out.data, out.dropped), bounded(err.data, err.dropped)
            out, err = proc.drain_output(timeout=1.0)
        except Exception:  # output capture is best effort
            return Output(), Output()
        new_out, new_err = out[self._out_seen :], err[self._err_seen :]
        self._out_seen, self._err_seen = len(out), len(err)
        return bounded(new_out, 0), bounded(new_err, 0)

    def take_faults(self, stats: dict) -> dict:
        """The faults the page server served during the call: {"served", "bytes"}."""
        served = int(stats.get("faults", stats.get("served", 0)))
        nbytes = int(stats.get("bytes", 0))
        faults = {
            "served": served - self._faults_seen["served"],
            "bytes": nbytes - self._faults_seen["bytes"],
        }
        self._faults_seen = {"served": served, "bytes": nbytes}
        return faults

    def take_blocked(self, proc, stats: dict) -> tuple[list[dict], dict]:
        """The system calls the sandbox blocked during the call, [{"name", "count",
        "detail"}] in the order met, and those left out of the page server's bounded
        list, {"distinct", "calls"}."""
        take = getattr(proc, "take_blocked", None)
        if take is not None:  # the page server's share of one call
            taken = take()
            return (
                list(taken.get("blocked_syscalls", [])),
                dict(taken.get("blocked_syscalls_left_out") or {}),
            )
        now = _blocked_counts(stats.get("blocked_syscalls"))
        blocked = [
            {
                "name": name,
                "count": count - self._blocked_seen.get((name, detail), 0),
                "detail": detail,
            }
            for (name, detail), count in now.items()
            if count > self._blocked_seen.get((name, detail), 0)
        ]
        self._blocked_seen = now
        return blocked, {}


def _blocked_counts(blocked) -> dict[tuple, int]:
    """{(name, detail): count} from the page server's blocked_syscalls, a list of
    {"name", "count", "detail"} in the order met."""
    counts: dict[tuple, int] = {}
    for entry in blocked or []:
        key = (entry["name"], entry.get("detail"))
        counts[key] = counts.get(key, 0) + int(entry.get("count", 1))
    return counts
