"""The `ttd` prefix command and its recording subcommands: open, close, timeline, snapshot.

Other command modules add `ttd goto` and friends as `gdb.Command("ttd goto", ...)`
after this module registered the prefix; they find the open recording with
gdb_plugin.state.current_recording().
"""
from __future__ import annotations

import argparse
import os

import gdb

from gdb_plugin import state
from snapshotdb.errors import RecordingError

REASONS = ("manual", "breakpoint", "signal", "exit")


class Ttd(gdb.Command):
    """Time-travel debugging: record snapshots of the inferior, inspect the past.

Usage: ttd SUBCOMMAND ARGS...
Type "help ttd" followed by a subcommand name for its documentation."""

    def __init__(self):
        super().__init__("ttd", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE, prefix=True)


class TtdOpen(gdb.Command):
    """Open a recording database.

Usage: ttd open [--create] DB
DB is an SQLite file or an SQLAlchemy URL. With --create, a new empty recording
is made when DB does not exist. Later "ttd snapshot" commands add to it.

Examples:
  ttd open /tmp/bank.db
  ttd open --create /tmp/new.db"""

    def __init__(self):
        super().__init__("ttd open", gdb.COMMAND_RUNNING, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        create = bool(argv) and argv[0] == "--create"
        argv = argv[1:] if create else argv
        if len(argv) != 1:
            raise gdb.GdbError("Usage: ttd open [--create] DB")
        try:
            recording, created = state.open_recording(argv[0], create=create)
        except RecordingError as exc:
            raise gdb.GdbError(str(exc)) from None
        verb = "Created new" if created else "Opened"
        gdb.write(f"{verb} recording '{recording.path}'.\n")


class TtdClose(gdb.Command):
    """Close the open recording.

Usage: ttd close"""

    def __init__(self):
        super().__init__("ttd close", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        if not state.close_recording():
            raise gdb.GdbError(state.NO_RECORDING)
        gdb.write("Recording closed.\n")


class TtdTimeline(gdb.Command):
    """List the snapshots of the open recording.

Usage: ttd timeline
One line per snapshot: TICK REASON THREAD PC WHERE."""

    def __init__(self):
        super().__init__("ttd timeline", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        from snapshotdb import timeline
        recording = state.current_recording()
        try:
            entries = timeline.load(recording.engine)
        except RecordingError as exc:
            raise gdb.GdbError(str(exc)) from None
        gdb.write(timeline.format_table(entries) + "\n")


def parse_snapshot_args(arg: str) -> argparse.Namespace:
    """Parse `ttd snapshot` arguments; raise ValueError with a one-line message."""
    parser = _SnapshotParser(prog="ttd snapshot", add_help=False)
    parser.add_argument("--reason", choices=REASONS, default="manual")
    parser.add_argument("--signal", default=None)
    parser.add_argument("--tracker", default="auto")  # checked by snapshotdb.capture
    parser.add_argument("--stop-tracking", action="store_true")
    parser.add_argument("note", nargs="*")
    args = parser.parse_args(gdb.string_to_argv(arg))
    args.note = " ".join(args.note) or None
    return args


class _SnapshotParser(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(f"ttd snapshot: {message}")


class TtdSnapshot(gdb.Command):
    """Snapshot the stopped inferior into the open recording: all threads, memory, registers.

Usage: ttd snapshot [--reason REASON] [--signal SIGNAL] [--tracker TRACKER] [NOTE...]
       ttd snapshot --stop-tracking
REASON is manual (the default), breakpoint, signal or exit; "ttd record" sets it.
NOTE is free text shown by "ttd timeline". The inferior must be a live native
process (not a core file or a remote target), stopped in all-stop mode.
TRACKER says how the pages written since the last snapshot are found: auto (the
default) asks the kernel (userfaultfd write-protection, armed at the first
snapshot) where it can and reads all memory otherwise; wp-async insists on the
kernel; scan reads all memory and compares it with the last snapshot's.
--stop-tracking takes no snapshot: it releases the kernel's tracking of this
process for good, before the program makes a userfaultfd of its own ("ttd
record" does it when the program calls userfaultfd).

Examples:
  ttd snapshot
  ttd snapshot before the transfer"""

    def __init__(self):
        super().__init__("ttd snapshot", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        try:
            args = parse_snapshot_args(arg)
        except ValueError as exc:
            raise gdb.GdbError(str(exc)) from None
        recording = state.current_recording()
        pid = _live_native_pid()
        try:
            if args.stop_tracking:
                recording.writer(pid).stop_tracking("the program uses userfaultfd itself")
                gdb.write(f"Write tracking of process {pid} stopped.\n")
                return
            stats = snapshot_inferior(recording, pid, args)
        except RecordingError as exc:
            raise gdb.GdbError(str(exc)) from None
        for note in stats.notes:
            gdb.write(f"ttd: {note}\n")
        gdb.write(f"Snapshot tick {stats.tick}: {stats.versions_written} pages changed, "
                  f"{stats.bytes_scanned >> 10} KiB scanned.\n")


def _live_native_pid() -> int:
    inferior = gdb.selected_inferior()
    if inferior.pid == 0 or gdb.selected_thread() is None:
        raise gdb.GdbError("The program is not being run.")
    if inferior.connection is not None and inferior.connection.type != "native":
        raise gdb.GdbError(
            f"ttd snapshot needs a native process; this inferior runs on a "
            f"'{inferior.connection.type}' target.")
    if gdb.selected_thread().is_running():
        raise gdb.GdbError("Cannot take a snapshot while the selected thread is running.")
    # A snapshot reads memory from /proc: inserted breakpoints would show as int3 bytes,
    # and in non-stop mode other threads would change memory while it is read.
    if gdb.parameter("breakpoint always-inserted"):
        raise gdb.GdbError("ttd snapshot needs breakpoints out of memory while stopped: "
                           "\"set breakpoint always-inserted off\".")
    if gdb.parameter("non-stop"):
        raise gdb.GdbError("ttd snapshot needs all-stop mode: \"set non-stop off\" before "
                           "running the program.")
    if not os.path.exists(f"/proc/{inferior.pid}"):
        raise gdb.GdbError(f"No process {inferior.pid}.")
    return inferior.pid


def _where() -> tuple[str | None, str | None, int | None]:
    """(function, file, line) of the selected thread's newest frame, as far as known."""
    try:
        frame = gdb.newest_frame()
        sal = frame.find_sal()
    except gdb.error:
        return None, None, None
    filename = sal.symtab.filename if sal.symtab is not None else None
    line = sal.line if sal.symtab is not None and sal.line else None
    return frame.name(), filename, line


def snapshot_inferior(recording, pid: int, args):
    from snapshotdb.capture import snapshot_live
    thread = gdb.selected_thread()
    stop_tid = thread.ptid[1] or pid
    function, filename, line = _where()
    return snapshot_live(recording.writer(pid), pid, reason=args.reason, stop_tid=stop_tid,
                         function=function, file=filename, line=line, signal=args.signal,
                         note=args.note, tracker=args.tracker)


def register() -> None:
    Ttd()
    TtdOpen()
    TtdClose()
    TtdTimeline()
    TtdSnapshot()
