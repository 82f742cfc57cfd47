"""The `ttd` command line. Each subcommand is a thin adapter over a library function;
errors of the library (RecordingError and friends) become one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import sys

from .errors import RecordingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ttd", description="Time-travel debugging for GDB: record a process, then call "
        "its functions as they were at a past tick and see which pages they dirty.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("record", help="run PROGRAM under GDB and snapshot it at breakpoints")
    p.add_argument("-o", "--output", required=True, metavar="DB", help="recording to write")
    p.add_argument("--break", dest="breaks", action="append", default=[], metavar="LOCATION",
                   help="snapshot at every hit of LOCATION (repeatable)")
    p.add_argument("--hits", type=int, default=None, metavar="N",
                   help="at most N snapshots per breakpoint")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="give up when the program runs longer than S seconds (default 600)")
    p.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM ARGS...")
    p.set_defaults(run="snapshotdb.record:cli_record")

    p = sub.add_parser("import-core", help="import a core file as a one-snapshot recording")
    p.add_argument("db", metavar="DB")
    p.add_argument("core", metavar="CORE")
    p.add_argument("--exe", metavar="PATH", help="the executable (default: from the core)")
    p.set_defaults(run="snapshotdb.coreimport:cli_import_core")

    p = sub.add_parser("timeline", help="list the snapshots of a recording")
    p.add_argument("db", metavar="DB")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run="snapshotdb.timeline:cli_timeline")

    p = sub.add_parser("call", help="call EXPR in the process as it was at TICK")
    p.add_argument("db", metavar="DB", help="the recording")
    p.add_argument("--at", type=int, required=True, metavar="TICK",
                   help="the tick to call at (see ttd timeline)")
    p.add_argument("--thread", type=int, default=None, metavar="TID",
                   help="the thread whose registers and TLS the call uses "
                        "(default: the thread that stopped at TICK)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="interrupt a call still running after S seconds (default 10)")
    p.add_argument("--tracker", choices=("auto", "wp-async", "diff"), default="auto",
                   help="how written pages are found: diff compares pages with the "
                   "recording, for kernels without WP_ASYNC (default auto)")
    p.add_argument("--allow-side-effects", action="store_true",
                   help="no sandbox: the call may change files, signal processes, fork")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    # nargs="+", not REMAINDER: options may follow DB (ttd call DB --at 3 EXPR); the words
    # of EXPR are joined with spaces; put "--" before an EXPR that starts with "-"
    p.add_argument("expr", nargs="+", metavar="EXPR",
                   help="any expression GDB's call accepts; its words are joined with spaces")
    p.set_defaults(run="gdb_plugin.driver:cli_call")

    p = sub.add_parser("gdb", help="start gdb with the plugin loaded and DB open")
    p.add_argument("db", metavar="DB")
    p.add_argument("--at", type=int, default=None, metavar="TICK")
    p.set_defaults(run="gdb_plugin.driver:cli_gdb")
    return parser


def _resolve(spec: str):
    import importlib
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _resolve(args.run)(args) or 0
    except RecordingError as exc:
        print(f"ttd: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ttd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
