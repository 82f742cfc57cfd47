"""`ttd record -o DB [--break LOCATION]... [--hits N] [--tracker T] -- PROGRAM ARGS...`

Runs PROGRAM under GDB, driven through GDB/MI (ttd_cli.mi), and snapshots it with
the plugin's `ttd snapshot`:

    breakpoint hit          -> reason breakpoint (at most N per breakpoint, then deleted)
    fatal signal arrives    -> reason signal, before delivery; then it is delivered
    exit_group entered      -> reason exit, just before the process goes away
    userfaultfd entered     -> no snapshot: the kernel's write tracking is released first
                               (the program's own registrations would collide with ours)

GDB runs the program through the shell (startup-with-shell), so it gets the
environment `ttd record` was given, as GDB's `run` does. The program's stdin,
stdout and stderr are ours: GDB receives them as extra descriptors and the
shell redirects the program's 0/1/2 to them, so its output is not mixed into MI.
What the user gave (program, arguments, locations, DB) reaches GDB quoted as one
argument each (MI C strings, shell words), never as a line of its own.

A location that does not resolve yet (a function of a library the program loads with
dlopen later) is a pending breakpoint; one that never resolved is an error at the end.
The exit status is the program's (128 + the signal that killed it). SIGINT and SIGTERM
stop the recording: the snapshot being taken is finished, the program is killed, GDB
ends, what was recorded stays, and the status is 128 + that signal.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

from .errors import CliError, check_file
from .mi import GdbFailed, GdbTimeout, MiGdb, argv_quote, mi_quote
from .plugin import open_command, source_command

COMMAND_TIMEOUT = 60.0  # seconds for one MI command (a snapshot of a large process included)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# What no function or file of a library loaded later can be called.
_NEVER_A_NAME = re.compile(r"^-|[\x00-\x1f\x7f]")

# Signals whose default action is not to terminate the process.
NOT_FATAL = {"SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU"}


class RecordError(CliError):
    pass


class Stopped(Exception):
    """SIGINT or SIGTERM arrived: the recording ends."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def run(args) -> int:
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        raise RecordError(
            "No program to record. Usage: ttd record -o DB [--break LOCATION]... "
            "[--hits N] -- PROGRAM ARGS..."
        )
    recorder = Recorder(
        args.output, program, args.breaks, args.hits, args.timeout, tracker_of(args)
    )
    summary, status = recorder.run()
    print(summary, file=sys.stderr)
    return status


TRACKERS = ("auto", "wp-async", "scan")  # snapshotdb.capture.TRACKERS, without SQLAlchemy


def tracker_of(args) -> str:
    """How changed pages are found: --tracker, else TTD_RECORD_TRACKER (taken out of the
    environment the program gets), else auto."""
    from_env = os.environ.pop("TTD_RECORD_TRACKER", None)
    tracker = getattr(args, "tracker", None) or from_env or "auto"
    if tracker not in TRACKERS:
        raise RecordError(f"Unknown tracker '{tracker}': choose from {', '.join(TRACKERS)}.")
    return tracker


def find_program(name: str) -> str:
    """The program's absolute path, as GDB's `file` will take it; RecordError when there
    is none."""
    path = name if "/" in name else shutil.which(name)
    if path is None:
        raise RecordError(f"Program '{name}' not found.")
    check_file("Program", name, path)
    if not os.access(path, os.X_OK):
        raise RecordError(f"Program '{name}' is not executable.")
    return os.path.abspath(path)


def check_output(output: str) -> str:
    """The recording to create, as messages name it: a server's recording, which must not
    exist yet (its URL's password masked), a path made absolute, which must not exist yet
    (the plugin creates it once everything else is known to work)."""
    if "://" in output:
        from snapshotdb.db import check_new

        loc = check_new(output)
        if loc.is_server:
            return loc.display
        output = loc.path
    path = Path(output)
    if os.path.lexists(path):
        raise RecordError(f"'{output}' already exists; ttd record writes a new recording.")
    if not path.parent.exists():
        raise RecordError(f"Cannot create '{output}': directory does not exist.")
    return str(path.resolve())


