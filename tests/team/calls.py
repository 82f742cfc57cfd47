"""Calls on recordings, by `ttd call --json` and by `call-at-time` in one GDB, and what of
their results must be the same wherever the recording is."""

from __future__ import annotations

import json

from tests.conftest import run_ttd
from tests.e2e.harness import call, gdb_with_recording


def comparable(result: dict) -> dict:
    """What a call gives that does not depend on where the recording is or on timing: the
    value, how it ended, the pages it dirtied with their changes and names."""
    pages = [
        (p["address"], p["mapping"], p["kind"], p["changed"], p["changed_ranges"], p["symbol"])
        for p in result["dirtied_pages"]
    ]
    return {
        "status": result["status"],
        "value": result["value"],
        "signal": result["signal"],
        "error": result["error"],
        "pages": pages,
        "stdout": result["stdout"],
        "blocked": result["blocked_syscalls"],
    }


def ttd_call(db: str, tick: int, expr: str, *options: str) -> dict:
    """`ttd call DB --at TICK --json EXPR`: the JSON object (any exit status)."""
    done = run_ttd("call", str(db), "--at", str(tick), "--json", *options, expr, timeout=180)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout)


def gdb_calls(db: str, calls: list[tuple[int, str]]) -> list[dict]:
    """call-at-time TICK EXPR for each (tick, expr), in order, in one GDB session."""
    with gdb_with_recording(db) as gdb:
        return [call(gdb, tick, expr) for tick, expr in calls]
