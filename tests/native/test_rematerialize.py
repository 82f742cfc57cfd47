"""Rematerialization (issue 3): a recorded process rebuilt at a tick, memory filled
lazily through userfaultfd, written pages tracked exactly. Real processes, real
recordings (recording_fixture.py), no GDB."""

from __future__ import annotations

import gc
import os
import re
import signal
import struct

import pytest
from sqlalchemy.orm import Session

from gdb_plugin.remat import RematerializeError, rematerialize
from snapshotdb import queries
from snapshotdb.db import open_engine
from snapshotdb.pages import PAGE_SIZE
from snapshotdb.regs import GPREG_NAMES
from tests.native.helpers import (
    alive,
    db_bytes,
    proc_maps,
    readable,
    region_of,
    stopped,
    stopped_again,
    wait_for,
)
from tests.native.recording_fixture import (
    attach_stopped,
    detach_stopped,
    get_regs,
    process_vm_readv,
    process_vm_writev,
)

pytestmark = pytest.mark.timeout(120)


# ---- memory -------------------------------------------------------------------------

# How written pages are found (gdb_plugin/remat/client.py): forced, and the diff
# tracker chosen by "auto" on a kernel that lacks what wp-async needs (testing knobs).


def test_every_page_equals_the_recording_at_the_tick(remat, recording):
    """Tick 1, not tick 2: some pages changed in between, and we must see tick 1's."""
    tick1, tick2 = recording.ticks
    differing = 0
    with remat(recording.db_path, 1) as proc:
        for m in readable(tick1.maps):
            got = process_vm_readv(proc.pid, m.start, m.end - m.start)
            assert got == db_bytes(recording.db_path, 1, m.start, m.end), f"{m.start:#x} {m.path}"
            differing += got != db_bytes(recording.db_path, 2, m.start, m.end)
        assert proc.stats()["faults"] > 0
    assert differing >= 3  # heap, .data, the region: the tick really matters


def test_reading_everything_writes_nothing(remat, recording):
    with remat(recording.db_path, 1) as proc:
        for m in readable(recording.ticks[0].maps):
            process_vm_readv(proc.pid, m.start, m.end - m.start)
        assert proc.written_pages() == []
        stats = proc.stats()
        total = sum(m.end - m.start for m in readable(recording.ticks[0].maps))
        assert stats["bytes"] >= total and stats["zero_pages"] > 0


def chosen_pages(recording) -> list[int]:
    """Writable pages of several kinds: heap, stack, .data/.bss, a populated and a
    never-populated page of the mmap region, libc's data."""
    maps = recording.ticks[0].maps
    region = region_of(recording)
    heap = next(m for m in maps if m.path == "[heap]")
    stack = next(m for m in maps if m.path == "[stack]")
    libc_rw = next(m for m in maps if "libc" in m.path and m.perms.startswith("rw"))
    data = next(m for m in maps if m.perms.startswith("rw") and m.path.endswith("/remat_target"))
    return sorted(
        [
            heap.start + PAGE_SIZE,
            stack.end - PAGE_SIZE,
            region,
            region + PAGE_SIZE,
            region + 200 * PAGE_SIZE,
            libc_rw.start,
            data.start,
        ]
    )


def test_written_set_is_exactly_the_pages_written(remat, recording):
    pages = chosen_pages(recording)
    with remat(recording.db_path, 1) as proc:
        process_vm_readv(proc.pid, pages[0], 64)  # a read first: must not count
        for i, target_addr in enumerate(pages):
            process_vm_writev(proc.pid, target_addr + 8 * i, b"written!")
        assert proc.written_pages() == pages


