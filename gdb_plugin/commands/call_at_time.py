"""`call-at-time TICK EXPR`: call EXPR in the process as it was at TICK, report dirtied pages."""
from __future__ import annotations

import json

import gdb

from gdb_plugin import report, session, state
from gdb_plugin.session import SessionError
from snapshotdb.errors import RecordingError

USAGE = ("Usage: call-at-time [--thread TID] [--timeout S] [--tracker auto|wp-async|diff] "
         "[--allow-side-effects] [--json] TICK EXPR")

# The last call's result, for `info dirtied-pages`.
last_result: session.CallResult | None = None


def parse_args(arg: str) -> dict:
    """Split the options, TICK and EXPR; EXPR is kept verbatim. None for an option not
    given: the `set ttd ...` setting holds. Raises ValueError with a one-line message.
    """
    opts = {"tid": None, "timeout": None, "json": False, "sandbox": None, "tracker": None}
    rest = arg.strip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if word == "--json":
            opts["json"] = True
        elif word == "--allow-side-effects":
            opts["sandbox"] = False
        elif word in ("--thread", "--timeout", "--tracker"):
            value, _, rest = rest.partition(" ")
            rest = rest.lstrip()
            opts.update(_option_value(word, value))
        elif word == "--":
            break
        else:
            raise ValueError(f"Unknown option '{word}'. {USAGE}")
    tick_text, _, expr = rest.partition(" ")
    if not tick_text or not expr.strip():
        raise ValueError(USAGE)
    try:
        opts["tick"] = int(tick_text, 0)
    except ValueError:
        raise ValueError(f"Invalid tick '{tick_text}': a tick is a number. {USAGE}") from None
    opts["expr"] = expr.strip()
    return opts


def _option_value(word: str, value: str) -> dict:
    """{"tid": ...}, {"timeout": ...} or {"tracker": ...}; ValueError when invalid."""
    try:
        if word == "--thread":
            return {"tid": int(value)}
        if word == "--timeout":
            timeout = float(value)
            if not timeout > 0:
                raise ValueError
            return {"timeout": timeout}
    except ValueError:
        raise ValueError(f"Invalid {word[2:]} '{value}'. {USAGE}") from None
    if value not in session.TRACKERS:
        raise ValueError(f"Invalid tracker '{value}': the trackers are "
                         f"{', '.join(session.TRACKERS)}.")
    return {"tracker": value}


def run_call(db_path: str, opts: dict) -> session.CallResult:
    """Run one call; translate every library error into gdb.GdbError."""
    global last_result
    try:
        result = session.call_at_time(db_path, opts["tick"], opts["expr"], opts["tid"],
                                      opts["timeout"], opts["sandbox"], opts["tracker"])
    except (RecordingError, SessionError) as exc:
        raise gdb.GdbError(str(exc)) from None
    last_result = result
    return result


def print_result(result: session.CallResult) -> None:
    """The value, what the call printed, where it crashed or was interrupted, what the
    sandbox blocked, the dirtied pages in one line, and notes on the tracker."""
    for warning in result.warnings:
        gdb.write(warning + "\n", gdb.STDERR)
    if result.history:
        gdb.write(result.history + "\n")
    if result.stdout:
        gdb.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
    if result.stderr:
        gdb.write(result.stderr if result.stderr.endswith("\n") else result.stderr + "\n",
                  gdb.STDERR)
    for line in fault_lines(result):
        gdb.write(line + "\n")
    blocked = report.blocked_summary(result.blocked_syscalls)
    if blocked:
        gdb.write(blocked + "\n")
    line = report.summary(result.pages)
    if any(p.changed for p in result.pages):
        line += ' See "info dirtied-pages".'
    gdb.write(line + "\n")
    for note in result.notes:
        gdb.write(note + "\n")


