"""`ttd call` from a shell: GDB driven through pygdbmi, the JSON exactly as in DESIGN.md."""

from __future__ import annotations

import json

import pytest

from tests.call_json import CALL_KEYS, PAGE_KEYS
from tests.conftest import run_ttd
from tests.e2e.harness import call

pytestmark = pytest.mark.timeout(120)

KINDS = {"data", "heap", "stack", "stack-scratch", "new-mapping", "other"}


def test_call_json_shape(targets_db):
    db, binary = targets_db
    done = run_ttd("call", str(db), "--at", "2", "--json", "push(5)", timeout=60)
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert list(obj) == CALL_KEYS
    assert (obj["tick"], obj["expr"], obj["status"], obj["value"]) == (
        2,
        "push(5)",
        "returned",
        "3",
    )
    assert obj["signal"] is None and obj["error"] is None
    assert (obj["fault_address"], obj["backtrace"], obj["exit_code"]) == (None, [], None)
    assert (obj["tracker"], obj["notes"], obj["blocked_syscalls"]) == ("wp-async", [], [])
    for page in obj["dirtied_pages"]:
        assert list(page) == PAGE_KEYS
        assert page["kind"] in KINDS
        assert int(page["address"], 16) % 4096 == 0
        for r in page["changed_ranges"]:
            assert list(r) == ["offset", "length"] and 0 <= r["offset"] < 4096 and r["length"] > 0
        assert page["changed"] == bool(page["changed_ranges"])
    changed = {p["symbol"] for p in obj["dirtied_pages"] if p["changed"] and p["kind"] == "data"}
    assert "head" in changed
    assert set(obj["timings_ms"]) >= {"rematerialize", "attach", "symbols", "call", "report"}
    served = obj["faults"]["served"]
    assert served > 0 and obj["faults"]["bytes"] >= 4096 * served // 16


def _call_json(db, *args) -> dict:
    done = run_ttd("call", str(db), *args, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_call_void_and_output(targets_db):
    db, _ = targets_db
    assert _call_json(db, "--at", "3", "--json", "checkpoint(0)")["value"] == ""
    obj = _call_json(db, "--at", "3", "--json", "say(1) + fflush(0)")
    assert obj["stdout"] == "say 1 of 3\n"


def test_call_human_output(targets_db):
    db, _ = targets_db
    done = run_ttd("call", str(db), "--at", "1", "bump_all(1)", timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "bump_all(1) = 19"  # at tick 1 a=1 b=2 c=10; then 2 + 4 + 13
    assert any("counter_b" in line for line in lines[1:])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--at", "99", "list_length()"], "ttd: No tick 99: valid ticks are 1 to 4."),
        (
            ["--at", "2", "--thread", "1", "list_length()"],
            "ttd: No thread 1 at tick 2: threads are",
        ),
        (["--at", "2", "nosuch()"], 'ttd: No symbol "nosuch" in current context.'),
    ],
    ids=["tick-out-of-range", "no-such-thread", "gdb-rejects-expression"],
)
def test_call_errors(targets_db, args, message):
    done = run_ttd("call", str(targets_db[0]), *args, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(message)
    assert len(done.stderr.splitlines()) == 1


def test_call_missing_recording(tmp_path):
    done = run_ttd("call", str(tmp_path / "none.db"), "--at", "1", "f()", timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"ttd: No recording at '{tmp_path / 'none.db'}': file not found.\n"


def test_blocked_syscall_reported_by_default(plugin_gdb, tmp_path):
    victim = tmp_path / "keep-me"
    victim.write_text("still here")
    obj = call(plugin_gdb, 1, f'(int)unlink("{victim}")')
    assert obj["value"] == "-1"
    assert obj["blocked_syscalls"] == [{"name": "unlink", "count": 1, "detail": str(victim)}]
    assert victim.read_text() == "still here"
