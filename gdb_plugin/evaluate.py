"""One call in the temporary inferior: GDB's `call EXPR` with a timeout, what GDB's
events tell about how it ended, and its Outcome (returned, signalled, exited, timeout,
error) with the signal, the faulting address and the backtrace where it stopped.

Runs with the temporary inferior selected (gdb_plugin/inferior.py: selected()).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

import gdb

from gdb_plugin.gdb_settings import signal_handling
from gdb_plugin.watchdog import Watchdog, kill_gdbserver, send, where_in_kernel

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
    signals_sent: list[str] = field(default_factory=list)  # by the timeout's CallStopper
    resumed: bool = False  # the process ran (a function was called)


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

    def on_call(self, event) -> None:
        """An inferior function call starts (GDB's `cont` event is not emitted for
        those): the process runs code."""
        if isinstance(event, gdb.InferiorCallPreEvent):
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
        gdb.events.inferior_call.connect(self.on_call)
        gdb.events.exited.connect(self.on_exit)
        return self

    def __exit__(self, *exc) -> None:
        gdb.events.stop.disconnect(self.on_stop)
        gdb.events.inferior_call.disconnect(self.on_call)
        gdb.events.exited.disconnect(self.on_exit)


# After the timeout, in seconds: SIGINT, SIGSTOP, SIGKILL, gdbserver ended (see CallStopper)
STOP_STEPS_S = (0.0, 1.0, 3.0, 5.0)


class CallStopper:
    """Stops a call that runs past its timeout, whatever it does with its signals.

    timeout      SIGINT: GDB stops on it even when the program ignores it or handles it
                 (a traced process's signals are reported to GDB before delivery), not
                 when it blocks it, nor when the user told GDB "handle SIGINT nostop";
    + 1 s        SIGSTOP, which nothing can block, once GDB stops on it ("handle SIGSTOP
                 stop print nopass", set from GDB's thread: gdb.post_event; a call
                 otherwise swallows the SIGSTOP pending from the attach);
    + 3 s        SIGKILL: the process ends, so where it was comes from /proc/PID/syscall;
    + 5 s        gdbserver killed: GDB itself waits on it (a memory read that never ends).
    With unwindonsignal on, GDB unwinds a call stopped by SIGINT or SIGSTOP.
    """

    def __init__(self, pid: int, timeout_s: float | None) -> None:
        self.pid = pid
        self.timeout_s = timeout_s
        self.where_killed = ""
        self._saved_sigstop: str | None = None
        steps = []
        if timeout_s:
            actions = [
                ("SIGINT", self._sigint),
                ("SIGSTOP", self._sigstop),
                ("SIGKILL", self._sigkill),
                ("gdbserver", self._gdbserver),
            ]
            steps = [
                (timeout_s + after, name, action)
                for after, (name, action) in zip(STOP_STEPS_S, actions, strict=True)
            ]
        self.dog = Watchdog(steps)

    @property
    def taken(self) -> list[str]:
        return self.dog.taken

    def _sigint(self) -> None:
        send(self.pid, signal.SIGINT)

    def _sigstop(self) -> None:
        gdb.post_event(self._stop_on_sigstop)

    def _stop_on_sigstop(self) -> None:
        """In GDB's thread, while the call runs (nothing once it has ended)."""
        if self.dog.done:
            return
        self._saved_sigstop = signal_handling("SIGSTOP")
        gdb.execute("handle SIGSTOP stop print nopass", to_string=True)
        send(self.pid, signal.SIGSTOP)

    def _sigkill(self) -> None:
        self.where_killed = where_in_kernel(self.pid)
        send(self.pid, signal.SIGKILL)

    def _gdbserver(self) -> None:
        kill_gdbserver(self.pid)

    def __enter__(self) -> CallStopper:
        self.dog.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.dog.__exit__(*exc)
        if self._saved_sigstop is not None:
            gdb.execute(f"handle SIGSTOP {self._saved_sigstop}", to_string=True)
            self._saved_sigstop = None

    def outcome(self, watch: CallWatch) -> Outcome | None:
        """The timeout Outcome when a step stopped the call, else None."""
        if not self.taken:
            return None
        head = f"The call did not return within {self.timeout_s:g} s"
        if "gdbserver" in self.taken:
            return Outcome(
                "timeout",
                error=f"{head}, and gdbserver did not answer GDB: "
                f"gdbserver ended ({_place(self.where_killed)}).",
            )
        if "SIGKILL" in self.taken:
            return Outcome(
                "timeout",
                error=f"{head} and stopped on neither SIGINT nor SIGSTOP: "
                f"killed with SIGKILL ({_place(self.where_killed)}).",
            )
        if watch.signal == "SIGSTOP":
            return Outcome(
                "timeout",
                error=f"{head} and did not stop on SIGINT: stopped with SIGSTOP {watch.where}.",
                backtrace=watch.backtrace,
            )
        if watch.signal == "SIGINT":
            return Outcome(
                "timeout", error=f"{head}: interrupted {watch.where}.", backtrace=watch.backtrace
            )
        return None


def _place(where: str) -> str:
    return f"it was {where}" if where else "where it was is unknown"


def evaluate(expr: str, pid: int, timeout_s: float | None, on_resumed=None) -> Outcome:
    """Evaluate EXPR as GDB's `call` does; a call past `timeout_s` (None: no limit) is
    stopped (CallStopper) and reported with where it was.

    on_resumed() is called when the call resumed the process (an expression without
    a function call does not).
    """
    if "\n" in expr or "\r" in expr:  # gdb.execute would run each line as a command
        return Outcome("error", error="An expression cannot hold a line break.")
    error = None
    with CallWatch() as watch:
        with CallStopper(pid, timeout_s) as stopper:
            try:
                out = gdb.execute(f"call {expr}", to_string=True)
            except gdb.error as exc:
                error = str(exc)
            finally:
                if watch.resumed and on_resumed is not None:
                    on_resumed()
    if error is not None:
        outcome = stopper.outcome(watch) or _failed(error, watch)
    else:
        match = _VALUE_RE.match(out)
        outcome = Outcome("returned", out.rstrip("\n"), match.group(2) if match else "")
    outcome.signals_sent = list(stopper.taken)  # one may be pending in a call that returned
    outcome.resumed = watch.resumed
    return outcome


def _failed(gdb_message: str, watch: CallWatch) -> Outcome:
    """The Outcome of a call GDB answered with an error."""
    message = gdb_message.splitlines()[0] if gdb_message else "error"
    if "signaled while in a function called from GDB" in message:
        if watch.signal:
            message += f" ({watch.signal} {watch.where}"
            if watch.fault_address is not None:
                message += f", fault address {watch.fault_address:#x}"
            message += ")"
        return Outcome(
            "signalled",
            signal=watch.signal,
            error=message,
            fault_address=watch.fault_address,
            backtrace=watch.backtrace,
        )
    if "exited while in a function called from GDB" in message:
        if watch.exit_code is not None:
            message += f" (exit code {watch.exit_code})"
        return Outcome("exited", error=message, exit_code=watch.exit_code)
    return Outcome("error", error=message)
