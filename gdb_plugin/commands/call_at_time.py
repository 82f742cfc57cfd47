"""`call-at-time TICK EXPR`: call EXPR in the process as it was at TICK, report dirtied pages."""
from __future__ import annotations

import json

import gdb

from gdb_plugin import args
from gdb_plugin.call_text import text_lines
from gdb_plugin.commands import parsed, user_errors
from gdb_plugin.report import printable


class CallAtTime(gdb.Command):
    """Call a function of the recorded process as it was at a past tick.

Usage: call-at-time [--thread TID] [--timeout S] [--tracker auto|wp-async|diff]
                    [--allow-side-effects] [--json] TICK EXPR
Rematerialize the process of the open recording at TICK (its memory, registers,
libraries), attach it as a temporary inferior and evaluate EXPR there exactly as
"call" would: any expression, several calls, casts, registers such as $rdi as
they were at TICK. The value enters the value history. Then a summary of the
pages the call wrote and those whose bytes changed (at most 20; "info
dirtied-pages" shows one in detail, --all every page written). Your own inferior
is left untouched, and your breakpoints do not stop the call (to step through a
call in the past, use "ttd goto TICK" and "call" or "break" there). The process
is kept for the next call at the same TICK, reset to the recorded state.
TID picks the thread whose registers and TLS the call uses (default: the thread
that stopped at TICK). S is a timeout in seconds (default "show ttd timeout"):
a call still running then is interrupted (SIGINT; SIGSTOP a second later if it
blocks SIGINT; SIGKILL as the last resort) and reported with where it was.
The called code runs in a sandbox: system calls that reach outside the process
(files, other processes, the network, fork, exec) fail with EPERM and are listed
after the value; what it writes to stdout and stderr is shown. A crash is
reported with its signal, faulting address and backtrace; your session goes on.
--allow-side-effects (or "set ttd sandbox off") lets the calls through.
--tracker picks how written pages are found (default "show ttd tracker"): diff
compares pages with the recording and cannot see writes that leave bytes equal.
--json prints the result as one JSON object instead.

Examples:
  call-at-time 3 list_length(head)
  call-at-time 5 (int)sqlite3_libversion_number()
  call-at-time --thread 4242 2 bump_tls(1)"""

    def __init__(self, ctx):
        super().__init__("call-at-time", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)
        self.ctx = ctx

    def invoke(self, arg, from_tty):
        opts = parsed(args.parse_call, arg)
        with user_errors():
            result = self.ctx.call(opts.tick, opts.expr, opts.tid, opts.timeout, opts.sandbox,
                                   opts.tracker)
        if opts.json:
            for warning in result.warnings:
                gdb.write(printable(warning, keep="") + "\n", gdb.STDERR)
            gdb.write(json.dumps(result.to_json()) + "\n")
            return
        if result.status == "error":
            raise gdb.GdbError(printable(result.error, keep=""))
        for stream, line in text_lines(result):
            gdb.write(line + "\n", gdb.STDERR if stream == "err" else gdb.STDOUT)
        if result.status in ("signalled", "timeout", "exited"):
            raise gdb.GdbError(printable(result.error or result.status, keep=""))


def register(ctx) -> None:
    CallAtTime(ctx)
