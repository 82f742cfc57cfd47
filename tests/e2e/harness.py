"""Shared by the end-to-end tests: a program run under real GDB (the user's inferior),
snapshotted at breakpoint hits with `ttd snapshot`, with GDB's own live `call` taken
as the reference at each hit (tests/e2e/live_ref.py), then call-at-time on the
recording in the same GDB session."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import PLUGIN, require
from ttd_cli.mi import GdbFailed, MiGdb

HERE = Path(__file__).resolve().parent
GDB_TIMEOUT_S = 60


@dataclass
class Call:
    """One expression to check: thread None = the thread that stopped, else GDB's thread number."""

    expr: str
    thread: int | None = None


@dataclass
class Recorded:
    gdb: MiGdb
    db: Path
    ticks: list[int]
    live: dict = field(default_factory=dict)  # (tick, expr, thread) -> {"value", "changed", "tid"}


@contextlib.contextmanager
def gdb_with_recording(db):
    """A fresh GDB in MI mode with the plugin loaded and the recording `db` open."""
    with MiGdb() as gdb:
        gdb.cli("set confirm off")
        gdb.cli(f"source {PLUGIN}")
        gdb.cli(f"ttd open {db}")
        yield gdb


def require_tools() -> None:
    require(shutil.which("gdb") is not None, "gdb is not installed")
    require(shutil.which("gdbserver") is not None, "gdbserver is not installed")
    require(Path("/proc/sys/vm/unprivileged_userfaultfd").exists(), "no userfaultfd")


def marked_json(text: str, mark: str) -> dict:
    for line in text.splitlines():
        if mark in line:  # the program's own output may precede it on the line
            return json.loads(line.split(mark, 1)[1])
    raise AssertionError(f"no {mark!r} line in GDB output:\n{text}")


def result_json(text: str) -> dict:
    """The JSON object call-at-time --json printed among GDB's other console output (the
    called program's own output may precede it on its line)."""
    for line in text.splitlines():
        if '{"tick"' in line:
            return json.loads(line[line.index('{"tick"') :])
    raise AssertionError(f"call-at-time printed no JSON:\n{text}")


def call(
    gdb: MiGdb, tick: int, expr: str, options: str = "", timeout_s: float = GDB_TIMEOUT_S
) -> dict:
    """call-at-time [OPTIONS] --json TICK EXPR; its JSON object."""
    return result_json(gdb.cli(f"call-at-time {options} --json {tick} {expr}", timeout_s))


def call_json(gdb: MiGdb, tick: int, expr: str, tid: int | None = None) -> dict:
    thread = f"--thread {tid} " if tid is not None else ""
    return call(gdb, tick, expr, f"{thread}--timeout 20")


def value_line(text: str) -> str:
    """The value as GDB printed it into the history ("$N = VALUE"): VALUE."""
    lines = [line for line in text.splitlines() if re.match(r"^\$\d+ = ", line)]
    assert len(lines) == 1, f"not one value line in:\n{text}"
    return lines[0].split(" = ", 1)[1]


def assert_matches_live(recorded: Recorded, tick: int, call: Call) -> None:
    """call-at-time gives the value and the changed pages of GDB's live call at that stop."""
    live = recorded.live[(tick, call.expr, call.thread)]
    got = call_json(recorded.gdb, tick, call.expr, live["tid"] if call.thread else None)
    assert got["status"] == "returned", got["error"]
    assert got["value"] == live["value"]
    changed = [p["address"] for p in got["dirtied_pages"] if p["changed"]]
    assert changed == live["changed"]


def assert_calls_leave_user_untouched(recorded: Recorded, exprs: list[str]) -> None:
    """Each of `exprs` at every recorded tick returns (the process kept, then replaced),
    and the user's inferior, breakpoints and settings are as they were when recorded."""
    for tick in recorded.ticks:
        for expr in exprs:
            got = call_json(recorded.gdb, tick, expr)
            assert got["status"] == "returned", got["error"]
    assert user_state(recorded.gdb) == recorded.before


