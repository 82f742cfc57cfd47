"""One call in the temporary inferior: GDB's `call EXPR` with a timeout, what GDB's
events tell about how it ended, and its Outcome (returned, signalled, exited, timeout,
error) with the signal, the faulting address and the backtrace where it stopped.

Runs with the temporary inferior selected (gdb_plugin/inferior.py: selected()).
"""
from __future__ import annotations

import os
import re
import signal
import threading
from dataclasses import dataclass, field

import gdb

# signals whose siginfo carries the faulting address (si_addr)
FAULT_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP")
BACKTRACE_FRAMES = 32

def _where_stopped() -> str:
    """'at 0x401136 in f' for the newest frame, before GDB unwinds the call."""
    try:
        frame = gdb.newest_frame()
        return f"at {frame.pc():#x} in {frame.name() or '??'}"
    except gdb.error:
        return "at an unknown place"


def _frame_line(level: int, frame) -> str:
    """'#1  0x401136 in f at t.c:12' (GDB's backtrace, without arguments)."""
    line = f"#{level:<2} {frame.pc():#x} in {frame.name() or '??'}"
    try:
        sal = frame.find_sal()
        if sal.symtab is not None and sal.line:
            line += f" at {sal.symtab.filename}:{sal.line}"
    except gdb.error:
        pass
    return line


def _backtrace(limit: int = BACKTRACE_FRAMES) -> list[str]:
    """The stopped thread's frames, newest first, down to the call's dummy frame
    (what lies below it is GDB's, not the call's)."""
    lines: list[str] = []
    try:
        frame = gdb.newest_frame()
        while frame is not None and len(lines) < limit:
            if frame.type() == gdb.DUMMY_FRAME:
                break
            lines.append(_frame_line(len(lines), frame))
            frame = frame.older()
    except gdb.error:
        pass
    return lines


def _fault_address() -> int | None:
    """si_addr of the signal the thread stopped with ($_siginfo), or None."""
    try:
        return int(gdb.parse_and_eval("$_siginfo._sifields._sigfault.si_addr"))
    except (gdb.error, ValueError):
        return None


_VALUE_RE = re.compile(r"^\$(\d+) = (.*?)\n?\Z", re.DOTALL)


class UserBreakpointsDisabled:
    """Disable the user's breakpoints for the length of a call-at-time, then put back
    exactly those that were enabled: GDB's breakpoints apply to every inferior, and the
    user's `break f` must not stop a call of f in the past. The user's inferior is not
    resumed meanwhile, so its memory is not touched."""

    def __enter__(self):
        self.disabled = [bp for bp in gdb.breakpoints() if bp.enabled and bp.visible]
        for bp in self.disabled:
            bp.enabled = False
        return self

    def __exit__(self, *exc):
        for bp in self.disabled:
            if bp.is_valid():
                bp.enabled = True


@dataclass
class Outcome:
    """How a call ended: status returned | signalled | exited | timeout | error."""

    status: str
    history: str = ""  # "$N = value" as GDB printed it, "" for void
    value: str = ""
    signal: str | None = None
    error: str | None = None
    fault_address: int | None = None
    backtrace: list[str] = field(default_factory=list)
    exit_code: int | None = None


class CallWatch:
    """What GDB's events tell about a running call: the signal it stopped with, where,
    the faulting address and the backtrace (taken before GDB unwinds the call), the
    exit code when the process ended, and whether the process was resumed at all."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.where = ""
        self.fault_address: int | None = None
        self.backtrace: list[str] = []
        self.exit_code: int | None = None
        self.resumed = False

    def on_cont(self, _event) -> None:
        self.resumed = True

    def on_stop(self, event) -> None:
        if not isinstance(event, gdb.SignalEvent):
            return
        self.signal = event.stop_signal
        self.where = _where_stopped()
        self.fault_address = _fault_address() if self.signal in FAULT_SIGNALS else None
        self.backtrace = _backtrace()

    def on_exit(self, event) -> None:
        code = getattr(event, "exit_code", None)
        self.exit_code = None if code is None else int(code)

    def __enter__(self):
        gdb.events.stop.connect(self.on_stop)
        gdb.events.cont.connect(self.on_cont)
        gdb.events.exited.connect(self.on_exit)
        return self

    def __exit__(self, *exc) -> None:
        gdb.events.stop.disconnect(self.on_stop)
        gdb.events.cont.disconnect(self.on_cont)
        gdb.events.exited.disconnect(self.on_exit)


def evaluate(expr: str, pid: int, timeout_s: float | None, on_resumed=None) -> Outcome:
    """Evaluate EXPR as GDB's `call` does.

    on_resumed() is called when the call resumed the process (an expression without
    a function call does not).
    A guard against hangs: after `timeout_s` the process gets SIGINT, which GDB
    stops on (SIGSTOP would be swallowed: see GdbSettings) and, with unwindonsignal
    on, turns into an unwound, abandoned call.
    """
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        try:
            os.kill(pid, signal.SIGINT)
        except OSError:
            pass

    timer = threading.Timer(timeout_s or 0, interrupt)  # None: no limit
    timer.daemon = True
    with CallWatch() as watch:
        if timeout_s:
            timer.start()
        try:
            out = gdb.execute(f"call {expr}", to_string=True)
        except gdb.error as exc:
            return _failed(str(exc), watch, timed_out.is_set(), timeout_s)
        finally:
            timer.cancel()
            if watch.resumed and on_resumed is not None:
                on_resumed()
    match = _VALUE_RE.match(out)
    if match:
        return Outcome("returned", out.rstrip("\n"), match.group(2))
    return Outcome("returned", out.rstrip("\n"))


def _failed(gdb_message: str, watch: CallWatch, timed_out: bool, timeout_s: float) -> Outcome:
    """The Outcome of a call GDB answered with an error."""
    message = gdb_message.splitlines()[0] if gdb_message else "error"
    if timed_out and watch.signal == "SIGINT":
        return Outcome("timeout", error=f"The call did not return within {timeout_s:g} s: "
                       f"interrupted {watch.where}.", backtrace=watch.backtrace)
    if "signaled while in a function called from GDB" in message:
        if watch.signal:
            message += f" ({watch.signal} {watch.where}"
            if watch.fault_address is not None:
                message += f", fault address {watch.fault_address:#x}"
            message += ")"
        return Outcome("signalled", signal=watch.signal, error=message,
                       fault_address=watch.fault_address, backtrace=watch.backtrace)
    if "exited while in a function called from GDB" in message:
        if watch.exit_code is not None:
            message += f" (exit code {watch.exit_code})"
        return Outcome("exited", error=message, exit_code=watch.exit_code)
    return Outcome("error", error=message)
