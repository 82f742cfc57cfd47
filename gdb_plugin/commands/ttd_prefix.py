"""The `ttd` prefix command and its recording subcommands: open, close, timeline, snapshot.

Other command modules add `ttd goto` and friends as `gdb.Command("ttd goto", ...)`
after this module registered the prefix; the open recording is the Context's
(gdb_plugin/context.py).
"""
from __future__ import annotations

import os

import gdb

from gdb_plugin import args
from gdb_plugin.commands import parsed, user_errors
from gdb_plugin.errors import NO_RECORDING
from gdb_plugin.report import printable


class Ttd(gdb.Command):
    """Time-travel debugging: record snapshots of the inferior, inspect the past.

Usage: ttd SUBCOMMAND ARGS...
Type "help ttd" followed by a subcommand name for its documentation."""

    def __init__(self):
        super().__init__("ttd", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE, prefix=True)


RECORDING_ARCH = "i386:x86-64"  # what snapshotdb records (x86-64 processes)


class RecordingArchitecture:
    """GDB's architecture while a recording is open. With no program loaded GDB's
    default is i386, which cuts addresses typed by the user (info dirtied-pages
    0x55555555a190) to 32 bits. `ttd open` sets the recording's architecture when the
    user has left it on "auto" with no program of theirs; `ttd close` puts "auto" back
    if it was set here. A user's own program keeps its architecture."""

    def __init__(self) -> None:
        self.changed = False

    def apply(self) -> None:
        if self.changed or gdb.current_progspace().filename is not None:
            return
        if '"auto"' not in gdb.execute("show architecture", to_string=True):
            return  # the user chose one
        if gdb.selected_inferior().architecture().name() != RECORDING_ARCH:
            gdb.execute(f"set architecture {RECORDING_ARCH}", to_string=True)
            self.changed = True

    def restore(self) -> None:
        if self.changed:
            self.changed = False
            gdb.execute("set architecture auto", to_string=True)


class TtdOpen(gdb.Command):
    """Open a recording database.

Usage: ttd open [--create] DB
DB is an SQLite file or an SQLAlchemy URL. With --create, a new empty recording
is made when DB does not exist. Later "ttd snapshot" commands add to it.

Examples:
  ttd open /tmp/bank.db
  ttd open --create /tmp/new.db"""

    def __init__(self, ctx, arch: RecordingArchitecture):
        super().__init__("ttd open", gdb.COMMAND_RUNNING, gdb.COMPLETE_FILENAME)
        self.ctx = ctx
        self.arch = arch

    def invoke(self, arg, from_tty):
        name, create = parsed(args.parse_open, arg)
        with user_errors():
            created = self.ctx.open(name, create=create)
        self.arch.apply()
        verb = "Created new" if created else "Opened"
        gdb.write(printable(f"{verb} recording '{self.ctx.recording.name}'.", keep="") + "\n")


class TtdClose(gdb.Command):
    """Close the open recording.

Usage: ttd close"""

    def __init__(self, ctx, arch: RecordingArchitecture):
        super().__init__("ttd close", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)
        self.ctx = ctx
        self.arch = arch

    def invoke(self, arg, from_tty):
        if not self.ctx.close():
            raise gdb.GdbError(NO_RECORDING)
        self.arch.restore()
        gdb.write("Recording closed.\n")


class TtdTimeline(gdb.Command):
    """List the snapshots of the open recording.

Usage: ttd timeline
One line per snapshot: TICK REASON THREAD THREADS PC WHERE (THREAD: the one that
stopped; THREADS: how many were recorded)."""

    def __init__(self, ctx):
        super().__init__("ttd timeline", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)
        self.ctx = ctx

    def invoke(self, arg, from_tty):
        with user_errors():
            from snapshotdb import timeline

            entries = timeline.load(self.ctx.require_recording().engine)
        gdb.write(printable(timeline.format_table(entries), keep="\n") + "\n")


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

    def __init__(self, ctx):
        super().__init__("ttd snapshot", gdb.COMMAND_RUNNING, gdb.COMPLETE_NONE)
        self.ctx = ctx

    def invoke(self, arg, from_tty):
        options = parsed(args.parse_snapshot, arg)
        with user_errors():
            self.ctx.require_recording()
        pid = _live_native_pid()
        with user_errors():
            if options.stop_tracking:
                self.ctx.writer(pid).stop_tracking("the program uses userfaultfd itself")
                gdb.write(f"Write tracking of process {pid} stopped.\n")
                return
            stats = snapshot_inferior(self.ctx.writer(pid), pid, options)
        for note in stats.notes:
            gdb.write(printable(f"ttd: {note}") + "\n")
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


def snapshot_inferior(writer, pid: int, options):
    from snapshotdb.capture import snapshot_live

    thread = gdb.selected_thread()
    stop_tid = thread.ptid[1] or pid
    function, filename, line = _where()
    return snapshot_live(writer, pid, reason=options.reason, stop_tid=stop_tid,
                         function=function, file=filename, line=line, signal=options.signal,
                         note=options.note, tracker=options.tracker)


def register(ctx) -> None:
    arch = RecordingArchitecture()
    Ttd()
    TtdOpen(ctx, arch)
    TtdClose(ctx, arch)
    TtdTimeline(ctx)
    TtdSnapshot(ctx)
