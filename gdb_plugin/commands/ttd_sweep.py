"""`ttd sweep [--ticks SPEC] [--changes] [--thread TID] [--json] EXPR`: EXPR at every tick."""
from __future__ import annotations

import json
import os

import gdb

from gdb_plugin import args, sweep, tick_spec
from gdb_plugin.commands import parsed, user_errors
from gdb_plugin.report import printable


class TtdSweep(gdb.Command):
    """Call an expression at every tick of the recording: how a value went through time.

Usage: ttd sweep [--ticks SPEC] [--changes] [--thread TID] [--json] [--progress] EXPR
For each tick, EXPR is called as "call-at-time TICK EXPR" calls it, each call
starting from that tick's recorded state (what the call at one tick wrote is never
seen at the next). Prints a table TICK | VALUE | PAGES CHANGED, one row per tick;
a call that did not return shows its status (crashed, timed out, exited, error)
and why, and the sweep goes on. On a terminal a progress line shows the tick;
Ctrl-C ends the sweep, with the rows of the ticks swept so far.
SPEC: 3, 3-40, 3- (to the last tick), 1,5,9 (items may be ranges), or all (the
default). --changes prints only the ticks whose value differs from the previous
tick's: when did this change? TID: the thread whose registers and TLS each call
uses. --json prints a JSON list instead, one call-at-time --json object per tick.
--progress prints a line "ttd-sweep-progress I N TICK" before each call, for front
ends that show their own progress.
The settings of "set ttd" (sandbox, timeout, tracker) hold for every call.

Examples:
  ttd sweep list_length(head)
  ttd sweep --changes --ticks 10- account_total(bank)"""

    def __init__(self, ctx):
        super().__init__("ttd sweep", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)
        self.ctx = ctx

    def invoke(self, arg, from_tty):
        opts = parsed(args.parse_sweep, arg)
        with user_errors():
            recording = self.ctx.require_recording()
            ticks = parsed(lambda spec: tick_spec.ticks(spec, sweep.recorded_ticks(recording)),
                           opts.ticks)
        self.ctx.ticks.plan(ticks)  # their rows read ahead, many ticks a statement
        progress = None
        if from_tty and _terminal():
            progress = Progress(len(ticks))
        elif opts.progress:
            progress = ProgressLines(len(ticks))
        rows: list[sweep.Row] = []
        visited = [0]  # ticks whose call was made or begun

        def told(i: int, tick: int) -> None:
            visited[0] = i + 1
            if progress is not None:
                progress(i, tick)

        interrupted = False
        try:
            for row in sweep.sweep(lambda tick: self.ctx.call(tick, opts.expr, opts.tid),
                                   ticks, opts.expr, opts.changes, told):
                rows.append(row)
        except KeyboardInterrupt:  # Ctrl-C: what was swept is shown all the same
            interrupted = True
        finally:
            if progress is not None:
                progress.clear()
        self._show(rows, opts, visited[0])
        if interrupted:
            at = f" at tick {ticks[visited[0] - 1]}" if visited[0] else ""
            raise gdb.GdbError(f"Sweep interrupted (Ctrl-C){at}: {visited[0]} of {len(ticks)} "
                               "ticks swept.")

    @staticmethod
    def _show(rows: list[sweep.Row], opts, swept: int) -> None:
        if opts.json:
            gdb.write(json.dumps([row.json for row in rows]) + "\n")
            return
        for warning in _warnings(rows):
            gdb.write(printable(warning, keep="") + "\n", gdb.STDERR)
        for line in sweep.table(rows):
            gdb.write(line + "\n")
        gdb.write(sweep.summary(rows, swept, opts.changes) + "\n")


class Progress:
    """'Sweeping: tick 12 (3/50)' on one line of the terminal, rewritten at each tick."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.width = 0

    def __call__(self, i: int, tick: int) -> None:
        text = f"Sweeping: tick {tick} ({i + 1}/{self.total})"
        self.width = max(self.width, len(text))
        gdb.write("\r" + text.ljust(self.width), gdb.STDERR)
        gdb.flush(gdb.STDERR)

    def clear(self) -> None:
        if self.width:
            gdb.write("\r" + " " * self.width + "\r", gdb.STDERR)
            gdb.flush(gdb.STDERR)


class ProgressLines(Progress):
    """sweep.PROGRESS_MARK I N TICK on a line of its own before each call (--progress)."""

    def __call__(self, i: int, tick: int) -> None:
        gdb.write(f"{sweep.PROGRESS_MARK} {i + 1} {self.total} {tick}\n")
        gdb.flush()

    def clear(self) -> None:
        pass


def _terminal() -> bool:
    """GDB's own output is a terminal (not MI, not a pipe)."""
    try:
        return os.isatty(1) and os.isatty(2)
    except OSError:
        return False


def _warnings(rows: list[sweep.Row]) -> list[str]:
    """Each distinct warning of the calls (missing files, the sandbox off), once."""
    seen: list[str] = []
    for row in rows:
        for warning in row.warnings:
            if warning not in seen:
                seen.append(warning)
    return seen


def register(ctx) -> None:
    TtdSweep(ctx)
