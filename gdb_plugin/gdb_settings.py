"""GDB's own settings, changed for a while and put back exactly as they were.

A temporary inferior (gdb_plugin/inferior.py) needs some of GDB's global settings
changed while it is attached or called (see GdbSettings); the user's values come back
afterwards, in reverse order.
"""

from __future__ import annotations

import gdb


def signal_handling(name: str) -> str:
    """'stop print pass' style words for signal NAME as GDB handles it now."""
    out = gdb.execute(f"info signals {name}", to_string=True)
    for line in out.splitlines():
        if line.startswith(name + " "):
            flags = line.split()[1:4]
            words = [
                ("stop" if flags[0] == "Yes" else "nostop"),
                ("print" if flags[1] == "Yes" else "noprint"),
                ("pass" if flags[2] == "Yes" else "nopass"),
            ]
            return " ".join(words)
    return "stop print pass"


class GdbSettings:
    """Global GDB settings changed for a while, and put back exactly as they were.

    While a call runs (CALL_SETTINGS, STEP_SETTINGS):
    - unwindonsignal on: a call that crashes unwinds instead of leaving GDB in it;
    - SIGSTOP nostop/nopass (SWALLOW_SIGSTOP): the rematerialized process is in a group
      stop; after gdbserver attaches, the first resume reports a SIGSTOP that must be
      swallowed;
    - SIGINT stop/nopass (STOP_ON_SIGINT, GDB's default): the timeout's first signal
      stops the call even when the user told GDB to pass SIGINT to their program;
    - suppress-cli-notifications on: no "[Switching to inferior ...]" noise;
    - confirm off: kill and remove-inferiors never ask.
    While attaching (ATTACH_SETTINGS): sysroot "/", library files from the local disk
    (0.4 s attach instead of 0.95 s). It is put back once the user's inferior is
    selected again (GDB re-reads the current inferior's libraries on a sysroot change).
    A `ttd goto` inferior keeps both until it closes: the user resumes it at will.
    """

    def __init__(self, values: list[tuple[str, str]], signals: list[tuple[str, str]] = ()) -> None:
        self.values = values
        self.signals = list(signals)  # (signal name, "stop print pass" words)
        self.saved: list[tuple[str, str]] = []
        self.saved_signals: list[tuple[str, str]] = []

    def apply(self) -> None:
        for name, value in self.values:
            self.saved.append((name, _param_text(name)))
            gdb.execute(f"set {name} {value}", to_string=True)
        for name, words in self.signals:
            self.saved_signals.append((name, signal_handling(name)))
            gdb.execute(f"handle {name} {words}", to_string=True)

    def restore(self) -> None:
        while self.saved_signals:
            name, words = self.saved_signals.pop()
            gdb.execute(f"handle {name} {words}", to_string=True)
        while self.saved:  # reverse order: suppress-cli-notifications (first set) last
            name, value = self.saved.pop()
            gdb.execute(f"set {name} {value}".rstrip(), to_string=True)


SWALLOW_SIGSTOP = ("SIGSTOP", "nostop noprint nopass")
STOP_ON_SIGINT = ("SIGINT", "stop print nopass")
CALL_SETTINGS = [("suppress-cli-notifications", "on"), ("unwindonsignal", "on"), ("confirm", "off")]
STEP_SETTINGS = [("unwindonsignal", "on")]  # for each call into a process already set up
ATTACH_SETTINGS = [("sysroot", "/")]


def _param_text(name: str) -> str:
    value = gdb.parameter(name)
    if isinstance(value, bool):
        return "on" if value else "off"
    return "" if value is None else str(value)


def quietly(command: str) -> None:
    """Run a command that would announce "[Switching to inferior ...]"."""
    quiet = GdbSettings([("suppress-cli-notifications", "on")])
    quiet.apply()
    try:
        gdb.execute(command, to_string=True)
    finally:
        quiet.restore()
