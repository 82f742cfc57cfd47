"""`ttd record -o DB [--break LOCATION]... [--hits N] -- PROGRAM ARGS...`

Runs PROGRAM under GDB, driven through GDB/MI (ttd_cli.mi), and snapshots it with
the plugin's `ttd snapshot`:

    breakpoint hit          -> reason breakpoint (at most N per breakpoint, then deleted)
    fatal signal arrives    -> reason signal, before delivery; then it is delivered
    exit_group entered      -> reason exit, just before the process goes away

GDB runs the program through the shell (startup-with-shell), so it gets the
environment `ttd record` was given, as GDB's `run` does. The program's stdin,
stdout and stderr are ours: GDB receives them as extra descriptors and the
shell redirects the program's 0/1/2 to them, so its output is not mixed into MI.
What the user gave (program, arguments, locations, DB) reaches GDB quoted as one
argument each (MI C strings, shell words), never as a line of its own.
"""
from __future__ import annotations

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

# Signals whose default action is not to terminate the process.
NOT_FATAL = {"SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH", "SIGSTOP", "SIGTSTP", "SIGTTIN",
             "SIGTTOU"}


class RecordError(CliError):
    pass


def run(args) -> int:
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        raise RecordError("No program to record. Usage: ttd record -o DB [--break LOCATION]... "
                          "[--hits N] -- PROGRAM ARGS...")
    recorder = Recorder(args.output, program, args.breaks, args.hits, args.timeout)
    summary = recorder.run()
    print(summary, file=sys.stderr)
    return 0


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
    """The recording to create: a URL as it is, a path made absolute, which must not
    exist yet (the plugin creates it once everything else is known to work)."""
    if "://" in output:
        return output
    path = Path(output)
    if os.path.lexists(path):
        raise RecordError(f"'{output}' already exists; ttd record writes a new recording.")
    if not path.parent.exists():
        raise RecordError(f"Cannot create '{output}': directory does not exist.")
    return str(path.resolve())


class Recorder:
    def __init__(self, output: str, program: list[str], breaks: list[str],
                 hits: int | None, timeout: float):
        self.output = check_output(output)
        self.program = [find_program(program[0]), *program[1:]]
        self.breaks, self.hits, self.timeout = breaks, hits, timeout
        self.hit_counts: dict[str, int] = {}  # breakpoint number -> snapshots taken
        self.ticks = 0
        self.progress = sys.stderr.isatty()

    def run(self) -> str:
        # The program's stdin/stdout/stderr: copies of ours that GDB inherits (pass_fds
        # keeps their numbers) and the shell moves to 0/1/2 (see _setup).
        self.fds = tuple(os.dup(fd) for fd in (0, 1, 2))
        try:
            gdb = MiGdb(pass_fds=self.fds)
        finally:
            for fd in self.fds:
                os.close(fd)
        try:
            self._setup(gdb)
            status = self._drive(gdb, time.monotonic() + self.timeout)
        except GdbFailed as exc:  # GDB ended or hangs: say what is kept
            if self.ticks:
                raise RecordError(f"{exc} {self._snapshots()} recorded into "
                                  f"'{self.output}'.") from exc
            raise
        finally:
            self._end_progress()
            gdb.close()
        return f"ttd: recorded {self._snapshots()} into '{self.output}'; {status}."

    def _snapshots(self) -> str:
        return f"{self.ticks} snapshot{'s' if self.ticks != 1 else ''}"

    def _end_progress(self) -> None:
        if self.progress and self.ticks:
            print("\r\033[K", end="", file=sys.stderr, flush=True)

    def _setup(self, gdb: MiGdb) -> None:
        for cmd in ("-gdb-set confirm off", "-gdb-set pagination off",
                    "-gdb-set startup-with-shell on", "-gdb-set breakpoint pending off"):
            gdb.mi(cmd)
        gdb.cli(source_command())
        try:
            # not -file-exec-and-symbols: it hands its argument to `file` unparsed
            gdb.cli(f"file {argv_quote(self.program[0])}")
        except GdbFailed as exc:
            raise RecordError(f"gdb cannot load '{self.program[0]}': {exc}") from None
        for location in self.breaks:
            try:  # "--": a location that starts with "-" is not an option of -break-insert
                gdb.mi(f"-break-insert -- {mi_quote(location)}")
            except GdbFailed as exc:
                raise RecordError(
                    f"Breakpoint location '{location}' does not resolve: {exc}") from None
        gdb.cli("catch syscall exit_group")
        # Create the recording last, so that a bad program or location leaves no file.
        gdb.cli(open_command(self.output, create=True))
        fd_in, fd_out, fd_err = self.fds
        redirect = f"0<&{fd_in} 1>&{fd_out} 2>&{fd_err} {fd_in}<&- {fd_out}>&- {fd_err}>&-"
        args = " ".join(shlex.quote(a) for a in self.program[1:])
        # the shell reads these words; a newline inside a quoted word stays in the word
        gdb.cli(f"set args {args} {redirect}")

    def _drive(self, gdb: MiGdb, deadline: float) -> str:
        """Run to the end, snapshotting at each stop that asks for it; return how it ended."""
        gdb.mi("-exec-run")
        while True:
            try:
                stop = gdb.wait_stopped(deadline - time.monotonic(), "the recording")
            except GdbTimeout:
                raise RecordError(
                    f"The program ran longer than {self.timeout:g} s (--timeout) and was "
                    f"killed; {self._snapshots()} recorded into '{self.output}'.") from None
            reason = stop.get("reason", "")
            if reason == "exited-normally":
                return "the program exited with status 0"
            if reason == "exited":
                return f"the program exited with status {int(stop.get('exit-code', '0'), 8)}"
            if reason == "exited-signalled":
                return f"the program was killed by {stop.get('signal-name')}"
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
        elif reason == "syscall-entry":
            self._snapshot(gdb, "exit")
        elif reason == "signal-received":
            name = stop.get("signal-name", "")
            pid = next(iter(gdb.inferior_pids), None)  # the one program GDB runs
            if _is_fatal(name, pid):
                self._snapshot(gdb, "signal", name)

    def _snapshot(self, gdb: MiGdb, reason: str, signal_name: str | None = None) -> None:
        cmd = f"ttd snapshot --reason {reason}"
        if signal_name:
            cmd += f" --signal {signal_name}"
        try:
            said = gdb.cli(cmd, COMMAND_TIMEOUT).strip().splitlines()
        except GdbFailed as exc:
            raise RecordError(f"Snapshot failed: {exc}") from None
        self.ticks += 1
        if self.progress:
            from gdb_plugin.report import printable
            line = printable(said[-1] if said else f"tick {self.ticks}", keep="")
            print(f"\r\033[Kttd record: {line}", end="", file=sys.stderr, flush=True)


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
