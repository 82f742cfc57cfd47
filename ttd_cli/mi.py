"""The one GDB/MI driver: `ttd record`, `ttd call`, the end-to-end tests and the
benchmarks drive GDB through it (pygdbmi parses the records).

    gdb = MiGdb()                          gdb --interpreter=mi3, in a process group of its own
    gdb.cli("ttd open " + argv_quote(p))   a CLI command, sent as one MI C string
    gdb.mi("-break-insert -- " + mi_quote(location))   an MI command: its ^done payload
    gdb.run(line) / wait(done) / wait_stopped()         records as they come
    gdb.close()                            GDB exits (killed if it does not), with its group

Nothing a user typed is ever sent as a line of its own: a newline in it would end the MI
line and start a new GDB command (`shell ...` runs on the host). cli() sends a command as
`-interpreter-exec console "C string"`: a newline in it is the escape \\n, and GDB runs the
whole string as one command. send() refuses a line that holds a line break. Quoting:
mi_quote() makes an MI C-string argument; argv_quote() one word of the arguments that a
GDB command splits with gdb.string_to_argv (libiberty's buildargv: `ttd open PATH`).

GDB's end is noticed at once, whatever it was doing: a pidfd of GDB is watched beside its
output, and a wait ends with GdbEnded, "GDB ended unexpectedly (killed by SIGKILL) during
'call-at-time'." Every wait has a bound (GdbTimeout).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable

from .errors import CliError

EXIT_WAIT_S = 10.0  # for GDB to exit after -gdb-exit, or to be gone after SIGKILL
READ_SIZE = 1 << 16
TEXT_RECORDS = ("console", "log", "target", "output")
# Characters a buildargv word may hold unescaped; every other ASCII one gets a backslash.
ARGV_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+,:@=%")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class GdbFailed(CliError):
    """GDB answered a command with an error (its message is the exception's)."""


class GdbTimeout(GdbFailed):
    """GDB did not answer within the bound."""


class GdbEnded(GdbFailed):
    """GDB ended while it was being waited for."""


def mi_quote(text: str) -> str:
    """`text` as an MI C-string argument: GDB gets back exactly these characters.
    A NUL cannot be in a C string: CliError."""
    if "\0" in text:
        raise CliError(f"{text.split(chr(0))[0]!r}... holds a NUL byte, which GDB cannot take.")
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def argv_quote(word: str) -> str:
    """`word` as one argument for gdb.string_to_argv, whatever it holds (spaces, quotes,
    backslashes, newlines): every ASCII character outside ARGV_SAFE gets a backslash."""
    if not word:
        return "''"
    return "".join("\\" + ch if ord(ch) < 0x80 and ch not in ARGV_SAFE else ch for ch in word)


def first_word(command: str) -> str:
    """How a message names a command: its first word, quoted (never the user's text)."""
    return repr(command.split(" ", 1)[0])


class MiGdb:
    """One GDB in MI mode, started in a new session (its own process group), so that
    close() can end whatever it started along with it."""

    def __init__(
        self,
        gdb_path: str = "gdb",
        extra_args: list[str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        from pygdbmi import gdbmiparser

        path = shutil.which(gdb_path)
        if path is None:
            raise GdbFailed(f"{gdb_path} is not installed: apt-get install gdb")
        self._parse = gdbmiparser.parse_response
        self._is_prompt = gdbmiparser.response_is_finished
        self.gdb_process = subprocess.Popen(
            [path, "--nx", "--quiet", "--interpreter=mi3", *(extra_args or [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        self._pidfd = os.pidfd_open(self.gdb_process.pid)
        # GDB's open output pipes -> the start of a line not complete yet
        self._partial = {
            f.fileno(): b"" for f in (self.gdb_process.stdout, self.gdb_process.stderr)
        }
        self._pending: list[dict] = []  # records read but not consumed yet
        self._token = 0
        self._busy = False  # a command was sent and its result is not read yet
        self._closed = False
        self._inferiors: dict[str, int] = {}  # thread group -> pid, while it runs

    @property
    def pid(self) -> int:
        return self.gdb_process.pid

    @property
    def inferior_pids(self) -> list[int]:
        """The processes GDB runs now (=thread-group-started, not exited yet)."""
        return list(self._inferiors.values())

    # ── sending ──

    def send(self, line: str) -> None:
        """Write one MI line. A line break inside would start a second command: refused."""
        if "\n" in line or "\r" in line:
            raise GdbFailed(f"Refused to send GDB a line that holds a line break: {line!r}")
        try:
            self.gdb_process.stdin.write(line.encode("utf-8", "surrogateescape") + b"\n")
            self.gdb_process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise self._ended(first_word(line)) from None
        self._busy = True

    def run(
        self, command: str, timeout_s: float = 60.0, what: str | None = None
    ) -> tuple[dict, str]:
        """Send an MI line (or a CLI command GDB takes as one) with a token and wait for
        its result record: (record, the console and log text before it). Messages name
        the command as `what` (default: its first word)."""
        self._token += 1
        token = self._token
        self.send(f"{token}{command}")
        return self.wait(
            lambda r: r["type"] == "result" and r.get("token") == token,
            what or first_word(command),
            timeout_s,
        )

    def cli(self, command: str, timeout_s: float = 60.0) -> str:
        """Run a CLI command as one MI C string; its console output, or GdbFailed with
        GDB's message (for a Python error, with its cause)."""
        record, text = self.run(
            f"-interpreter-exec console {mi_quote(command)}", timeout_s, first_word(command)
        )
        if record["message"] == "error":
            raise GdbFailed(_error_message(record, text))
        return text

    def mi(self, command: str, timeout_s: float = 60.0) -> dict:
        """Run an MI command; its result payload ({} when none), or GdbFailed."""
        record, text = self.run(command, timeout_s)
        if record["message"] == "error":
            raise GdbFailed(_error_message(record, text))
        return record["payload"] or {}

    # ── waiting ──

    def wait(
        self, done: Callable[[dict], bool], what: str, timeout_s: float = 60.0
    ) -> tuple[dict, str]:
        """Consume records until done(record): (that record, console and log text before
        it). Records after it stay for the next wait. GdbTimeout after timeout_s, GdbEnded
        as soon as GDB has ended."""
        deadline = time.monotonic() + timeout_s
        text: list[str] = []
        while True:
            while self._pending:
                record = self._pending.pop(0)
                if record["type"] in TEXT_RECORDS and record["payload"]:
                    text.append(str(record["payload"]))
                if record["type"] == "result":
                    self._busy = False  # GDB finished a command: it reads the next one
                if done(record):
                    return record, "".join(text)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GdbTimeout(f"GDB did not answer {what} within {timeout_s:g} s.")
            self._pending.extend(self._read(remaining, what))

    def wait_stopped(self, timeout_s: float = 60.0, what: str = "'*stopped'") -> dict:
        """After run/continue: the next *stopped record's payload."""
        record, _ = self.wait(
            lambda r: r["type"] == "notify" and r["message"] == "stopped", what, timeout_s
        )
        return record["payload"]

    def _read(self, timeout_s: float, what: str) -> list[dict]:
        """The records that arrive within timeout_s (maybe none). GDB's end, seen by its
        pidfd, first lets what it wrote last be read, then raises GdbEnded."""
        ready, _, _ = select.select([*self._partial, self._pidfd], [], [], max(timeout_s, 0))
        records = self._read_ready([fd for fd in ready if fd != self._pidfd])
        if self._pidfd in ready or not self._partial:
            records += self._drain()
            if not records:
                raise self._ended(what)
        return records

    def _drain(self) -> list[dict]:
        """Whatever is left in GDB's pipes, without waiting."""
        records: list[dict] = []
        while True:
            ready = select.select(list(self._partial), [], [], 0)[0] if self._partial else []
            if not ready:
                return records
            records += self._read_ready(ready)

    def _read_ready(self, fds: list[int]) -> list[dict]:
        records = []
        for fd in fds:
            data = os.read(fd, READ_SIZE)
            if not data:  # end of file: GDB closed it (or ended); read it no more
                del self._partial[fd]
                continue
            lines = (self._partial[fd] + data).split(b"\n")
            self._partial[fd] = lines.pop()
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\r")
                if line and not self._is_prompt(line):
                    records.append(self._note(self._parse(line)))
        return records

    def _note(self, record: dict) -> dict:
        """Keep track of the inferiors GDB runs (close() kills them when GDB cannot)."""
        if record["type"] == "notify" and isinstance(record.get("payload"), dict):
            group, pid = record["payload"].get("id"), record["payload"].get("pid")
            if record["message"] == "thread-group-started" and pid:
                self._inferiors[group] = int(pid)
            elif record["message"] == "thread-group-exited":
                self._inferiors.pop(group, None)
        return record

    # ── the end ──

    def _ended(self, what: str) -> GdbEnded:
        return GdbEnded(f"GDB ended unexpectedly ({self.how_it_ended()}) during {what}.")

    def how_it_ended(self) -> str:
        """'killed by SIGKILL', 'exited with status 1', or 'its output closed' while it
        still runs. Leaves GDB unreaped (a zombie keeps its process group's id)."""
        if not self._gone(EXIT_WAIT_S):
            return "its output closed"
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return "ended"
        if info.si_code == os.CLD_EXITED:
            return f"exited with status {info.si_status}"
        try:
            return f"killed by {signal.Signals(info.si_status).name}"
        except ValueError:
            return f"killed by signal {info.si_status}"

    def _gone(self, timeout_s: float) -> bool:
        return bool(select.select([self._pidfd], [], [], timeout_s)[0])

    def close(self) -> None:
        """End GDB: -gdb-exit when it is idle (it ends what it runs), SIGKILL when it is
        busy or does not exit in time; then whatever is left in its process group. GDB is
        reaped last, so its group's id cannot be reused meanwhile. Bounded."""
        if self._closed:
            return
        self._closed = True
        if not self._gone(0) and not self._busy:
            try:
                self.send("-gdb-exit")
            except GdbFailed:
                pass
            self._gone(EXIT_WAIT_S)
        if not self._gone(0):
            for pid in self.inferior_pids:  # a traced process outlives a killed tracer
                _kill(pid, os.kill)
            self.gdb_process.kill()
            self._gone(EXIT_WAIT_S)
        _kill(self.pid, os.killpg)
        try:
            self.gdb_process.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.gdb_process.stdin, self.gdb_process.stdout, self.gdb_process.stderr):
            stream.close()
        os.close(self._pidfd)

    def __enter__(self) -> MiGdb:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _kill(pid: int, how) -> None:
    try:
        how(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _error_message(record: dict, text: str) -> str:
    """GDB's error message; for "Error while executing Python code." the cause, which
    GDB logged just before it, is added."""
    message = (record["payload"] or {}).get("msg", "error")
    if message == "Error while executing Python code.":
        causes = [line for line in text.splitlines() if line.strip() and line.strip() != message]
        message += f" ({causes[-1].strip()})" if causes else ""
    return message
