"""`ttd record -o DB [--break LOCATION]... [--hits N] -- PROGRAM ARGS...`

Runs PROGRAM under GDB, driven through GDB/MI (pygdbmi), and snapshots it with
the plugin's `ttd snapshot`:

    breakpoint hit          -> reason breakpoint (at most N per breakpoint, then deleted)
    fatal signal arrives    -> reason signal, before delivery; then it is delivered
    exit_group entered      -> reason exit, just before the process goes away

GDB runs the program through the shell (startup-with-shell), so it gets the
environment `ttd record` was given, as GDB's `run` does. The program's stdin,
stdout and stderr are ours: GDB receives them as extra descriptors and the
shell redirects the program's 0/1/2 to them, so its output is not mixed into MI.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import RecordingError

PLUGIN = Path(__file__).resolve().parents[1] / "gdb_plugin" / "ttd.py"
COMMAND_TIMEOUT = 60.0  # seconds for one MI command (a snapshot of a large process included)

# Signals whose default action is not to terminate the process.
NOT_FATAL = {"SIGCHLD", "SIGCONT", "SIGURG", "SIGWINCH", "SIGSTOP", "SIGTSTP", "SIGTTIN",
             "SIGTTOU"}


class RecordError(RecordingError):
    pass


class RecordTimeout(RecordError):
    pass


def cli_record(args) -> int:
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        raise RecordError("No program to record. Usage: ttd record -o DB [--break LOCATION]... "
                          "[--hits N] -- PROGRAM ARGS...")
    if args.hits is not None and args.hits < 1:
        raise RecordError(f"--hits must be at least 1, not {args.hits}.")
    recorder = Recorder(args.output, program, args.breaks, args.hits, args.timeout)
    summary = recorder.run()
    print(summary, file=sys.stderr)
    return 0


def find_program(name: str) -> str:
    """The program's path, as GDB's `file` will take it; RecordError when there is none."""
    path = name if "/" in name else shutil.which(name)
    if path is None or not os.path.isfile(path):
        raise RecordError(f"Program '{name}' not found.")
    if not os.access(path, os.X_OK):
        raise RecordError(f"Program '{name}' is not executable.")
    return os.path.abspath(path)


def check_output(output: str) -> str:
    if "://" in output:
        return output
    path = Path(output)
    if path.exists():
        raise RecordError(f"'{output}' already exists; ttd record writes a new recording.")
    if not path.parent.exists():
        raise RecordError(f"Cannot create '{output}': directory does not exist.")
    return str(path.resolve())


class Gdb:
    """A GDB/MI process: send a command, wait for its result, keep async records."""

    def __init__(self, pass_fds: tuple[int, ...]):
        from pygdbmi.IoManager import IoManager
        gdb = shutil.which("gdb")
        if gdb is None:
            raise RecordError("gdb not found: install it (apt-get install gdb).")
        self.proc = subprocess.Popen(
            [gdb, "--nx", "--interpreter=mi3", "-q"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=pass_fds,
            start_new_session=True)
        self.io = IoManager(self.proc.stdin, self.proc.stdout, self.proc.stderr,
                            time_to_check_for_additional_output_sec=0.01)
        self.token = 0
        self.events: list[dict] = []  # async records not consumed yet
        self.console: list[str] = []
        self.pid: int | None = None  # the program's, once it runs

    def command(self, cmd: str, timeout: float = COMMAND_TIMEOUT) -> dict:
        """Run one MI (or CLI) command; return its ^done/^running payload, raise on ^error."""
        self.token += 1
        token = self.token
        self.io.write(f"{token}{cmd}", read_response=False)
        deadline = time.monotonic() + timeout
        while True:
            for record in self._read(deadline, cmd):
                if record["type"] == "result" and record.get("token") == token:
                    if record["message"] == "error":
                        raise GdbCommandError(record["payload"].get("msg", "error"))
                    return record["payload"] or {}

    def wait_stopped(self, deadline: float) -> dict:
        """The next *stopped record's payload."""
        while True:
            for i, record in enumerate(self.events):
                if record["type"] == "notify" and record["message"] == "stopped":
                    del self.events[: i + 1]
                    return record["payload"]
            self.events.clear()
            self._read(deadline, "waiting for the program to stop")

    def _read(self, deadline: float, what: str) -> list[dict]:
        if self.proc.poll() is not None:
            raise RecordError(f"gdb exited unexpectedly (status {self.proc.returncode}) "
                              f"during '{what}'.")
        left = deadline - time.monotonic()
        if left <= 0:
            raise RecordTimeout(f"Timed out during '{what}'.")
        records = self.io.get_gdb_response(timeout_sec=min(left, 0.5),
                                           raise_error_on_timeout=False)
        for record in records:
            if record["type"] == "console" and record["payload"]:
                self.console.append(record["payload"])
            elif record["type"] in ("notify", "result"):
                self.events.append(record)
                if record["message"] == "thread-group-started":
                    self.pid = int(record["payload"]["pid"])
        return records

    def close(self) -> None:
        """Kill the program (a traced process outlives a killed tracer) and GDB."""
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


