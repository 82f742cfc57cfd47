"""ttd sweep against call-at-time and GDB's own live call: examples/growing_list.c run
under GDB, snapshotted at each of 50 hits of `checkpoint` (its list one node longer at
each), with GDB's live `call list_length(head)` taken at each stop. A sweep of the
length gives 1..50 in order with the live call's changed pages, --changes lists every
tick, and 50 separate call-at-time calls give the same."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import (
    Call,
    call_json,
    record_with_live_reference,
    require_tools,
    user_state,
)
from ttd_cli.mi import GdbFailed

pytestmark = pytest.mark.timeout(1800)  # 150 calls, each in a new process today

TICKS = 50
LENGTH = Call("list_length(head)")
# registers, as GDB shows them at each live stop
REGISTERS = Call("{(long)$rip, (long)$rsp, (long)$rbp, (long)$rdi, (long)$fs_base, (long)$rax}")


@pytest.fixture(scope="module")
def recorded(build_target, tmp_path_factory):
    require_tools()
    binary = build_target("examples/growing_list.c")
    db = tmp_path_factory.mktemp("sweep") / "growing.db"
    rec = record_with_live_reference(
        db, [str(binary), str(TICKS)], "checkpoint", TICKS, [LENGTH, REGISTERS]
    )
    rec.before = user_state(rec.gdb)
    yield rec
    rec.gdb.close()


def _sweep_json(gdb, options: str) -> list[dict]:
    text = gdb.cli(f"ttd sweep --json {options}", TICKS * 70)
    lines = [line for line in text.splitlines() if line.startswith('[{"tick"')]
    assert len(lines) == 1, text
    return json.loads(lines[0])


def _live(rec, tick: int, call: Call = LENGTH) -> dict:
    return rec.live[(tick, call.expr, None)]


def test_sweep_gives_the_length_at_every_tick_as_the_live_call(recorded):
    assert recorded.ticks == list(range(1, TICKS + 1))
    objs = _sweep_json(recorded.gdb, LENGTH.expr)
    assert [o["tick"] for o in objs] == recorded.ticks
    assert [o["status"] for o in objs] == ["returned"] * TICKS, [
        (o["tick"], o["error"]) for o in objs if o["status"] != "returned"
    ]
    assert [o["value"] for o in objs] == [str(n) for n in range(1, TICKS + 1)]
    assert [_live(recorded, t)["value"] for t in recorded.ticks] == [o["value"] for o in objs]
    for obj in objs:  # each tick's call from its own recorded state: the live call's pages
        changed = [p["address"] for p in obj["dirtied_pages"] if p["changed"]]
        assert changed == _live(recorded, obj["tick"])["changed"], obj["tick"]
    assert user_state(recorded.gdb) == recorded.before


def test_a_sweep_of_registers_gives_the_live_registers(recorded):
    """Every tick's registers, as at the live stop; also after a move from a tick whose
    call named no register (the move then writes only registers that differ)."""
    objs = _sweep_json(recorded.gdb, REGISTERS.expr)
    assert [o["value"] for o in objs] == [
        _live(recorded, t, REGISTERS)["value"] for t in recorded.ticks
    ]
    for tick in (10, 11, 30):
        call_json(recorded.gdb, tick - 1, LENGTH.expr)
        got = call_json(recorded.gdb, tick, REGISTERS.expr)
        assert "move" in got["timings_ms"], got["timings_ms"]
        assert got["value"] == _live(recorded, tick, REGISTERS)["value"]


def test_changes_lists_every_tick(recorded):
    text = recorded.gdb.cli(f"ttd sweep --changes {LENGTH.expr}", TICKS * 70)
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("TICK")))
    assert lines[header].split() == ["TICK", "VALUE", "PAGES", "CHANGED"]
    rows = [line.split() for line in lines[header + 1 : header + 1 + TICKS]]
    assert [(int(r[0]), r[1]) for r in rows] == [(n, str(n)) for n in range(1, TICKS + 1)]
    assert lines[header + 1 + TICKS] == f"Swept {TICKS} ticks: the value changed at {TICKS}."


def test_separate_calls_give_the_sweep_values(recorded):
    for tick in recorded.ticks:
        got = call_json(recorded.gdb, tick, LENGTH.expr)
        assert got["status"] == "returned", got["error"]
        assert got["value"] == _live(recorded, tick)["value"] == str(tick)
        changed = [p["address"] for p in got["dirtied_pages"] if p["changed"]]
        assert changed == _live(recorded, tick)["changed"]


def test_one_tick_a_range_and_a_list(recorded):
    gdb = recorded.gdb
    assert [o["value"] for o in _sweep_json(gdb, f"--ticks 7 {LENGTH.expr}")] == ["7"]
    assert [o["tick"] for o in _sweep_json(gdb, "--ticks 48- list_sum(head)")] == [48, 49, 50]
    objs = _sweep_json(gdb, "--ticks 1,3,2 list_sum(head)")
    assert [(o["tick"], o["value"]) for o in objs] == [(1, "1"), (2, "5"), (3, "14")]


def test_each_call_starts_from_its_tick(recorded):
    """Each call empties the list (head = 0) after reading its length: were a tick's call
    to see what the previous one wrote, its length would be 0."""
    objs = _sweep_json(recorded.gdb, "--ticks 4-6 $n = list_length(head), head = 0, $n")
    assert [o["value"] for o in objs] == ["4", "5", "6"]
    assert all(
        any((p["symbol"] or "").startswith("head") for p in o["dirtied_pages"]) for o in objs
    )


@pytest.mark.parametrize(
    "arg, message",
    [
        ("--ticks 0 f()", "Invalid tick '0': ticks start at 1."),
        ("--ticks 5-3 f()", "Invalid range '5-3': it starts after it ends."),
        ("--ticks 51 f()", f"No tick 51: valid ticks are 1 to {TICKS}."),
        ("--ticks", "Option --ticks needs a value."),
    ],
)
def test_bad_spec_is_one_line(recorded, arg, message):
    with pytest.raises(GdbFailed) as info:
        recorded.gdb.cli(f"ttd sweep {arg}")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_failing_call_is_a_row(recorded):
    text = recorded.gdb.cli("ttd sweep --ticks 1-2 head->next->value")
    lines = text.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("TICK")))
    rows = lines[header + 1 : header + 3]
    assert rows[0].startswith("1     error: Cannot access memory at address 0x0"), text
    assert rows[1].split()[:2] == ["2", "1"]
    assert lines[header + 3] == "Swept 2 ticks: 1 error, 1 returned."