def test_clear_written_forgets_earlier_writes(remat, recording):
    pages = chosen_pages(recording)
    with remat(recording.db_path, 1) as proc:
        for target_addr in pages:
            process_vm_writev(proc.pid, target_addr, b"setup")
        proc.clear_written()
        assert proc.written_pages() == []
        process_vm_writev(proc.pid, pages[2] + 100, b"later")
        # a write through /proc/PID/mem (what gdbserver does) counts too
        with open(f"/proc/{proc.pid}/mem", "r+b", buffering=0) as mem:
            mem.seek(pages[4])
            mem.write(b"via mem")
        assert proc.written_pages() == [pages[2], pages[4]]
        assert process_vm_readv(proc.pid, pages[0], 5) == b"setup"


def test_prefill_and_eager_fills_are_clean(remat, recording):
    """Pages filled before they are touched (prefill, mode eager) hold the recorded
    bytes and do not count as written; no fault is needed to read them."""
    heap = next(m for m in recording.ticks[0].maps if m.path == "[heap]")
    with remat(recording.db_path, 1) as proc:
        proc.prefill(heap.start, heap.end)
        served = proc.stats()["pages_served"]
        assert served == (heap.end - heap.start) // PAGE_SIZE
        assert process_vm_readv(proc.pid, heap.start, heap.end - heap.start) == db_bytes(
            recording.db_path, 1, heap.start, heap.end
        )
        assert proc.stats()["faults"] == 0 and proc.written_pages() == []
    with remat(recording.db_path, 1, mode="eager") as proc:
        for m in readable(recording.ticks[0].maps):
            assert process_vm_readv(proc.pid, m.start, m.end - m.start) == db_bytes(
                recording.db_path, 1, m.start, m.end
            )
        assert proc.stats()["faults"] == 0 and proc.written_pages() == []


def test_zero_pages_are_installed_clean(remat, recording):
    """A never-populated page reads as zeros and a read of it does not count as a write."""
    region = region_of(recording)
    with remat(recording.db_path, 1) as proc:
        assert process_vm_readv(proc.pid, region + 3 * PAGE_SIZE, PAGE_SIZE) == bytes(PAGE_SIZE)
        assert proc.written_pages() == []


def test_a_write_leaving_the_bytes_equal_is_seen_by_wp_async_only(recording):
    """The diff tracker compares bytes: writing what a page holds already is not a
    change it can see; wp-async sees the write itself."""
    heap = next(m for m in recording.ticks[0].maps if m.path == "[heap]")
    changed, unchanged = heap.start + PAGE_SIZE, heap.start + 2 * PAGE_SIZE
    seen = {}
    for tracker in ("wp-async", "diff"):
        with rematerialize(recording.db_path, 1, tracker=tracker) as proc:
            same = process_vm_readv(proc.pid, unchanged, 64)
            process_vm_writev(proc.pid, unchanged, same)
            process_vm_writev(proc.pid, changed + 8, b"changed")
            seen[tracker] = proc.written_pages()
    assert seen == {"wp-async": [changed, unchanged], "diff": [changed]}


def test_diff_tracker_clear_written_takes_the_current_bytes_as_baseline(recording):
    """After clear_written, a page written before and written back to what it held at
    the clear does not count; one changed since does."""
    region = region_of(recording)
    with rematerialize(recording.db_path, 1, tracker="diff") as proc:
        process_vm_writev(proc.pid, region, b"before")
        process_vm_writev(proc.pid, region + PAGE_SIZE, b"before")
        proc.clear_written()
        assert proc.written_pages() == []
        process_vm_writev(proc.pid, region, b"before")  # the bytes it had at the clear
        process_vm_writev(proc.pid, region + PAGE_SIZE, b"after!")
        assert proc.written_pages() == [region + PAGE_SIZE]
        assert proc.stats()["baseline_pages"] >= 2


