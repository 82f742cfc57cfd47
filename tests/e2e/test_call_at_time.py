"""call-at-time against GDB's own live `call`: same program, same stop, same value,
same pages whose bytes changed. One GDB session: the program runs as the user's
inferior, is snapshotted at three hits of `checkpoint`, with the live reference
taken at each hit; then every call-at-time runs in that same session and the
user's inferior must come out untouched."""

from __future__ import annotations

import pytest

from tests.e2e import harness
from tests.e2e.harness import (
    Call,
    call_json,
    end_sessions,
    record_with_live_reference,
    require_tools,
    user_state,
    value_line,
)
from ttd_cli.mi import GdbFailed

pytestmark = pytest.mark.timeout(300)

WORKER = 2  # GDB's thread number of the worker thread
CALLS = [
    Call("list_length()"),
    Call("list_sum()"),
    Call("push(7)"),
    Call("list_length() + push(8) * 100"),  # several calls, the list read after a push
    Call("bump_all(1)"),  # counters on several .data/.bss pages
    Call("make_pair(5)"),  # struct return
    Call("average()"),  # double return
    Call("bump_tls(1)"),  # thread-local write, stopped thread
    Call("bump_tls(1)", WORKER),  # ... and in the second thread
    Call("say(4) + fflush(0)"),  # printf (captured, not on our terminal)
    Call("depth(300)"),  # deep recursion: many stack pages
    Call("(long)list_sum() * 2 + $rdi"),  # cast, register as recorded
    Call("bump_int(&step)"),  # a write into the recorded frame
]


@pytest.fixture(scope="module")
def recorded(build_target, tmp_path_factory):
    require_tools()
    binary = build_target("tests/e2e/targets.c", "-pthread")
    db = tmp_path_factory.mktemp("rec") / "targets.db"
    rec = record_with_live_reference(db, [str(binary)], "checkpoint", 3, CALLS)
    rec.binary = str(binary)
    rec.before = user_state(rec.gdb)
    yield rec
    rec.gdb.close()


def _ids():
    return [
        f"tick{hit + 1}-{c.expr}-{'worker' if c.thread else 'main'}"
        for hit in range(3)
        for c in CALLS
    ]


@pytest.mark.parametrize("hit, call", [(h, c) for h in range(3) for c in CALLS], ids=_ids())
def test_value_and_changed_pages_match_live_call(recorded, hit, call):
    tick = recorded.ticks[hit]
    live = recorded.live[(tick, call.expr, call.thread)]
    tid = live["tid"] if call.thread is not None else None
    got = call_json(recorded.gdb, tick, call.expr, tid)
    assert got["status"] == "returned", got["error"]
    assert got["value"] == live["value"]
    changed = [p["address"] for p in got["dirtied_pages"] if p["changed"]]
    assert changed == live["changed"]


def test_list_grows_between_ticks(recorded):
    values = [call_json(recorded.gdb, t, "list_length()")["value"] for t in recorded.ticks]
    assert values == ["1", "2", "3"]


def test_push_reports_heap_and_global_with_symbols(recorded):
    got = call_json(recorded.gdb, recorded.ticks[1], "push(99), (long)head")
    by_kind = {}
    for page in got["dirtied_pages"]:
        if page["changed"]:
            by_kind.setdefault(page["kind"], []).append(page)
    assert [p["symbol"] for p in by_kind["data"] if p["mapping"] == recorded.binary] == ["head"]
    new_node = int(got["value"])
    assert by_kind["heap"][0]["symbol"].startswith(f"chunk {new_node:#x} (32 bytes)")
    assert "stack" in by_kind


