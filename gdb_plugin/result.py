"""CallResult: what one call at a tick gave (pure data, no GDB): how it ended, its value,
the pages it dirtied, its output, what the sandbox blocked, timings and notes.

to_json() is the `ttd call --json` object of DESIGN.md (report.report_json);
gdb_plugin/call_text.py gives its text form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gdb_plugin import report


@dataclass
class CallResult:
    tick: int
    expr: str
    status: str  # returned | signalled | exited | timeout | error
    value: str
    history: str  # "$N = value" line as GDB printed it, or "" for void
    signal: str | None
    error: str | None
    pages: list[report.DirtiedPage]
    stdout: str
    stderr: str
    timings_ms: dict
    faults: dict
    warnings: list[str] = field(default_factory=list)
    blocked_syscalls: list[dict] = field(default_factory=list)  # [{"name", "count", "detail"}]
    fault_address: int | None = None  # si_addr of a crash
    backtrace: list[str] = field(default_factory=list)  # at a crash or a timeout
    exit_code: int | None = None  # status exited
    tracker: str = "wp-async"
    notes: list[str] = field(default_factory=list)
    # left out to keep the report bounded: bytes of output between the first and the last
    # MiB (the *_cut: where in the kept text), blocked calls past the server's list
    stdout_left_out: int = 0
    stderr_left_out: int = 0
    stdout_cut: int = 0
    stderr_cut: int = 0
    blocked_left_out: dict = field(default_factory=dict)  # {"distinct", "calls"}

    def to_json(self) -> dict:
        return report.report_json(
            tick=self.tick,
            expr=self.expr,
            status=self.status,
            value=self.value,
            signal=self.signal,
            pages=self.pages,
            stdout=self.stdout,
            stderr=self.stderr,
            blocked_syscalls=self.blocked_syscalls,
            error=self.error,
            timings_ms=self.timings_ms,
            faults=self.faults,
            fault_address=self.fault_address,
            backtrace=self.backtrace,
            exit_code=self.exit_code,
            tracker=self.tracker,
            notes=self.notes,
            stdout_left_out=self.stdout_left_out,
            stderr_left_out=self.stderr_left_out,
            blocked_left_out=self.blocked_left_out,
        )
