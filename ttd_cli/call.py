"""`ttd call DB --at TICK [--thread TID] [--timeout S] [--tracker T]
            [--allow-side-effects] [--json] EXPR`

A fresh GDB (ttd_cli.mi) loads the plugin, opens DB and runs `call-at-time --json`;
the JSON object of DESIGN.md is printed as it is (--json) or as text: the value, what
the call printed, where it stopped, what the sandbox blocked, one line on the pages it
wrote and a row for each page it changed (at most MAX_ROWS). Text that came from the
call or the recording goes through report.printable(); JSON escapes by itself.
"""

from __future__ import annotations

import json
import sys

from gdb_plugin.report import DirtiedPage, blocked_summary, printable, summary
from gdb_plugin.sweep import failed_json
from snapshotdb.errors import RecordingError

from .errors import CliError
from .plugin import gdb_with_recording

MAX_ROWS = 20  # changed pages listed in the text output; --json has them all
GDB_MARGIN_S = 60  # how much longer than the call's own timeout GDB may take to answer


def run(args) -> int:
    try:
        expr = expression(args.expr)
        obj = call_json(
            args.db,
            args.at,
            expr,
            args.thread,
            args.timeout,
            sandbox=not args.allow_side_effects,
            tracker=args.tracker,
        )
    except (RecordingError, CliError) as exc:
        if args.json:
            print(json.dumps(failed_json(args.at, " ".join(args.expr), str(exc))))
        raise
    if args.json:
        print(json.dumps(obj))
    elif obj["status"] == "error":
        print(f"ttd: {printable(obj['error'] or 'error')}", file=sys.stderr)
    else:
        print(format_result(obj))
        if obj["stderr"]:
            print(printable(obj["stderr"].rstrip("\n")), file=sys.stderr)
    return {"returned": 0, "error": 2}.get(obj["status"], 1)


def expression(words: list[str]) -> str:
    """EXPR from its words (joined with spaces). A control character is refused: after a
    line break GDB would run the rest as a command of its own (`shell ...`)."""
    expr = " ".join(words).strip()
    if expr.startswith("-- "):
        expr = expr[3:]
    if not expr:
        raise CliError("No expression to call: ttd call DB --at TICK EXPR")
    at = first_control(expr)
    if at is not None:
        raise CliError(
            f"EXPR holds the control character {printable(expr[at], keep='')} at offset "
            f"{at}: GDB reads an expression as one line. In a string literal, write it as "
            'an escape ("\\n").'
        )
    return expr


def call_json(
    db: str,
    tick: int,
    expr: str,
    tid: int | None = None,
    timeout_s: float = 10.0,
    sandbox: bool = True,
    tracker: str = "auto",
) -> dict:
    """Run one call-at-time in a fresh GDB; the DESIGN.md JSON object. The warnings
    (local files, sandbox off, tracker fallback) go to stderr."""
    check_recording(db)
    options = f"--timeout {timeout_s!r} --tracker {tracker} --json"
    if not sandbox:
        options = "--allow-side-effects " + options
    if tid is not None:
        options = f"--thread {tid} " + options
    with gdb_with_recording(db) as gdb:
        text = gdb.cli(f"call-at-time {options} {tick} {expr}", timeout_s + GDB_MARGIN_S)
    for warning in file_warnings(text):
        print(f"ttd: {printable(warning)}", file=sys.stderr)
    return parse_json_line(text)


def check_recording(db: str) -> None:
    """A missing file or one that is not a recording is one line, before GDB starts; so is
    a recording whose executable path holds a control character: the plugin gives that
    path to GDB's `file`, and after a line break GDB would run the rest as a command."""
    from snapshotdb import queries
    from snapshotdb.db import open_recording
    from snapshotdb.errors import SnapshotNotFound

    with open_recording(db) as recording, recording.session() as session:
        try:
            exe_path = queries.recording(session).exe_path
        except SnapshotNotFound:
            return  # empty: the plugin says so
    at = first_control(exe_path)
    if at is not None:
        raise CliError(
            f"The recording's executable path '{printable(exe_path, keep='')}' "
            f"holds the control character {printable(exe_path[at], keep='')}: "
            "refused (GDB would run what follows a line break as a command)."
        )


def first_control(text: str) -> int | None:
    """Where the first ASCII control character of `text` (tab aside) is, or None."""
    for offset, ch in enumerate(text):
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            return offset
    return None


def parse_json_line(text: str) -> dict:
    """The JSON object call-at-time --json printed among other console output."""
    for line in text.splitlines():
        if line.startswith('{"tick"'):
            return json.loads(line)
    raise CliError("call-at-time printed no result.")


def file_warnings(text: str) -> list[str]:
    """call-at-time's warnings in GDB's output: local files (build-id, missing), the
    sandbox off, the tracker's fallback."""
    return [
        line
        for line in text.splitlines()
        if line.startswith("warning: ")
        and ("build-id" in line or "is missing" in line or "sandbox" in line or "tracker" in line)
    ]


def format_result(obj: dict) -> str:
    """The text form of a call result: the value line, output, where it stopped, what
    was blocked, the pages; control characters escaped."""
    lines = []
    if obj["status"] == "returned":
        if obj["value"]:
            lines.append(f"{obj['expr']} = {obj['value']}")
    else:
        lines.append(f"{obj['status']}: {obj['error']}")
    if obj["stdout"]:
        lines.append(obj["stdout"].rstrip("\n"))
    if obj["backtrace"]:
        lines.append("Backtrace where it stopped:")
        lines.extend("  " + frame for frame in obj["backtrace"])
    blocked = blocked_summary(obj["blocked_syscalls"])
    if blocked:
        lines.append(blocked)
    lines.extend(page_lines(obj["dirtied_pages"]))
    lines.extend(obj["notes"])
    return printable("\n".join(lines))


def page_lines(pages: list[dict]) -> list[str]:
    """The summary line, then a row per changed page (at most MAX_ROWS, then how many
    more and where to see them)."""
    changed = [p for p in pages if p["changed"]]
    lines = [summary([_page(p) for p in pages])]
    for p in changed[:MAX_ROWS]:
        nbytes = sum(r["length"] for r in p["changed_ranges"])
        lines.append(
            f"  {p['address']}  {p['kind']:<13}  {nbytes:>5} bytes  "
            f"{p['symbol'] or '-'}  {p['mapping']}"
        )
    if len(changed) > MAX_ROWS:
        lines.append(f"  {len(changed) - MAX_ROWS} more: use --json or info dirtied-pages --all")
    return lines


def _page(p: dict) -> DirtiedPage:
    """A page of the JSON as report.summary counts it (kind, changed)."""
    ranges = [(r["offset"], r["length"]) for r in p["changed_ranges"]]
    return DirtiedPage(
        int(p["address"], 16), p["mapping"], p["kind"], b"", b"", ranges, p["symbol"]
    )