def fault_lines(result: session.CallResult) -> list[str]:
    """For a crash or a timeout: the signal, the faulting address, the backtrace."""
    lines = []
    if result.status == "signalled" and result.signal:
        line = f"The call received {result.signal}"
        if result.fault_address is not None:
            line += f", fault address {result.fault_address:#x}"
        lines.append(line + ".")
    elif result.status == "exited" and result.exit_code is not None:
        lines.append(f"The call exited with code {result.exit_code}.")
    if result.backtrace:
        lines.append("Backtrace where it stopped:")
        lines.extend("  " + frame for frame in result.backtrace)
    return lines


class CallAtTime(gdb.Command):
    """Call a function of the recorded process as it was at a past tick.

Usage: call-at-time [--thread TID] [--timeout S] [--tracker auto|wp-async|diff]
                    [--allow-side-effects] [--json] TICK EXPR
Rematerialize the process of the open recording at TICK (its memory, registers,
libraries), attach it as a temporary inferior and evaluate EXPR there exactly as
"call" would: any expression, several calls, casts, registers such as $rdi as
they were at TICK. The value enters the value history. Then the pages the call
wrote are listed in one line; "info dirtied-pages" shows them. Your own inferior
is left untouched, and your breakpoints do not stop the call (to step through a
call in the past, use "ttd goto TICK" and "call" or "break" there). The process
is kept for the next call at the same TICK, reset to the recorded state.
TID picks the thread whose registers and TLS the call uses (default: the thread
that stopped at TICK). S is a timeout in seconds (default "show ttd timeout"):
a call still running then is interrupted and reported with where it was.
The called code runs in a sandbox: system calls that reach outside the process
(files, other processes, the network, fork, exec) fail with EPERM and are listed
after the value; what it writes to stdout and stderr is shown. A crash is
reported with its signal, faulting address and backtrace; your session goes on.
--allow-side-effects (or "set ttd sandbox off") lets the calls through.
--tracker picks how written pages are found (default "show ttd tracker"): diff
compares pages with the recording and cannot see writes that leave bytes equal.
--json prints the result as one JSON object instead.

Examples:
  call-at-time 3 list_length(head)
  call-at-time 5 (int)sqlite3_libversion_number()
  call-at-time --thread 4242 2 bump_tls(1)"""

    def __init__(self):
        super().__init__("call-at-time", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        try:
            opts = parse_args(arg)
        except ValueError as exc:
            raise gdb.GdbError(str(exc)) from None
        recording = state.current_recording()
        watch_recording(recording)
        session.use_engine(recording.path, recording.engine)
        result = run_call(recording.path, opts)
        if opts["json"]:
            for warning in result.warnings:
                gdb.write(warning + "\n", gdb.STDERR)
            gdb.write(json.dumps(result.to_json()) + "\n")
            return
        if result.status == "error":
            raise gdb.GdbError(result.error)
        print_result(result)
        if result.status in ("signalled", "timeout", "exited"):
            raise gdb.GdbError(result.error or result.status)


def _on_exit(_event) -> None:
    session.kill_all()


_watched: set[int] = set()


def watch_recording(recording) -> None:
    """Close the kept call-at-time process and the `ttd goto` inferior when the open
    recording's engine is disposed, i.e. on `ttd close` or `ttd open OTHER`
    (gdb_plugin/state.py), without that module knowing about sessions."""
    from sqlalchemy import event

    engine = recording.engine
    if id(engine) in _watched:
        return
    _watched.add(id(engine))
    path = recording.path

    @event.listens_for(engine, "engine_disposed")
    def _closed(_engine) -> None:
        _watched.discard(id(engine))
        close_sessions_of(path)


def close_sessions_of(db_path: str) -> None:
    goto = session.goto_session()
    if goto is not None and goto.info.db_path == db_path:
        session.close_goto()
    cached = session.cached_session()
    if cached is not None and cached.info.db_path == db_path:
        session.drop_cached()
    if session.goto_session() is None and session.cached_session() is None:
        session.dispose_engines()  # no file of the closed recording stays open


def register() -> None:
    CallAtTime()
    exiting = getattr(gdb.events, "gdb_exiting", None)  # GDB 12+
    if exiting is not None:
        exiting.connect(_on_exit)