def test_three_counters_on_two_pages(recorded):
    got = call_json(recorded.gdb, recorded.ticks[0], "bump_all(1)")
    data = [p for p in got["dirtied_pages"] if p["changed"] and p["kind"] == "data"]
    # counter_c (.data) and counter_a (.bss) share the first page; counter_b is pages later
    assert [(p["symbol"], len(p["changed_ranges"])) for p in data] == [
        ("counter_c", 2),
        ("counter_b", 1),
    ]
    lines = _from_line(recorded.gdb.cli("info dirtied-pages &counter_a"), "Page ")
    assert lines[0].startswith(f"Page {data[0]['address']} (data, ")
    named = [line.rsplit("(", 1)[1] for line in lines if line.startswith("Changed ")]
    assert named == ["counter_c).", "counter_a)."]


def test_thread_local_write_is_named(recorded):
    got = call_json(recorded.gdb, recorded.ticks[2], "bump_tls(5)")
    tls = [p for p in got["dirtied_pages"] if p["changed"] and p["kind"] == "data"]
    assert [p["symbol"] for p in tls] == ["tls:tls_counter"]
    assert got["value"] == str(1 + 2 + 3 + 5)


def test_thread_local_write_in_second_thread_is_named(recorded):
    tick = recorded.ticks[2]
    tid = recorded.live[(tick, "bump_tls(1)", WORKER)]["tid"]
    got = call_json(recorded.gdb, tick, "bump_tls(5)", tid)
    assert got["value"] == "105"
    named = [(p["kind"], p["symbol"]) for p in got["dirtied_pages"] if p["changed"]]
    assert ("data", "tls:tls_counter") in named


def test_printf_output_is_captured(recorded):
    got = call_json(recorded.gdb, recorded.ticks[2], "say(9) + fflush(0)")
    assert (got["stdout"], got["stderr"]) == ("say 9 of 3\n", "")
    got = call_json(recorded.gdb, recorded.ticks[2], "complain(3)")
    assert (got["stdout"], got["stderr"]) == ("", "complaint 3\n")


def test_deep_recursion_dirties_scratch_stack(recorded):
    got = call_json(recorded.gdb, recorded.ticks[0], "depth(300)")
    assert got["value"] == "300"
    kinds = [p["kind"] for p in got["dirtied_pages"] if p["changed"]]
    assert kinds.count("stack-scratch") >= 10


def test_recursion_deeper_than_the_recorded_stack(recorded):
    tick = recorded.ticks[0]
    got = call_json(recorded.gdb, tick, "depth(5000)")  # about 1.2 MiB of frames
    assert (got["status"], got["value"]) == ("returned", "5000")
    changed = [p for p in got["dirtied_pages"] if p["changed"]]
    # the stack grew below its recorded mapping: still stack, dead at the tick
    assert sum(p["kind"] == "stack-scratch" and p["mapping"] == "[stack]" for p in changed) > 200
    assert all(p["kind"] != "new-mapping" for p in changed)
    # the grown stack is put back too: the process is kept and starts from the recording
    again = call_json(recorded.gdb, tick, "depth(5000)")
    assert again["timings_ms"]["rematerialize"] == 0
    assert [p["address"] for p in again["dirtied_pages"] if p["changed"]] == [
        p["address"] for p in changed
    ]


def test_void_call_gives_empty_value(recorded):
    got = call_json(recorded.gdb, recorded.ticks[0], "checkpoint(1)")
    assert got["status"] == "returned"
    assert got["value"] == ""