@pytest.mark.parametrize("tracker", ["wp-async", "diff"])
def test_new_memory_of_the_process_counts_as_written(newmem_recording, tracker):
    """Pages of a mapping made after the tick and of heap growth: written ones count,
    a page only read does not; the diff tracker does not see a page written with
    the zeros it held. After clear_written, the diff tracker takes new memory's bytes
    as its baseline; for wp-async it stays written (it is not registered)."""
    with rematerialize(newmem_recording.db_path, 1, tracker=tracker) as proc:
        stopped_again(proc)
        line = proc.drain_output()[0].splitlines()[-1]
        words = dict(w.split(b"=") for w in line.split())
        mapped, grown = int(words[b"mapped"], 16), int(words[b"grown"], 16)
        grown_page = (grown + PAGE_SIZE) & ~(PAGE_SIZE - 1)
        written = set(proc.written_pages())
        assert mapped in written and grown_page in written
        assert mapped + 4 * PAGE_SIZE not in written
        assert (mapped + 2 * PAGE_SIZE in written) == (tracker == "wp-async")
        proc.clear_written()
        stopped_again(proc)
        written = set(proc.written_pages())
        assert mapped in written
        if tracker == "diff":  # rewritten with the byte they held at the clear
            assert mapped + 2 * PAGE_SIZE not in written and grown_page not in written
        else:  # memory outside the registered mappings cannot be write-protected again
            assert {mapped + 2 * PAGE_SIZE, grown_page} <= written


# ---- the stack's room to grow ----------------------------------------------------------


def test_stack_growth_stops_a_guard_page_above_the_mapping_below_or_at_8_mib():
    from gdb_plugin.remat.client import _stack_growth
    from tests.native.recording_fixture import MapLine

    MiB, top = 1 << 20, 0x7FFF00000000

    def maps(below_end):
        return [
            MapLine(0x400000, below_end, "rw-p", 0, ""),
            MapLine(top - 132 * 1024, top, "rw-p", 0, "[stack]"),
        ]

    assert _stack_growth(maps(0x500000), 0) == (top - 8 * MiB, top - 132 * 1024)
    assert _stack_growth(maps(top - MiB), 0) == (top - MiB + PAGE_SIZE, top - 132 * 1024)
    assert _stack_growth(maps(top - 132 * 1024 - PAGE_SIZE), 0) is None  # no room left
    big = [MapLine(top - 9 * MiB, top, "rw-p", 0, "[stack]")]
    assert _stack_growth(big, 0) is None  # 8 MiB already
    unnamed = [MapLine(top - MiB, top, "rw-p", 0, "")]
    assert _stack_growth(unnamed, top - 100) == (top - 8 * MiB, top - MiB)  # by start_stack
    assert _stack_growth(unnamed, 0) is None


@pytest.mark.parametrize("tracker", ["wp-async", "diff"])
def test_stack_has_room_to_grow_below_the_recorded_one(recording, tracker):
    """Below the recorded [stack]: zero pages down to 8 MiB in all (or a guard page
    above the next mapping), mapped read-write in one piece with it; pages written
    there count as written like any other."""
    maps = recording.ticks[0].maps
    stack = next(m for m in maps if m.path == "[stack]")
    below = max(m.end for m in maps if m.end <= stack.start)
    with rematerialize(recording.db_path, 1, tracker=tracker) as proc:
        lo, hi = proc.stack_growth_range()
        assert hi == stack.start
        assert lo == max(stack.end - (8 << 20), below + PAGE_SIZE)
        now = proc_maps(proc.pid)
        assert any(e[0] == lo and e[1] == stack.end and e[2] == "rw-p" for e in now), now
        assert not any(e[0] < lo < e[1] or (e[1] > lo - PAGE_SIZE and e[0] < lo) for e in now)
        assert process_vm_readv(proc.pid, lo, PAGE_SIZE) == bytes(PAGE_SIZE)
        deep = hi - 3 * PAGE_SIZE
        process_vm_writev(proc.pid, deep + 100, b"deeper")
        assert proc.written_pages() == [deep]


def test_drain_output_has_everything_written_before_the_stop(mm_recording):
    """The process printed, then stopped itself: drain_output() returns all of it,
    without waiting for the drain threads to get to it."""
    with rematerialize(mm_recording.db_path, 1) as proc:
        os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: stopped(proc.pid), "its SIGSTOP")
        out, err = proc.drain_output(timeout=5.0)
        assert out.endswith(b"dontneed: 0 0 e\n") and err == b""
        assert proc.drain_output() == (out, err)  # nothing new: the same