class GdbCommandError(RecordError):
    pass


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
            gdb = Gdb(pass_fds=self.fds)
        finally:
            for fd in self.fds:
                os.close(fd)
        try:
            self._setup(gdb)
            status = self._drive(gdb, time.monotonic() + self.timeout)
        except GdbCommandError as exc:
            raise RecordError(str(exc)) from None
        except RecordTimeout:
            raise RecordError(
                f"The program ran longer than {self.timeout:g} s (--timeout) and was killed; "
                f"{self.ticks} snapshots were recorded into '{self.output}'.") from None
        finally:
            self._end_progress()
            gdb.close()
        return f"ttd: recorded {self.ticks} snapshots into '{self.output}'; {status}."

    def _end_progress(self) -> None:
        if self.progress and self.ticks:
            print("\r\033[K", end="", file=sys.stderr, flush=True)

    def _setup(self, gdb: Gdb) -> None:
        for cmd in ("-gdb-set confirm off", "-gdb-set pagination off",
                    "-gdb-set startup-with-shell on", "-gdb-set breakpoint pending off",
                    f"-interpreter-exec console {_mi_quote('source ' + str(PLUGIN))}"):
            gdb.command(cmd)
        try:
            gdb.command(f"-file-exec-and-symbols {_mi_quote(self.program[0])}")
        except GdbCommandError as exc:
            raise RecordError(f"gdb cannot load '{self.program[0]}': {exc}") from None
        for location in self.breaks:
            try:
                gdb.command(f"-break-insert {_mi_quote(location)}")
            except GdbCommandError as exc:
                raise RecordError(
                    f"Breakpoint location '{location}' does not resolve: {exc}") from None
        gdb.command("-interpreter-exec console \"catch syscall exit_group\"")
        # Create the recording last, so that a bad program or location leaves no file.
        gdb.command(f"-interpreter-exec console {_mi_quote('ttd open --create ' + self.output)}")
        fd_in, fd_out, fd_err = self.fds
        redirect = f"0<&{fd_in} 1>&{fd_out} 2>&{fd_err} {fd_in}<&- {fd_out}>&- {fd_err}>&-"
        args = " ".join(shlex.quote(a) for a in self.program[1:])
        gdb.command(f"-exec-arguments {args} {redirect}")

    def _drive(self, gdb: Gdb, deadline: float) -> str:
        """Run to the end, snapshotting at each stop that asks for it; return how it ended."""
        gdb.command("-exec-run")
        while True:
            stop = gdb.wait_stopped(deadline)
            reason = stop.get("reason", "")
            if reason == "exited-normally":
                return "the program exited with status 0"
            if reason == "exited":
                return f"the program exited with status {int(stop.get('exit-code', '0'), 8)}"
            if reason == "exited-signalled":
                return f"the program was killed by {stop.get('signal-name')}"
            self._on_stop(gdb, stop)
            gdb.command("-exec-continue")

    def _on_stop(self, gdb: Gdb, stop: dict) -> None:
        reason = stop.get("reason", "")
        if reason == "breakpoint-hit":
            number = stop.get("bkptno")
            self._snapshot(gdb, "breakpoint")
            self.hit_counts[number] = self.hit_counts.get(number, 0) + 1
            if self.hits is not None and self.hit_counts[number] >= self.hits:
                gdb.command(f"-break-delete {number}")
        elif reason == "syscall-entry":
            self._snapshot(gdb, "exit")
        elif reason == "signal-received":
            name = stop.get("signal-name", "")
            if _is_fatal(name, gdb.pid):
                self._snapshot(gdb, "signal", name)

    def _snapshot(self, gdb: Gdb, reason: str, signal_name: str | None = None) -> None:
        cmd = f"ttd snapshot --reason {reason}"
        if signal_name:
            cmd += f" --signal {signal_name}"
        first = len(gdb.console)
        try:
            gdb.command(f"-interpreter-exec console {_mi_quote(cmd)}")
        except GdbCommandError as exc:
            raise RecordError(f"Snapshot failed: {exc}") from None
        self.ticks += 1
        if self.progress:
            said = "".join(gdb.console[first:]).strip().splitlines()
            print(f"\r\033[Kttd record: {said[-1] if said else f'tick {self.ticks}'}",
                  end="", file=sys.stderr, flush=True)


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


def _mi_quote(text: str) -> str:
    """A C-string argument for an MI command."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
