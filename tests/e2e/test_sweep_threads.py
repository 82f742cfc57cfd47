"""ttd sweep --thread: each tick's call on the thread asked for, with its TLS, on
tests/e2e/targets.c (the main thread's tls_counter 1, 3, 6 at ticks 1-3, the worker's
100); a tick where that thread was not recorded is a row with the reason."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import call_json

pytestmark = pytest.mark.timeout(300)


def _sweep(gdb, options: str) -> list[dict]:
    text = gdb.cli(f"ttd sweep --json {options}", 300)
    return json.loads(next(line for line in text.splitlines() if line.startswith('[{"tick"')))


def test_sweep_on_a_thread(plugin_gdb):
    gdb = plugin_gdb
    worker = int(call_json(gdb, 1, "worker_tid")["value"])
    assert [o["value"] for o in _sweep(gdb, "--ticks 1-3 bump_tls(0)")] == ["1", "3", "6"]
    objs = _sweep(gdb, f"--ticks 1-3 --thread {worker} bump_tls(0)")
    assert [o["value"] for o in objs] == ["100", "100", "100"]
    (missing,) = _sweep(gdb, "--ticks 2 --thread 1 bump_tls(0)")
    assert missing["status"] == "error"
    assert missing["error"].startswith("No thread 1 at tick 2: threads are ")