def _from_line(text: str, prefix: str) -> list[str]:
    """The output's lines from the first one starting with prefix (MI also echoes the
    command before them)."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert starts, f"no line starting with {prefix!r} in:\n{text}"
    return lines[starts[0] :]


def test_write_into_recorded_frame_is_named_by_frame(recorded):
    text = recorded.gdb.cli(f"call-at-time {recorded.ticks[1]} bump_int(&step)")
    assert _from_line(text, "$")[0].endswith(" = 3")
    lines = _from_line(recorded.gdb.cli("info dirtied-pages &step"), "Page ")
    assert lines[0].split()[2] == "(stack,"
    assert any(
        line.startswith("Changed 1 byte at ") and line.endswith("(frame #0 checkpoint (red zone)).")
        for line in lines
    )


def test_value_enters_history(recorded):
    text = recorded.gdb.cli(f"call-at-time {recorded.ticks[1]} list_sum() + 1000")
    line = _from_line(text, "$")[0]
    number = line[1:].split(" = ")[0]
    assert line == f"${number} = 1030"
    assert recorded.gdb.cli(f"print ${number}").strip().endswith("= 1030")


def test_repeated_calls_start_from_the_recorded_state(recorded):
    tick = recorded.ticks[0]
    first = [call_json(recorded.gdb, tick, "push(1)")["value"] for _ in range(3)]
    assert first == ["2", "2", "2"]


def test_info_dirtied_pages_lists_and_diffs(recorded):
    recorded.gdb.cli(f"call-at-time {recorded.ticks[2]} bump_all(1)")
    table = _from_line(recorded.gdb.cli("info dirtied-pages"), "Address")
    assert table[0].split()[:3] == ["Address", "Kind", "Changed"]
    table = "\n".join(table)
    assert "counter_b" in table
    everything = "\n".join(_from_line(recorded.gdb.cli("info dirtied-pages --all"), "Address"))
    assert len(everything.splitlines()) > len(table.splitlines())
    lines = _from_line(recorded.gdb.cli("info dirtied-pages &counter_b"), "Page ")
    assert "holds counter_b" in lines[0]
    # counter_b: 2 * (1 + 2 + 3) = 12 -> 14
    assert lines[1].startswith("Changed 1 byte at ") and lines[1].endswith("(counter_b).")
    assert lines[2].split()[1] == "-0c" and lines[3].split()[0] == "+0e"


@pytest.mark.parametrize(
    "command, message",
    [
        ("call-at-time 99 list_length()", "No tick 99: valid ticks are 1 to 3."),
        ("call-at-time --thread 1 2 list_length()", "No thread 1 at tick 2: threads are"),
        ("call-at-time 2 no_such_function()", 'No symbol "no_such_function" in current context.'),
        ("call-at-time two list_length()", "Invalid tick 'two': a tick is a number."),
        ("call-at-time 2", "Usage: call-at-time"),
        ("info dirtied-pages --bogus", "Unknown option '--bogus'."),
    ],
    ids=[
        "tick-out-of-range",
        "no-such-thread",
        "gdb-rejects-expression",
        "bad-tick",
        "no-expression",
        "bad-option",
    ],
)
def test_errors_are_one_line(recorded, command, message):
    with pytest.raises(GdbFailed) as info:
        recorded.gdb.cli(command)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_crash_in_call_keeps_session(recorded):
    got = call_json(recorded.gdb, recorded.ticks[0], "*(int *)0 = list_length()")
    assert got["status"] == "error"  # GDB itself refuses: cannot access memory
    got = call_json(recorded.gdb, recorded.ticks[0], "((int (*)(void))8)()")
    assert got["status"] == "signalled"
    assert got["signal"] == "SIGSEGV"
    assert got["error"].endswith("(SIGSEGV at 0x8 in ??, fault address 0x8)")
    assert got["fault_address"] == "0x8"
    assert got["backtrace"][0] == "#0  0x8 in ??"
    assert call_json(recorded.gdb, recorded.ticks[0], "list_length()")["value"] == "1"


def test_exit_and_abort_in_call_keep_session(recorded):
    got = call_json(recorded.gdb, recorded.ticks[0], "(void)_exit(3)")
    assert (got["status"], got["dirtied_pages"]) == ("exited", []), got["error"]
    assert got["error"] == (
        "The program being debugged exited while in a function called from GDB. (exit code 3)"
    )
    assert got["exit_code"] == 3
    got = call_json(recorded.gdb, recorded.ticks[0], "(void)abort()")
    assert (got["status"], got["signal"]) == ("signalled", "SIGABRT")
    assert " in __pthread_kill_implementation)" in got["error"]
    assert got["fault_address"] is None  # SIGABRT has no faulting address
    assert "abort at " in got["backtrace"][-1]  # down to the called function, no further
    assert call_json(recorded.gdb, recorded.ticks[0], "list_length()")["value"] == "1"


def test_new_mapping_pages_and_no_reuse_after_them(recorded):
    tick = recorded.ticks[1]
    got = call_json(recorded.gdb, tick, "grow(256)")
    fresh = [p for p in got["dirtied_pages"] if p["kind"] == "new-mapping"]
    assert len(fresh) >= 64 and all(p["changed"] and p["mapping"] == "" for p in fresh)
    # the process that grew is moved back to the tick (issue 10): the next call sees
    # the recorded state
    again = call_json(recorded.gdb, tick, "list_length()")
    assert "move" in again["timings_ms"] and again["timings_ms"]["rematerialize"] == 0
    assert again["value"] == "2"
    third = call_json(recorded.gdb, tick, "list_length()")
    assert third["timings_ms"]["rematerialize"] == 0  # reused: nothing was mapped
    assert all(p["kind"] != "new-mapping" for p in again["dirtied_pages"])


def test_hang_is_interrupted_by_timeout(recorded):
    got = harness.call(recorded.gdb, recorded.ticks[0], "spin()", "--timeout 1")
    assert got["status"] == "timeout"
    assert got["error"].startswith("The call did not return within 1 s: interrupted at 0x")
    assert got["error"].endswith(" in spin.")
    assert got["backtrace"][0].split(" in ")[1].startswith("spin at ")
    assert call_json(recorded.gdb, recorded.ticks[0], "list_length()")["value"] == "1"


def test_user_inferior_untouched(recorded):
    """The user's inferior (registers, memory, selection), breakpoints and GDB settings
    come out of every kind of call as they went in."""
    gdb, tick = recorded.gdb, recorded.ticks[1]
    gdb.cli(f"ttd goto {tick}")  # holds its settings until it closes (ttd goto's help)
    assert value_line(gdb.cli("call list_length()")) == "2"
    assert end_sessions(gdb, "close_goto") == "True"
    assert call_json(gdb, tick, "((int (*)(void))8)()")["status"] == "signalled"
    got = call_json(gdb, tick, "(void)_exit(3)")
    assert got["status"] == "exited", got["error"]
    assert harness.call(gdb, tick, "spin()", "--timeout 1")["status"] == "timeout"
    assert value_line(gdb.cli(f"call-at-time {tick} say(1) + fflush(0)")) == "11"
    gdb.cli("info dirtied-pages &head")
    assert call_json(gdb, tick, "push(3)")["status"] == "returned"  # kept for reuse
    assert user_state(gdb) == recorded.before


def test_text_output_is_short(recorded):
    """The value, the summary line, then the pages whose bytes changed: at most 20 rows
    and how many more; pages written back unchanged are not listed; no call, no pages."""
    gdb, tick = recorded.gdb, recorded.ticks[1]
    got = call_json(gdb, tick, "depth(500)")
    changed = [p for p in got["dirtied_pages"] if p["changed"]]
    assert len(changed) > 20 and len(changed) < len(got["dirtied_pages"])
    lines = _from_line(gdb.cli(f"call-at-time {tick} depth(500)"), "$")
    assert lines[1].startswith(
        f"The call wrote {len(got['dirtied_pages'])} pages: {len(changed)} changed ("
    )
    assert lines[2].split() == ["Address", "Kind", "Bytes", "Symbol", "Mapping"]
    rows = lines[3:23]
    assert [row.split()[0] for row in rows] == [
        f"{int(p['address'], 16):#018x}" for p in changed[:20]
    ]
    assert lines[23] == f"{len(changed) - 20} more: info dirtied-pages --all"
    assert lines[24].startswith("Changed pages by mapping: [stack] ")
    assert len(lines) == 25
    assert _from_line(gdb.cli(f"call-at-time {tick} counter_b"), "$")[1:] == [
        "The call wrote no pages."
    ]
