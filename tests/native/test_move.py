"""One rematerialized process moved between ticks (issue 10), without GDB: every thread
comes back with its registers and name, and after any sequence of moves the memory map,
every readable byte and every register equal the recording at the tick the process is
at. move_tracer.py plays GDB's part (the inferior call of ttd_stub_apply, the registers).
Ticks of move_target.c: 1-4 with the same three threads (a mapping added, removed,
protected, the break grown and shrunk), 5 with a thread ended, 6 with one created."""

from __future__ import annotations

import pytest
from elftools.elf.elffile import ELFFile

from gdb_plugin.remat import rematerialize
from gdb_plugin.remat.client import STUB, MoveRefused
from gdb_plugin.remat.layout import read_layout
from snapshotdb.db import open_recording
from snapshotdb.regs import gpregs_dict
from tests.native.helpers import db_bytes, proc_maps, stopped
from tests.native.move_tracer import (
    Tracer,
    describe_regs,
    record_steps,
    same_vector_state,
)
from tests.native.recording_fixture import process_vm_readv, process_vm_writev

pytestmark = pytest.mark.timeout(240)
PAGE = 4096
STUB_IMAGE = 0x2F0000000000  # native/Makefile STUB_BASE: the stub's own mappings start here
STUB_IMAGE_END = STUB_IMAGE + (1 << 32)  # far past its image and bss


@pytest.fixture(scope="module")
def steps(native_build, build_target, tmp_path_factory):
    """(recording, thread ids of each tick): move_target.c after each of its 6 steps."""
    binary = build_target("tests/native/move_target.c", "-pthread", "-mavx2")
    db = tmp_path_factory.mktemp("move") / "move.db"
    return db, record_steps(binary, db)


def layout_at(db, tick: int):
    with open_recording(db) as recording:
        return read_layout(recording, tick)


def merged(ranges) -> list[tuple[int, int, int]]:
    """(start, end, prot) with adjacent ranges of one protection as one."""
    out: list[list[int]] = []
    for start, end, prot in sorted(ranges):
        if out and out[-1][1] == start and out[-1][2] == prot:
            out[-1][1] = end
        else:
            out.append([start, end, prot])
    return [tuple(r) for r in out]


def process_map(pid: int) -> list[tuple[int, int, int]]:
    prot = {"r": 1, "w": 2, "x": 4}
    return merged(
        (start, end, sum(prot.get(c, 0) for c in perms[:3]))
        for start, end, perms, _, _ in proc_maps(pid)
        if not STUB_IMAGE <= start < STUB_IMAGE_END
    )


def comm(pid: int, tid: int) -> str:
    with open(f"/proc/{pid}/task/{tid}/comm") as f:
        return f.read().rstrip("\n")


def assert_at(proc, tracer: Tracer, db, layout) -> None:
    """The process is the recording at layout.tick: map, bytes, registers, names."""
    tick = layout.tick
    assert process_map(proc.pid) == merged(layout.regions), f"memory map at tick {tick}"
    for start, end, prot in layout.regions:
        if prot & 1:
            got = process_vm_readv(proc.pid, start, end - start)
            assert got == db_bytes(db, tick, start, end), f"bytes of {start:#x} at tick {tick}"
    for tid, thread in zip(proc.threads(), layout.threads, strict=True):
        assert comm(proc.pid, tid) == thread.name
        got = tracer.gpregs(tid)
        assert got == thread.gpregs, (
            f"thread {thread.tid} at tick {tick}:\n"
            f"{describe_regs(got)}\n{describe_regs(thread.gpregs)}"
        )
        assert same_vector_state(tracer.xstate(tid), thread.xstate), f"thread {thread.tid}"


def test_every_recorded_thread_comes_back(steps):
    db, tids = steps
    layout = layout_at(db, 2)
    with rematerialize(db, 2) as proc:
        assert proc.threads() == [t.tid for t in layout.threads]  # the recorded ids, free now
        assert sorted(proc.threads()) == tids[1] and len(tids[1]) == 3
        assert proc.threads()[0] == proc.pid  # the leader is the process
        names = [comm(proc.pid, tid) for tid in proc.threads()]
        assert names == [t.name for t in layout.threads]
        assert names[0].startswith("move_target") and names[1:] == ["mover-1", "mover-2"]
        assert all(stopped(tid) for tid in proc.threads())  # all in one group stop
        assert proc.stats()["same_tid"] is True
        with Tracer(proc.threads()) as tracer:
            assert_at(proc, tracer, db, layout)
            # what the registers say: each thread blocked in read with its step's tag
            tags = [gpregs_dict(tracer.gpregs(tid))["r12"] for tid in proc.threads()]
            assert tags == [2, 200, 201]