class Recorder:
    def __init__(
        self,
        output: str,
        program: list[str],
        breaks: list[str],
        hits: int | None,
        timeout: float,
        tracker: str = "auto",
    ):
        self.output = check_output(output)  # as messages show it
        self.target = output if "://" in output else self.output  # what the plugin opens
        self.program = [find_program(program[0]), *program[1:]]
        self.breaks, self.hits, self.timeout, self.tracker = breaks, hits, timeout, tracker
        self.hit_counts: dict[str, int] = {}  # breakpoint number -> snapshots taken
        self.pending: dict[str, tuple[str, str]] = {}  # number -> (location, GDB's reason)
        self.ticks = 0
        self.progress = sys.stderr.isatty()
        self.in_snapshot = False
        self.closing = False
        self.stop_signal: int | None = None  # arrived while a snapshot was being taken

    def run(self) -> tuple[str, int]:
        """Record; (the summary line, the exit status)."""
        gdb = None
        try:
            with self._stop_signals():
                # The program's stdin/stdout/stderr: copies of ours that GDB inherits
                # (pass_fds keeps their numbers) and the shell moves to 0/1/2 (_setup).
                self.fds = tuple(os.dup(fd) for fd in (0, 1, 2))
                try:
                    gdb = MiGdb(pass_fds=self.fds)
                finally:
                    for fd in self.fds:
                        os.close(fd)
                try:
                    self._setup(gdb)
                    how, status = self._drive(gdb, time.monotonic() + self.timeout)
                    self._check_pending(gdb, how)
                finally:
                    self.closing = True  # a signal now changes nothing: it all ends
                    self._end_progress()
                    self._end_program(gdb)
                    gdb.close()
        except Stopped as stop:
            if gdb is not None:
                gdb.close()  # done already unless the signal came before it was driven
            return (
                f"ttd: recording stopped by {stop}; {self._snapshots()} recorded into "
                f"'{self.output}'; the program was killed.",
                128 + stop.signum,
            )
        except GdbFailed as exc:  # GDB ended or hangs: say what is kept
            if self.ticks:
                raise RecordError(
                    f"{exc} {self._snapshots()} recorded into '{self.output}'."
                ) from exc
            raise
        return f"ttd: recorded {self._snapshots()} into '{self.output}'; {how}.", status

    @contextlib.contextmanager
    def _stop_signals(self):
        """SIGINT and SIGTERM end the recording (Stopped), also where a shell left SIGINT
        ignored (a job started in the background); a snapshot being taken is finished
        first."""

        def on_signal(signum, _frame):
            if self.in_snapshot:
                self.stop_signal = signum
            elif not self.closing:
                raise Stopped(signum)

        previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _end_program(self, gdb: MiGdb) -> None:
        """Kill the program GDB still runs (GDB then ends at once when closed)."""
        for pid in gdb.inferior_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _snapshots(self) -> str:
        return f"{self.ticks} snapshot{'s' if self.ticks != 1 else ''}"

    def _end_progress(self) -> None:
        if self.progress and self.ticks:
            print("\r\033[K", end="", file=sys.stderr, flush=True)

    def _setup(self, gdb: MiGdb) -> None:
        for cmd in (
            "-gdb-set confirm off",
            "-gdb-set pagination off",
            "-gdb-set startup-with-shell on",
            "-gdb-set breakpoint pending off",
        ):
            gdb.mi(cmd)
        gdb.cli(source_command())
        try:
            # not -file-exec-and-symbols: it hands its argument to `file` unparsed
            gdb.cli(f"file {argv_quote(self.program[0])}")
        except GdbFailed as exc:
            raise RecordError(f"gdb cannot load '{self.program[0]}': {exc}") from None
        for location in self.breaks:
            self._break(gdb, location)
        gdb.cli("catch syscall exit_group userfaultfd")
        # Create the recording last, so that a bad program or location leaves no file.
        gdb.cli(open_command(self.target, create=True))
        fd_in, fd_out, fd_err = self.fds
        redirect = f"0<&{fd_in} 1>&{fd_out} 2>&{fd_err} {fd_in}<&- {fd_out}>&- {fd_err}>&-"
        args = " ".join(shlex.quote(a) for a in self.program[1:])
        # the shell reads these words; a newline inside a quoted word stays in the word
        gdb.cli(f"set args {args} {redirect}")

    def _break(self, gdb: MiGdb, location: str) -> None:
        """A breakpoint at `location`; pending when it does not resolve yet (code of a
        library loaded later). A location GDB cannot parse, or one no library could ever
        define (control characters, a leading "-"), is an error now."""
        quoted = mi_quote(location)  # "--": a location starting with "-" is not an option
        try:
            gdb.mi(f"-break-insert -- {quoted}")
            return
        except GdbFailed as exc:
            reason = str(exc)
        bkpt = None
        if not _NEVER_A_NAME.search(location):
            with contextlib.suppress(GdbFailed):
                bkpt = gdb.mi(f"-break-insert -f -- {quoted}").get("bkpt", {})
        if bkpt is None:
            raise RecordError(f"Breakpoint location '{location}' does not resolve: {reason}")
        self.pending[bkpt.get("number", "")] = (location, reason)

    def _check_pending(self, gdb: MiGdb, how: str) -> None:
        """RecordError for a pending breakpoint that never resolved, said after what was
        recorded."""
        resolved = {n for n in self.pending if self.hit_counts.get(n)}
        if self.pending.keys() - resolved:
            table = gdb.mi("-break-list").get("BreakpointTable", {}).get("body", [])
            resolved |= {b.get("number") for b in table if b.get("addr") != "<PENDING>"}
        unresolved = [self.pending[n] for n in self.pending if n not in resolved]
        if unresolved:
            location, reason = unresolved[0]
            raise RecordError(
                f"Breakpoint location '{location}' never resolved ({reason}); "
                f"{self._snapshots()} recorded into '{self.output}'; {how}."
            )

    def _drive(self, gdb: MiGdb, deadline: float) -> tuple[str, int]:
        """Run to the end, snapshotting at each stop that asks for it; return how it ended
        and the exit status that says so."""
        gdb.mi("-exec-run")
        while True:
            try:
                stop = gdb.wait_stopped(deadline - time.monotonic(), "the recording")
            except GdbTimeout:
                raise RecordError(
                    f"The program ran longer than {self.timeout:g} s (--timeout) and was "
                    f"killed; {self._snapshots()} recorded into '{self.output}'."
                ) from None
            reason = stop.get("reason", "")
            if reason == "exited-normally":
                return "the program exited with status 0", 0
            if reason == "exited":
                code = int(stop.get("exit-code", "0"), 8)
                return f"the program exited with status {code}", code
            if reason == "exited-signalled":
                name = stop.get("signal-name", "")
                return f"the program was killed by {name}", 128 + _number(name)
            self._on_stop(gdb, stop)
            gdb.mi("-exec-continue")

    def _on_stop(self, gdb: MiGdb, stop: dict) -> None:
        reason = stop.get("reason", "")
        if reason == "breakpoint-hit":
            number = stop.get("bkptno")
            self._snapshot(gdb, "breakpoint")
            self.hit_counts[number] = self.hit_counts.get(number, 0) + 1
            if self.hits is not None and self.hit_counts[number] >= self.hits:
                gdb.mi(f"-break-delete {number}")
        elif reason == "syscall-entry" and stop.get("syscall-name") == "userfaultfd":
            self._command(gdb, "ttd snapshot --stop-tracking")
        elif reason == "syscall-entry":
            self._snapshot(gdb, "exit")
        elif reason == "signal-received":
            name = stop.get("signal-name", "")
            pid = next(iter(gdb.inferior_pids), None)  # the one program GDB runs
            if _is_fatal(name, pid):
                self._snapshot(gdb, "signal", name)

    def _snapshot(self, gdb: MiGdb, reason: str, signal_name: str | None = None) -> None:
        cmd = f"ttd snapshot --reason {reason} --tracker {self.tracker}"
        if signal_name:
            cmd += f" --signal {signal_name}"
        said = self._command(gdb, cmd, counted=True).strip().splitlines()
        for line in said[:-1]:
            if line.startswith("ttd: "):  # a note of the capture, said once
                self._say(line)
        if self.progress:
            from gdb_plugin.report import printable

            line = printable(said[-1] if said else f"tick {self.ticks}", keep="")
            print(f"\r\033[Kttd record: {line}", end="", file=sys.stderr, flush=True)

    def _command(self, gdb: MiGdb, cmd: str, counted: bool = False) -> str:
        """A snapshot command, finished even when SIGINT or SIGTERM arrives meanwhile (the
        recording then stops after it); counted: a snapshot, in self.ticks once taken
        (before such a signal stops the recording)."""
        self.in_snapshot = True
        try:
            said = gdb.cli(cmd, COMMAND_TIMEOUT)
            self.ticks += counted
            return said
        except GdbFailed as exc:
            message = str(exc)
            if self.ticks:
                message = (
                    message.rstrip(".") + f"; {self._snapshots()} recorded into "
                    f"'{self.output}' before it."
                )
            raise RecordError(f"Snapshot failed: {message}") from None
        finally:
            self.in_snapshot = False
            if self.stop_signal is not None:
                raise Stopped(self.stop_signal)

    def _say(self, line: str) -> None:
        from gdb_plugin.report import printable

        self._end_progress()
        print(printable(line, keep=""), file=sys.stderr, flush=True)


def _number(name: str) -> int:
    try:
        return signal.Signals[name].value
    except KeyError:
        return 0


def _is_fatal(name: str, pid: int | None) -> bool:
    """Does delivering signal `name` kill the process (default action, not caught)?"""
    if name in NOT_FATAL or not name.startswith("SIG"):
        return False
    try:
        number = signal.Signals[name].value
    except KeyError:
        return True  # a real-time signal GDB names differently: terminates by default
    return not _handled(pid, number)


def _handled(pid: int | None, number: int) -> bool:
    """Does process `pid` catch or ignore signal `number` (/proc/PID/status SigCgt/SigIgn)?"""
    if pid is None:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    masks = dict(re.findall(r"^(SigCgt|SigIgn):\s*([0-9a-f]+)$", status, re.M))
    bit = 1 << (number - 1)
    return any(int(masks.get(k, "0"), 16) & bit for k in ("SigCgt", "SigIgn"))