def record_with_live_reference(
    db: Path, argv: list[str], location: str, hits: int, calls: list[Call]
) -> Recorded:
    """Run argv under GDB, snapshot at the first `hits` hits of `location`, and at each hit
    take the live reference of every call. The program stays stopped at the last hit."""
    gdb = MiGdb()
    try:
        gdb.cli("set confirm off")
        gdb.cli("set pagination off")
        gdb.cli(f"file {argv[0]}")
        if len(argv) > 1:
            gdb.cli("set args " + " ".join(_gdb_quote(a) for a in argv[1:]))
        gdb.cli(f"source {PLUGIN}")
        gdb.cli(f"python import sys; sys.path.insert(0, '{HERE}'); import live_ref")
        gdb.cli(f"ttd open --create {db}")
        gdb.cli(f"break {location}")
        recorded = Recorded(gdb, db, [])
        for hit in range(hits):
            record, _ = gdb.run("run" if hit == 0 else "continue", GDB_TIMEOUT_S)
            _wait_stopped(gdb)
            text = gdb.cli("ttd snapshot")
            tick = int(text.split("Snapshot tick ")[1].split(":")[0])
            recorded.ticks.append(tick)
            for call in calls:
                thread = "None" if call.thread is None else str(call.thread)
                text = gdb.cli(f"python live_ref.call({call.expr!r}, {thread})", GDB_TIMEOUT_S)
                recorded.live[(tick, call.expr, call.thread)] = marked_json(text, live_ref_mark())
        return recorded
    except BaseException:
        gdb.close()
        raise


def live_ref_mark() -> str:
    return "LIVE_REF "


def _gdb_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


def _wait_stopped(gdb: MiGdb) -> None:
    payload = gdb.wait_stopped(GDB_TIMEOUT_S)
    if payload.get("reason", "").startswith("exited"):
        raise GdbFailed(f"the program exited before the breakpoint: {payload['reason']}")


def end_sessions(gdb: MiGdb, method: str) -> str:
    """Run the plugin's Sessions.METHOD() in GDB's Python: close_all (the kept and the goto
    processes), close_goto, drop_kept (the process kept for repeated calls); what it
    returned, as text."""
    text = gdb.cli(
        "python from gdb_plugin.commands import context; "
        f"print('SESSIONS', context().sessions.{method}())"
    )
    return text.split("SESSIONS ", 1)[1].split()[0]


def user_state(gdb: MiGdb) -> dict:
    """What must not change in the user's inferior: registers, memory, selection,
    breakpoints, GDB's settings; and GDB says nothing about them that it did not say
    before (no warnings about the user's breakpoints). The settings are read while a
    temporary inferior may still be kept for repeated calls (they must be the user's all
    the same); then it is closed."""
    settings = "".join(
        gdb.cli(f"show {name}")
        for name in ("sysroot", "confirm", "unwindonsignal", "suppress-cli-notifications")
    )
    settings += gdb.cli("info signals SIGSTOP") + gdb.cli("info signals SIGINT")
    # GDB's thread runs beside the process during a call (gdb_plugin/one_cpu.py), never after
    settings += gdb.cli("python import os; print('CPUS', sorted(os.sched_getaffinity(0)))")
    end_sessions(gdb, "close_all")
    regs = gdb.cli("info registers rip rsp rbp rax rdi rsi fs_base")
    frame = gdb.cli("frame")
    text = gdb.cli(
        "python import hashlib, gdb; "
        "pages = live_ref.snapshot_pages(gdb.selected_inferior().pid); "
        "print('MEMHASH', hashlib.sha256("
        "b''.join(pages[a] for a in sorted(pages))).hexdigest())"
    )
    memhash = [line for line in text.splitlines() if line.startswith("MEMHASH")][0]
    return {
        "regs": regs,
        "frame": frame,
        "memory": memhash,
        "inferiors": gdb.cli("info inferiors"),
        "thread": gdb.cli("thread"),
        "breakpoints": gdb.cli("info breakpoints"),
        "settings": settings,
    }