@pytest.mark.parametrize(
    "path", [[2, 3, 1], [3, 1, 4, 2, 4, 1], [4, 3, 3]], ids=["a-b-a", "back-and-forth", "same-tick"]
)
def test_moves_leave_the_recording_at_every_tick(steps, path):
    """A mapping added (2), removed and another mapped (3), a protection changed (2, 3),
    the break grown (2) and shrunk (3), pages changed at every step."""
    db, _ = steps
    with rematerialize(db, path[0]) as proc, Tracer(proc.threads()) as tracer:
        assert_at(proc, tracer, db, layout_at(db, path[0]))
        for tick in path[1:]:
            layout = layout_at(db, tick)
            counts = proc.move(layout, False, tracer.call)
            tracer.set_registers(layout)
            assert counts["tick"] == tick
            assert_at(proc, tracer, db, layout)
            assert proc.written_pages() == []  # a call now reports its own writes only


def _stub_symbols() -> dict[str, int]:
    with open(STUB, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return {
            name: symtab.get_symbol_by_name(name)[0]["st_value"]
            for name in ("ttd_stub_apply", "stub_apply_args")
        }


def _as_a_call_would(proc, tracer: Tracer) -> tuple[int, int]:
    """What a called function may leave: a new mapping (mmap) and 3 more pages of break
    (brk), both written, and recorded pages written. Made with the stub's own routine,
    as the called code would make them; the new mapping's address is returned."""
    sym = _stub_symbols()
    heap = next(m for m in proc_maps(proc.pid) if m[4] == "[heap]")
    new = 0x7E0000000000  # struct stub_apply (layout.h): one OP_MAP (2), rw (3)
    op = (
        (2).to_bytes(4, "little")
        + (3).to_bytes(4, "little")
        + new.to_bytes(8, "little")
        + (new + 8 * PAGE).to_bytes(8, "little")
    )
    head = (
        (heap[1] + 3 * PAGE).to_bytes(8, "little")
        + (1).to_bytes(4, "little")
        + (-2).to_bytes(4, "little", signed=True)
        + bytes(16)
    )
    with open(f"/proc/{proc.pid}/mem", "r+b", buffering=0) as mem:
        mem.seek(sym["stub_apply_args"] + 32)
        mem.write(op)
        mem.seek(sym["stub_apply_args"])
        mem.write(head)
    assert tracer.call(sym["ttd_stub_apply"], sym["stub_apply_args"]) == 0
    process_vm_writev(proc.pid, new, b"new" * 1000)
    process_vm_writev(proc.pid, heap[1], b"brk" * 2000)
    process_vm_writev(proc.pid, heap[0], b"old" * 2000)
    return new, heap[1]


def test_a_call_that_mapped_and_grew_the_break_then_a_move(steps):
    """The process after such a call, moved, is the recording at the new tick: the
    call's mapping gone, the break the tick's, its writes undone."""
    db, _ = steps
    with rematerialize(db, 1) as proc, Tracer(proc.threads()) as tracer:
        new, grown = _as_a_call_would(proc, tracer)
        assert any(m[0] == new for m in proc_maps(proc.pid))
        assert grown in proc.written_pages()
        for tick in (2, 1):
            layout = layout_at(db, tick)
            proc.move(layout, True, tracer.call)
            tracer.set_registers(layout)
            assert_at(proc, tracer, db, layout)
            assert not any(m[0] == new for m in proc_maps(proc.pid))


def test_threads_decide_what_can_be_moved(steps):
    db, _ = steps
    layouts = {tick: layout_at(db, tick) for tick in range(1, 7)}
    assert all(layouts[1].same_process_as(layouts[t]) for t in (2, 3, 4))
    assert not layouts[4].same_process_as(layouts[5])  # mover-2 ended
    assert not layouts[5].same_process_as(layouts[6])  # mover-3 came
    assert [t.name for t in layouts[6].threads][1:] == ["mover-1", "mover-3"]


def test_the_diff_tracker_builds_a_new_process_instead(steps):
    db, _ = steps
    with rematerialize(db, 1, tracker="diff") as proc:
        with pytest.raises(MoveRefused, match="^MOVE needs the wp-async tracker"):
            proc.move(layout_at(db, 2), False, lambda fn, arg: pytest.fail("called"))


@pytest.mark.parametrize("bad", ["unsorted", "over-the-stub", "unaligned"])
def test_a_bad_move_leaves_the_process_as_it_was(steps, bad):
    db, _ = steps
    layout = layout_at(db, 2)
    regions = list(layout.regions)
    if bad == "unsorted":
        regions.reverse()
    elif bad == "over-the-stub":
        regions.append((STUB_IMAGE, STUB_IMAGE + PAGE, 3))
    else:
        regions[0] = (regions[0][0] + 1, regions[0][1], regions[0][2])
    with rematerialize(db, 1) as proc, Tracer(proc.threads()) as tracer:
        with pytest.raises(MoveRefused, match="^MOVE: bad mapping"):
            proc.move(
                layout.__class__(
                    2, tuple(regions), layout.stack_growth, layout.mm, layout.auxv, layout.threads
                ),
                False,
                tracer.call,
            )
        assert_at(proc, tracer, db, layout_at(db, 1))  # untouched, and it still moves
        proc.move(layout, False, tracer.call)
        tracer.set_registers(layout)
        assert_at(proc, tracer, db, layout)
