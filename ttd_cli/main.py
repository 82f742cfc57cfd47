"""The `ttd` command line: the parser, and the dispatch to one module per verb.

Each verb module (record, call, sweep, timeline, import_core, gdb) has run(args) -> exit status
and imports what it needs when it runs: building the parser loads argparse and nothing
heavy, so `ttd --help` starts at once. Errors of the library (snapshotdb's
RecordingError) and of the command line (CliError) become one line on stderr, "ttd: ...",
and exit status 2; Ctrl-C is 130; a reader that went away (`ttd call ... | head -1`)
ends the process by SIGPIPE, as it ends other tools. Verbs that run GDB make this
process a child subreaper and end whatever GDB left behind (ttd_cli.children).
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import signal
import sys

VERBS = {
    "record": "record",
    "import-core": "import_core",
    "timeline": "timeline",
    "call": "call",
    "sweep": "sweep",
    "gdb": "gdb",
    "copy": "copy",
    "list": "list",
}
RUN_GDB = {"record", "call", "sweep"}  # verbs that drive a GDB of their own

CALL_EXIT_STATUS = """\
exit status:
  0  the call returned
  1  the call did not return: it was signalled, it exited, or it timed out
  2  an error before or around the call (bad input, no such recording, GDB failed)
With --json the JSON object is printed in all three cases."""

SWEEP_EXIT_STATUS = """\
exit status:
  0  every call returned
  1  some call did not return (its row says how it ended)
  2  an error before or around the sweep (bad input, no such recording, GDB failed)"""


def positive_seconds(text: str) -> float:
    """A --timeout: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be a finite number of seconds above 0, not '{text}'"
        )
    return value


def positive_int(text: str) -> int:
    """A count that must be at least 1 (--hits)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_thread_and_timeout(p: argparse.ArgumentParser, thread_help: str) -> None:
    """--thread TID and --timeout S of the verbs that call (call, sweep)."""
    p.add_argument(
        "--thread",
        type=int,
        default=None,
        metavar="TID",
        help=f"the thread whose registers and TLS {thread_help}",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=10.0,
        metavar="S",
        help="interrupt a call still running after S seconds (default 10)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttd",
        description="Time-travel debugging for GDB: record a process, then call "
        "its functions as they were at a past tick and see which pages they dirty.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("record", help="run PROGRAM under GDB and snapshot it at breakpoints")
    p.add_argument("-o", "--output", required=True, metavar="DB", help="recording to write")
    p.add_argument(
        "--break",
        dest="breaks",
        action="append",
        default=[],
        metavar="LOCATION",
        help="snapshot at every hit of LOCATION (repeatable)",
    )
    p.add_argument(
        "--hits",
        type=positive_int,
        default=None,
        metavar="N",
        help="at most N snapshots per breakpoint",
    )
    p.add_argument(
        "--tracker",
        choices=("auto", "wp-async", "scan"),
        default=None,
        help="how the pages written between snapshots are found: the kernel's "
        "write tracking (wp-async) or reading all memory (scan); auto: the "
        "kernel's where it can (default)",
    )
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=600.0,
        metavar="S",
        help="give up when the program runs longer than S seconds (default 600)",
    )
    p.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARGS...")

    p = sub.add_parser("import-core", help="import a core file as a one-snapshot recording")
    p.add_argument("db", metavar="DB")
    p.add_argument("core", metavar="CORE")
    p.add_argument("--exe", metavar="PATH", help="the executable (default: from the core)")

    p = sub.add_parser("timeline", help="list the snapshots of a recording")
    p.add_argument("db", metavar="DB")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = sub.add_parser(
        "call",
        help="call EXPR in the process as it was at TICK",
        epilog=CALL_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("db", metavar="DB", help="the recording")
    p.add_argument(
        "--at",
        type=int,
        required=True,
        metavar="TICK",
        help="the tick to call at (see ttd timeline)",
    )
    add_thread_and_timeout(p, "the call uses (default: the thread that stopped at TICK)")
    p.add_argument(
        "--tracker",
        choices=("auto", "wp-async", "diff"),
        default="auto",
        help="how written pages are found: diff compares pages with the "
        "recording, for kernels without WP_ASYNC (default auto)",
    )
    p.add_argument(
        "--allow-side-effects",
        action="store_true",
        help="no sandbox: the call may change files, signal processes, fork",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    # nargs="+", not REMAINDER: options may follow DB (ttd call DB --at 3 EXPR); the words
    # of EXPR are joined with spaces; put "--" before an EXPR that starts with "-"
    p.add_argument(
        "expr",
        nargs="+",
        metavar="EXPR",
        help="any expression GDB's call accepts; its words are joined with spaces",
    )

    p = sub.add_parser(
        "sweep",
        help="call EXPR at every tick (or those of --ticks)",
        epilog=SWEEP_EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("db", metavar="DB", help="the recording")
    p.add_argument(
        "--ticks",
        default="all",
        metavar="SPEC",
        help="3, 3-40, 3- (to the last), 1,5,9 or all (default)",
    )
    p.add_argument(
        "--changes",
        action="store_true",
        help="only the ticks whose value differs from the previous tick's",
    )
    add_thread_and_timeout(p, "each call uses (default: the thread that stopped at each tick)")
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--json", action="store_true", help="a JSON list, one `ttd call --json` object per tick"
    )
    out.add_argument(
        "--csv", action="store_true", help="CSV: tick,status,value,pages_changed,error"
    )
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        default=None,
        help="draw the value against the tick into FILE.png (numeric values)",
    )
    p.add_argument(
        "expr",
        nargs="+",
        metavar="EXPR",
        help="any expression GDB's call accepts; its words are joined with spaces",
    )

    p = sub.add_parser("gdb", help="start gdb with the plugin loaded and DB open")
    p.add_argument("db", metavar="DB")
    p.add_argument("--at", type=int, default=None, metavar="TICK")

    p = sub.add_parser(
        "copy",
        help="copy a recording between a SQLite file and a server "
        "database (postgresql://...?recording=NAME), either way",
    )
    p.add_argument("src", metavar="SRC")
    p.add_argument(
        "dst",
        metavar="DST",
        help="a new file or recording; an interrupted copy to DST is finished by the same command",
    )

    p = sub.add_parser("list", help="list the recordings of a server database")
    p.add_argument("url", metavar="URL", help="postgresql://... (or a SQLite file)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        status = run(build_parser().parse_args(argv))
        sys.stdout.flush()  # here, not at exit: a reader gone is seen below
        return status
    except BrokenPipeError:
        end_by_sigpipe()
        return 141  # not reached


def run(args: argparse.Namespace) -> int:
    """Run the verb; a one-line message and status 2 for what went wrong in it."""
    from gdb_plugin.report import printable
    from snapshotdb.errors import RecordingError

    from . import children
    from .errors import CliError

    runs_gdb = args.command in RUN_GDB
    if runs_gdb:
        children.become_subreaper()
    try:
        verb = importlib.import_module(f"ttd_cli.{VERBS[args.command]}")
        return verb.run(args) or 0
    except (RecordingError, CliError) as exc:
        print(f"ttd: {printable(str(exc), keep='')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ttd: interrupted", file=sys.stderr)
        return 130
    finally:
        if runs_gdb:
            children.end_descendants()


def end_by_sigpipe() -> None:
    """End as other tools end when their reader has gone: killed by SIGPIPE, quietly
    (stdout now leads nowhere, so the interpreter's last flush cannot fail again)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)


if __name__ == "__main__":
    sys.exit(main())
