"""Quitting GDB without a question about ttd's own processes.

GDB asks "A debugging session is active. Inferior N [process P] will be detached. Quit
anyway?" for every live inferior, and the temporary inferiors of ttd's call sessions are
live ones the user never started. GDB runs a user-defined `hook-quit` before it asks: ours
ends ttd's sessions there, so GDB has nothing of ttd's left to ask about. When one of the
user's own inferiors is live, the question comes anyway (the answer may be no), and ttd's
sessions are left as they are: GDB's exit ends them (Context.exiting).

    register(ctx)   the command, and `hook-quit` defined to run it, unless the user has
                    a hook-quit of their own (theirs is kept; the question then stays)
"""

from __future__ import annotations

import gdb

COMMAND = "ttd-before-quit"


class BeforeQuit(gdb.Command):
    """End ttd's temporary inferiors before GDB quits, so GDB asks nothing about them.

Usage: ttd-before-quit
Run by the hook-quit that ttd defines (unless you have your own hook-quit). When one
of your own inferiors has a process, nothing is ended: GDB asks as usual."""

    def __init__(self, ctx):
        super().__init__(COMMAND, gdb.COMMAND_NONE, gdb.COMPLETE_NONE)
        self.ctx = ctx

    def invoke(self, arg, from_tty):
        sessions = self.ctx.sessions
        if not _users_live(sessions.inferior_nums()):
            sessions.kill_all()


def _users_live(ours: set[int]) -> bool:
    """Whether an inferior that is not one of ttd's has a process."""
    return any(inf.pid for inf in gdb.inferiors() if inf.num not in ours)


def _has_user_hook() -> bool:
    try:
        return bool(gdb.execute("show user hook-quit", to_string=True).strip())
    except gdb.error:  # "Undefined command": none defined
        return False


def register(ctx) -> None:
    BeforeQuit(ctx)
    if not _has_user_hook():
        gdb.execute(f"define hook-quit\n{COMMAND}\nend", to_string=True)
