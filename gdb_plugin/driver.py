"""`ttd call` and `ttd gdb` from a shell: GDB with the plugin, driven through pygdbmi.

    ttd call DB --at TICK [--thread TID] [--timeout S] [--tracker T]
             [--allow-side-effects] [--json] EXPR
        gdb --interpreter=mi3: source the plugin, ttd open DB,
        call-at-time --json ... -> one JSON object (DESIGN.md), printed or summarized
    ttd gdb DB [--at TICK]
        an interactive gdb with the plugin loaded, DB open (and at TICK: ttd goto)

Importable without GDB. MiGdb is also what the end-to-end tests and the benchmark use.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from snapshotdb.db import open_engine
from snapshotdb.errors import RecordingError

PLUGIN = Path(__file__).resolve().parent / "ttd.py"


class GdbFailed(RecordingError):
    """GDB answered a command with an error, or did not answer in time."""


class MiGdb:
    """One GDB process in MI mode; run() sends a CLI or MI command and waits for its result."""

    def __init__(self, gdb_path: str = "gdb", extra_args: list[str] | None = None) -> None:
        from pygdbmi.gdbcontroller import GdbController

        if shutil.which(gdb_path) is None:
            raise GdbFailed(f"{gdb_path} is not installed: apt-get install gdb")
        command = [gdb_path, "--nx", "--quiet", "--interpreter=mi3", *(extra_args or [])]
        self.controller = GdbController(command=command,
                                        time_to_check_for_additional_output_sec=0.02)
        self._pending: list[dict] = []

    def _records(self, timeout_s: float) -> list[dict]:
        if self._pending:
            records, self._pending = self._pending, []
            return records
        return self.controller.get_gdb_response(timeout_sec=timeout_s,
                                                raise_error_on_timeout=False)

    def run(self, command: str, timeout_s: float = 60.0) -> tuple[dict, str]:
        """(result record, console and log text). Raises GdbFailed when GDB does not answer."""
        self.controller.write(command, read_response=False)
        return self.wait(lambda r: r["type"] == "result", command, timeout_s)

    def wait(self, done, what: str, timeout_s: float = 60.0) -> tuple[dict, str]:
        """Read records until done(record); (that record, console and log text before it).
        Records after it stay for the next read."""
        deadline = time.monotonic() + timeout_s
        text: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GdbFailed(f"GDB did not answer {what!r} within {timeout_s:g} s.")
            records = self._records(min(remaining, 1.0))
            for i, record in enumerate(records):
                if record["type"] in ("console", "log", "target", "output") and record["payload"]:
                    text.append(str(record["payload"]))
                if done(record):
                    self._pending = records[i + 1:] + self._pending
                    return record, "".join(text)

    def wait_stopped(self, timeout_s: float = 60.0) -> dict:
        """After run/continue: the *stopped record's payload."""
        record, _ = self.wait(lambda r: r["type"] == "notify" and r["message"] == "stopped",
                              "*stopped", timeout_s)
        return record["payload"]

    def cli(self, command: str, timeout_s: float = 60.0) -> str:
        """Run a CLI command; its console output, or GdbFailed with GDB's message."""
        record, text = self.run(command, timeout_s)
        if record["message"] == "error":
            message = record["payload"].get("msg", "error")
            if message == "Error while executing Python code.":  # the cause is logged before
                causes = [line for line in text.splitlines()
                          if line.strip() and line.strip() != message]
                message += f" ({causes[-1].strip()})" if causes else ""
            raise GdbFailed(message)
        return text

    def close(self) -> None:
        try:
            self.controller.exit()
        except Exception:
            pass

    def __enter__(self) -> MiGdb:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_json_line(text: str) -> dict:
    """The JSON object call-at-time --json printed among other console output."""
    for line in text.splitlines():
        if line.startswith('{"tick"'):
            return json.loads(line)
    raise GdbFailed("call-at-time printed no result.")


def file_warnings(text: str) -> list[str]:
    """call-at-time's warnings in GDB's output: local files (build-id, missing), the
    sandbox off, the tracker's fallback."""
    return [line for line in text.splitlines()
            if line.startswith("warning: ") and ("build-id" in line or "is missing" in line
                                                 or "sandbox" in line or "tracker" in line)]


def call_json(db: str, tick: int, expr: str, tid: int | None = None,
              timeout_s: float = 10.0, sandbox: bool = True, tracker: str = "auto") -> dict:
    """Run one call-at-time in a fresh GDB; the DESIGN.md JSON object. The warnings
    (local files, sandbox off, tracker fallback) go to stderr."""
    open_engine(db, readonly=True).dispose()  # missing / not a recording: one-line error
    options = f"--timeout {timeout_s:g} --tracker {tracker} --json"
    if not sandbox:
        options = "--allow-side-effects " + options
    if tid is not None:
        options = f"--thread {tid} " + options
    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        gdb.cli(f"ttd open {shlex.quote(os.path.abspath(db))}")
        text = gdb.cli(f"call-at-time {options} {tick} {expr}", timeout_s=timeout_s + 60)
    for warning in file_warnings(text):
        print(f"ttd: {warning}", file=sys.stderr)
    return parse_json_line(text)


def format_result(obj: dict) -> str:
    """The human form of a call result: the value line, output, the summary."""
    from gdb_plugin.report import blocked_summary

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
    changed = [p for p in obj["dirtied_pages"] if p["changed"]]
    lines.append(f"{len(obj['dirtied_pages'])} pages written, {len(changed)} changed:")
    for p in changed:
        nbytes = sum(r["length"] for r in p["changed_ranges"])
        lines.append(f"  {p['address']}  {p['kind']:<13}  {nbytes:>5} bytes  "
                     f"{p['symbol'] or '-'}  {p['mapping']}")
    lines.extend(obj["notes"])
    return "\n".join(lines)


def cli_call(args) -> int:
    expr = " ".join(args.expr).strip()
    if expr.startswith("-- "):
        expr = expr[3:]
    if not expr:
        raise GdbFailed("No expression to call: ttd call DB --at TICK EXPR")
    obj = call_json(args.db, args.at, expr, args.thread, args.timeout,
                    sandbox=not args.allow_side_effects, tracker=args.tracker)
    if args.json:
        print(json.dumps(obj))
    elif obj["status"] == "error":
        print(f"ttd: {obj['error']}", file=sys.stderr)
    else:
        print(format_result(obj))
        if obj["stderr"]:
            print(obj["stderr"].rstrip("\n"), file=sys.stderr)
    return {"returned": 0, "error": 2}.get(obj["status"], 1)


def cli_gdb(args) -> int:
    open_engine(args.db, readonly=True).dispose()
    if shutil.which("gdb") is None:
        raise GdbFailed("gdb is not installed: apt-get install gdb")
    argv = ["gdb", "-q", "-ex", f"source {PLUGIN}", "-ex",
            f"ttd open {shlex.quote(os.path.abspath(args.db))}"]
    if args.at is not None:
        argv += ["-ex", f"ttd goto {args.at}"]
    os.execvp("gdb", argv)
    return 0  # not reached
