"""`ttd goto TICK`: the process as it was at TICK, as a GDB inferior to explore."""
from __future__ import annotations

import gdb

from gdb_plugin import args
from gdb_plugin.commands import parsed, user_errors
from gdb_plugin.report import printable


class TtdGoto(gdb.Command):
    """Go to a past tick: the recorded process as it was then, as an inferior to explore.

Usage: ttd goto [--thread TID] TICK
Rematerialize the process of the open recording at TICK and attach it as a new
inferior, selected: bt, frame, print, x, info locals and even call work on it as
on a live process (calls change it; nothing reaches the recording, and the sandbox
of "set ttd sandbox" keeps its system calls from reaching outside). It stays until
the next "ttd goto" or "ttd close"; then your own inferior is selected again.
Meanwhile "set sysroot /", "set unwindonsignal on" and "handle SIGSTOP nostop
noprint nopass" hold (the process starts in a group stop); your settings come back
when it closes. next, step, finish, continue, up, down and frame print what they
print on a live program.
TID picks the thread whose registers are used (default: the one that stopped).

Examples:
  ttd goto 3
  ttd goto --thread 4242 2"""

    def __init__(self, ctx):
        super().__init__("ttd goto", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)
        self.ctx = ctx

    def invoke(self, arg, from_tty):
        tick, tid = parsed(args.parse_goto, arg)
        users = _users_own()
        with user_errors():
            goto = self.ctx.goto(tick, tid)
        _give_back(users)
        for warning in goto.warnings:
            gdb.write(printable(warning, keep="") + "\n", gdb.STDERR)
        gdb.write(f"Tick {tick}: process {goto.proc.pid} as inferior {goto.inferior.num} "
                  f"(thread {goto.info.tid}).\n")
        gdb.execute("frame")


# Set while the goto inferior is made; the user's values come back as soon as it is
# selected, so that next, step, finish, up, down and frame print what they print on a
# live program (suppress-cli-notifications on silences their stop and frame lines) and
# kill or run ask as they do live. The inferior's close puts its own settings again.
USER_VISIBLE = ("suppress-cli-notifications", "confirm")


def _users_own() -> list[tuple[str, str]]:
    values = []
    for name in USER_VISIBLE:
        value = gdb.parameter(name)
        values.append((name, ("on" if value else "off") if isinstance(value, bool) else value))
    return values


def _give_back(values: list[tuple[str, str]]) -> None:
    for name, value in values:
        gdb.execute(f"set {name} {value}", to_string=True)


def register(ctx) -> None:
    TtdGoto(ctx)