# ---- registers, auxv, layout, descriptors --------------------------------------------


def test_registers_equal_the_recorded_ones(recording):
    rec_gp, rec_fp, rec_xs = recording.ticks[1].regs
    with rematerialize(recording.db_path, 2) as proc:
        attach_stopped(proc.pid)
        try:
            gp, fp, xs = get_regs(proc.pid)
        finally:
            detach_stopped(proc.pid)
        assert proc.stats()["xstate_restored"] is True
    now = dict(zip(GPREG_NAMES, struct.unpack("<27Q", gp), strict=True))
    then = dict(zip(GPREG_NAMES, struct.unpack("<27Q", rec_gp), strict=True))
    assert now.pop("orig_rax") == 2**64 - 1  # no syscall restart on resume
    then.pop("orig_rax")
    assert now == then
    assert fp == rec_fp
    assert xs == rec_xs  # the whole XSAVE area: SSE, AVX (ymm upper halves), PKRU


def test_auxv_and_mm_fields_are_the_recorded_ones(recording):
    tick = recording.ticks[1]
    with rematerialize(recording.db_path, 2) as proc:
        with open(f"/proc/{proc.pid}/auxv", "rb") as f:
            assert f.read() == tick.auxv
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    engine = open_engine(recording.db_path)
    with Session(engine) as session:
        snap = queries.snapshot_at(session, 2)
        expected = [snap.start_code, snap.end_code, snap.start_stack]
        expected_tail = [
            snap.start_data,
            snap.end_data,
            snap.start_brk,
            snap.arg_start,
            snap.arg_end,
            snap.env_start,
            snap.env_end,
        ]
    engine.dispose()
    assert [int(fields[n - 3]) for n in (26, 27, 28)] == expected
    assert [int(fields[n - 3]) for n in range(45, 52)] == expected_tail


def test_every_mapping_at_its_address_with_its_protection_as_anonymous_memory(recording):
    tick = recording.ticks[1]
    with rematerialize(recording.db_path, 2) as proc:
        now = proc_maps(proc.pid)
    for m in tick.maps:
        covering = [e for e in now if e[0] < m.end and e[1] > m.start]
        assert covering and covering[0][0] <= m.start and covering[-1][1] >= m.end, m
        assert all(e[1] == n[0] for e, n in zip(covering[:-1], covering[1:], strict=True)), m
        for _lo, _hi, perms, inode, path in covering:
            assert perms == m.perms, (m, perms)
            assert inode == 0 and path in ("", "[heap]", "[stack]"), (m, path)


def test_regions_are_not_huge_pages(recording):
    """MADV_NOHUGEPAGE on every recorded region: tracking stays at 4 KiB."""
    with rematerialize(recording.db_path, 2) as proc:
        with open(f"/proc/{proc.pid}/smaps") as f:
            smaps = f.read()
    flags = {}
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", smaps):
        start = int(block.split("-", 1)[0], 16)
        flags[start] = re.search(r"^VmFlags:(.*)$", block, re.M).group(1).split()
    recorded = [
        start for start in flags if any(m.start <= start < m.end for m in recording.ticks[1].maps)
    ]
    assert len(recorded) >= 10 and all("nh" in flags[start] for start in recorded)


def test_only_descriptors_0_1_2(recording):
    with rematerialize(recording.db_path, 2) as proc:
        assert sorted(os.listdir(f"/proc/{proc.pid}/fd")) == ["0", "1", "2"]
        assert os.readlink(f"/proc/{proc.pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{proc.pid}/fd/1").startswith("pipe:")


