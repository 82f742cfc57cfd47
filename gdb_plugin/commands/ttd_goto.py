"""`ttd goto TICK`: the process as it was at TICK, as a GDB inferior to explore."""
from __future__ import annotations

import gdb

from gdb_plugin import session, state
from gdb_plugin.commands import call_at_time
from gdb_plugin.session import SessionError
from snapshotdb.errors import RecordingError

USAGE = "Usage: ttd goto [--thread TID] TICK"


def parse_args(arg: str) -> tuple[int, int | None]:
    """(tick, tid); raises ValueError with a one-line message."""
    words = gdb.string_to_argv(arg)
    tid = None
    if len(words) >= 2 and words[0] == "--thread":
        try:
            tid = int(words[1])
        except ValueError:
            raise ValueError(f"Invalid thread '{words[1]}'. {USAGE}") from None
        words = words[2:]
    if len(words) != 1:
        raise ValueError(USAGE)
    try:
        return int(words[0], 0), tid
    except ValueError:
        raise ValueError(f"Invalid tick '{words[0]}': a tick is a number. {USAGE}") from None


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
when it closes.
TID picks the thread whose registers are used (default: the one that stopped).

Examples:
  ttd goto 3
  ttd goto --thread 4242 2"""

    def __init__(self):
        super().__init__("ttd goto", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        try:
            tick, tid = parse_args(arg)
        except ValueError as exc:
            raise gdb.GdbError(str(exc)) from None
        recording = state.current_recording()
        call_at_time.watch_recording(recording)
        session.use_engine(recording.path, recording.engine)
        try:
            goto = session.goto(recording.path, tick, tid)
        except (RecordingError, SessionError) as exc:
            raise gdb.GdbError(str(exc)) from None
        for warning in goto.warnings:
            gdb.write(warning + "\n", gdb.STDERR)
        gdb.write(f"Tick {tick}: process {goto.proc.pid} as inferior {goto.inferior.num} "
                  f"(thread {goto.info.tid}).\n")
        gdb.execute("frame")


def register() -> None:
    TtdGoto()