def test_process_is_stopped_and_untraced(recording):
    with rematerialize(recording.db_path, 2) as proc:
        with open(f"/proc/{proc.pid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines())
        assert status["State"].startswith("T (stopped)")
        assert status["TracerPid"].strip() == "0"
        assert proc.pid == recording.pid  # the recorded tid, free again: reused


# ---- running it for real -------------------------------------------------------------


def test_runs_from_the_tick_to_its_exit_with_the_recorded_output(remat, recording):
    """Continue the process at tick 2 (after its second int3): it must finish exactly
    as the recorded run did: output, exit code, registers (xmm15), TLS, heap."""
    recorded_line = recording.stdout.splitlines()[-1]
    with remat(recording.db_path, 2) as proc:
        os.kill(proc.pid, signal.SIGCONT)
        status = proc.wait_exit(timeout=30)
        out, err = proc.output()
    assert os.waitstatus_to_exitcode(status) == 42
    assert proc._server.wait(timeout=10) == 0  # the server ends with its process
    assert proc.stats()["faults"] > 0  # its last word, after the end
    assert out.splitlines() == [recorded_line]
    assert recorded_line.endswith(b"xmm15=1122334455667788")
    assert err == b"bye\n"


def test_pages_dropped_by_the_process_read_as_zeros_and_count_as_written(remat, mm_recording):
    """madvise(MADV_DONTNEED) after the tick: those pages must read as zeros (not as
    recorded) and, once touched, count as written (they differ from the recording)."""
    region = region_of(mm_recording)
    with remat(mm_recording.db_path, 1) as proc:
        os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: b"dontneed:" in proc.output()[0], "the madvise")
        wait_for(lambda: stopped(proc.pid), "its SIGSTOP")
        assert proc.output()[0].splitlines()[-1] == b"dontneed: 0 0 e"
        written = set(proc.written_pages())
        assert {region, region + 3 * PAGE_SIZE} <= written
        assert region + 4 * PAGE_SIZE not in written  # read after the madvise: as recorded
        assert process_vm_readv(proc.pid, region + PAGE_SIZE, PAGE_SIZE) == bytes(PAGE_SIZE)


def test_mremap_growing_in_place_and_moving_recorded_memory(remat, mm_recording):
    """Growth in place inherits the registration: the new pages read as zeros.
    Moved pages keep their recorded contents at the new place, filled there on
    demand (page 9 and 15 of the region: 'j' and 'p')."""
    with remat(mm_recording.db_path, 1) as proc:
        os.kill(proc.pid, signal.SIGCONT)
        wait_for(lambda: stopped(proc.pid), "its SIGSTOP")
        os.kill(proc.pid, signal.SIGCONT)
        status = proc.wait_exit(timeout=30)
        out = proc.output()[0].splitlines()
    assert os.waitstatus_to_exitcode(status) == 0
    assert out[-2:] == [b"grown: 0 l", b"moved: j p"]  # page 63 as recorded: 'a' + 63 % 26


def test_nothing_is_left_behind(recording):
    # what earlier tests left for the garbage collector closes now, not during the check
    gc.collect()
    fds_before = sorted(os.listdir("/proc/self/fd"))
    with rematerialize(recording.db_path, 1) as proc:
        pid, server_pid = proc.pid, proc.server_pid
        process_vm_readv(proc.pid, region_of(recording), 16)
    assert not alive(pid) and not alive(server_pid)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


@pytest.mark.parametrize("traced", [False, True], ids=["untraced", "traced"])
def test_a_sigkilled_process_is_reported_ended_at_once(recording, traced):
    """A call the timeout cannot interrupt is stopped with SIGKILL to the process: the
    page server says GONE with the signal as soon as the process is reaped (by its tracer
    first, as gdbserver would), and every later request says the process has ended."""
    with rematerialize(recording.db_path, 1) as proc:
        if traced:
            attach_stopped(proc.pid)  # this test is its tracer, as gdbserver is
        os.kill(proc.pid, signal.SIGKILL)
        if traced:
            os.waitpid(proc.pid, 0x40000000)  # __WALL: the tracer reaps first
        status = proc.wait_exit(timeout=20)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        with pytest.raises(
            RematerializeError, match=re.escape("The process has ended (killed by signal 9).")
        ):
            proc.written_pages()
