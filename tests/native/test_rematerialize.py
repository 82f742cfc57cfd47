"""Rematerialization (issue 3): a recorded process rebuilt at a tick, memory filled
lazily through userfaultfd, written pages tracked exactly. Real processes, real
recordings (recording_fixture.py), no GDB."""
from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import pytest

from sqlalchemy.orm import Session

from gdb_plugin.remat import RematerializeError, rematerialize
from snapshotdb import queries
from snapshotdb.db import open_engine
from snapshotdb.pages import PAGE_SIZE, encode
from snapshotdb.reader import PageReader
from tests.conftest import TOP, VENV_PYTHON, require
from tests.native.recording_fixture import (attach_stopped, detach_stopped, get_regs,
                                            process_vm_readv, process_vm_writev)

pytestmark = pytest.mark.timeout(120)

GPREG_NAMES = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs "
               "eflags rsp ss fs_base gs_base ds es fs gs").split()
STUB_IMAGE_START = 0x2F0000000000


def region_of(recording) -> int:
    """The address of remat_target's 1 MiB mmap region (it prints it)."""
    return int(re.search(rb"region=(0x[0-9a-f]+)", recording.stdout).group(1), 16)


def readable(maps):
    return [m for m in maps if m.perms[0] == "r"]


def db_bytes(db_path, tick: int, start: int, end: int) -> bytes:
    engine = open_engine(db_path)
    try:
        with PageReader(engine, tick) as reader:
            return reader.read(start, end - start)
    finally:
        engine.dispose()


def proc_maps(pid: int) -> list[tuple[int, int, str, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            out.append((lo, hi, parts[1], int(parts[4]), parts[5].strip() if len(parts) > 5 else ""))
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


# ---- memory -------------------------------------------------------------------------

# How written pages are found (gdb_plugin/remat/client.py): forced, and the diff
# tracker chosen by "auto" on a kernel that lacks what wp-async needs (testing knobs).
TRACKERS = {
    "wp-async": ({"tracker": "wp-async"}, {}),
    "diff": ({"tracker": "diff"}, {}),
    "diff-auto-no-wp-async": ({}, {"TTD_UFFD_FEATURES_MASK": hex(0x1FFFF & ~(1 << 15))}),
    "diff-auto-no-pagemap-scan": ({}, {"TTD_NO_PAGEMAP_SCAN": "1"}),
}


@pytest.fixture(params=list(TRACKERS))
def remat(request, monkeypatch):
    """rematerialize() with each tracker; remat.tracker is the one that must run."""
    kwargs, env = TRACKERS[request.param]
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def start(db_path, tick, **more):
        return _checked(rematerialize(db_path, tick, **kwargs, **more), start.tracker)
    start.tracker = "wp-async" if request.param == "wp-async" else "diff"
    return start


class _checked:
    """A rematerialization whose process must run the given tracker."""

    def __init__(self, cm, tracker: str):
        self.cm, self.tracker = cm, tracker

    def __enter__(self):
        proc = self.cm.__enter__()
        try:
            assert proc.tracker == self.tracker
        except BaseException:
            self.cm.__exit__(None, None, None)
            raise
        return proc

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)



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
    return sorted([heap.start + PAGE_SIZE, stack.end - PAGE_SIZE, region, region + PAGE_SIZE,
                   region + 200 * PAGE_SIZE, libc_rw.start, data.start])


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
        assert process_vm_readv(proc.pid, heap.start, heap.end - heap.start) == \
            db_bytes(recording.db_path, 1, heap.start, heap.end)
        assert proc.stats()["faults"] == 0 and proc.written_pages() == []
    with remat(recording.db_path, 1, mode="eager") as proc:
        for m in readable(recording.ticks[0].maps):
            assert process_vm_readv(proc.pid, m.start, m.end - m.start) == \
                db_bytes(recording.db_path, 1, m.start, m.end)
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


def stopped_again(proc) -> None:
    os.kill(proc.pid, signal.SIGCONT)
    wait_for(lambda: stopped(proc.pid), "its SIGSTOP")


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
        return [MapLine(0x400000, below_end, "rw-p", 0, ""),
                MapLine(top - 132 * 1024, top, "rw-p", 0, "[stack]")]
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
    now = dict(zip(GPREG_NAMES, struct.unpack("<27Q", gp)))
    then = dict(zip(GPREG_NAMES, struct.unpack("<27Q", rec_gp)))
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
        expected_tail = [snap.start_data, snap.end_data, snap.start_brk, snap.arg_start,
                         snap.arg_end, snap.env_start, snap.env_end]
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
        assert all(e[1] == n[0] for e, n in zip(covering, covering[1:])), m  # no holes
        for lo, hi, perms, inode, path in covering:
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
    recorded = [start for start in flags
                if any(m.start <= start < m.end for m in recording.ticks[1].maps)]
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


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    """Wait for an event the test cannot be told about otherwise (bounded, not timed)."""
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


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
    fds_before = sorted(os.listdir("/proc/self/fd"))
    with rematerialize(recording.db_path, 1) as proc:
        pid, server_pid = proc.pid, proc.server_pid
        process_vm_readv(proc.pid, region_of(recording), 16)
    assert not alive(pid) and not alive(server_pid)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


# ---- the sandbox -----------------------------------------------------------------


def test_sandbox_refuses_what_reaches_outside_and_counts_it(sandbox_recording):
    base = sandbox_recording.base
    open(base + ".keep", "w").close()
    try:
        with rematerialize(sandbox_recording.db_path, 1) as proc:  # the sandbox is the default
            os.kill(proc.pid, signal.SIGCONT)
            status = proc.wait_exit(timeout=30)
            out = proc.output()[0].splitlines()[-1]
            blocked = proc.stats()["blocked_syscalls"]
        assert os.waitstatus_to_exitcode(status) == 0
        assert out == b"open -1 1 unlink -1 1 kill-parent -1 1 kill-self 0 fork -1 1"
        assert os.path.exists(base + ".keep") and not os.path.exists(base + ".new")
        assert blocked == [
            {"name": "openat", "count": 1, "detail": base + ".new"},
            {"name": "unlink", "count": 1, "detail": base + ".keep"},
            {"name": "kill", "count": 1, "detail": f"signal 0 to pid {proc.server_pid}"},
            {"name": "clone", "count": 1, "detail": None}]
    finally:
        for suffix in (".keep", ".new"):
            if os.path.exists(base + suffix):
                os.unlink(base + suffix)


@pytest.fixture
def escape_files(escape_recording):
    """The files remat_escape goes for, as the recorded run left them."""
    base = escape_recording.base
    for suffix in (".keep", ".victim"):
        with open(base + suffix, "w") as f:
            f.write("recorded\n")
    yield base
    for suffix in (".keep", ".victim", ".moved"):
        if os.path.exists(base + suffix):
            os.unlink(base + suffix)


@pytest.mark.parametrize("tracker", ["wp-async", "diff"])
def test_every_way_out_is_refused_and_listed_with_its_detail(escape_recording, escape_files, tracker):
    """unlink (twice), open(O_WRONLY|O_TRUNC), rename, kill(getppid(), SIGKILL),
    socket + connect (IPv4, IPv6) + sendto (unix), fork, execve: each fails with EPERM and appears with its
    telling argument; the files and the parent (the page server) are untouched; a
    signal to itself passes. The path strings are read from pages the process has
    not touched yet (they are filled for the read)."""
    base = escape_files
    with rematerialize(escape_recording.db_path, 1, tracker=tracker) as proc:
        server_pid = proc.server_pid
        os.kill(proc.pid, signal.SIGCONT)
        status = proc.wait_exit(timeout=30)  # the server's last word: it survived the kill
        out = proc.output()[0].splitlines()[-1]
        blocked = proc.stats()["blocked_syscalls"]
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == (b"unlink -1 1 open -1 1 rename -1 1 kill -1 1 socket -1 1 connect -1 1 "
                   b"fork -1 1 execve -1 1 self 0 10")
    for suffix in (".keep", ".victim"):
        with open(base + suffix) as f:
            assert f.read() == "recorded\n"
    assert not os.path.exists(base + ".moved")
    assert blocked == [
        {"name": "unlink", "count": 2, "detail": base + ".keep"},
        {"name": "openat", "count": 1, "detail": base + ".victim"},
        {"name": "rename", "count": 1, "detail": f"{base}.victim -> {base}.moved"},
        {"name": "kill", "count": 1, "detail": f"SIGKILL to pid {server_pid}"},
        {"name": "socket", "count": 1, "detail": "AF_INET SOCK_STREAM"},
        {"name": "connect", "count": 1, "detail": "AF_INET 127.0.0.1:9"},
        {"name": "connect", "count": 1, "detail": "AF_INET6 [::1]:53"},
        {"name": "sendto", "count": 1, "detail": f"AF_UNIX {base}.sock"},
        {"name": "clone", "count": 1, "detail": None},
        {"name": "execve", "count": 1, "detail": "/bin/true"},
    ]


def test_without_the_sandbox_calls_reach_outside(sandbox_recording):
    """The same run without the sandbox really creates and deletes files: the
    sandbox test above would see it."""
    base = sandbox_recording.base
    open(base + ".keep", "w").close()
    try:
        with rematerialize(sandbox_recording.db_path, 1, sandbox=False) as proc:
            os.kill(proc.pid, signal.SIGCONT)
            proc.wait_exit(timeout=30)
            assert proc.stats()["blocked_syscalls"] == [] and proc.stats()["sandbox"] is False
            words = proc.output()[0].splitlines()[-1].split()
        assert not os.path.exists(base + ".keep") and os.path.exists(base + ".new")
        assert int(words[1]) >= 0 and words[3:5] == [b"unlink", b"0"]  # open, unlink worked
        forked = int(words[words.index(b"fork") + 1])
        assert forked > 0 and not alive(forked)  # its child was reaped, not left behind
    finally:
        for suffix in (".keep", ".new"):
            if os.path.exists(base + suffix):
                os.unlink(base + suffix)


# ---- libttdmem.so: /proc/PID/mem reads of pages not filled yet ----------------------

READ_MEM = ("import os, sys\n"
            "fd = os.open(f'/proc/{sys.argv[1]}/mem', os.O_RDONLY)\n"
            "try:\n    sys.stdout.write(os.pread(fd, 16, int(sys.argv[2])).hex())\n"
            "except OSError as e:\n    sys.stdout.write(f'errno {e.errno}')\n")


def read_mem_in_child(pid: int, target_addr: int, preload: str | None) -> str:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    return subprocess.run([sys.executable, "-c", READ_MEM, str(pid), str(target_addr)], env=env,
                          capture_output=True, text=True, timeout=60, check=True).stdout


def test_mem_preload_reads_pages_not_filled_yet(remat, recording):
    """Without libttdmem.so, pread on /proc/PID/mem of a missing page fails with EIO
    (what gdbserver would hit); with it, the page is faulted in and read."""
    heap = next(m for m in recording.ticks[0].maps if m.path == "[heap]")
    target_addr = heap.start + 0x2A0  # malloc's first chunk: "heap string"
    with remat(recording.db_path, 1) as proc:
        assert read_mem_in_child(proc.pid, target_addr, None) == "errno 5"
        got = read_mem_in_child(proc.pid, target_addr, proc.mem_preload)
        assert bytes.fromhex(got) == process_vm_readv(proc.pid, target_addr, 16)
        assert bytes.fromhex(got).startswith(b"heap string")
        assert proc.written_pages() == []


# ---- errors --------------------------------------------------------------------------


def test_unknown_tick(recording):
    with pytest.raises(RematerializeError, match=re.escape("No tick 99: valid ticks are 1 to 2.")):
        with rematerialize(recording.db_path, 99):
            pass


@pytest.fixture
def world_readable_dir():
    """A directory user nobody can read (pytest's own tmp dirs are root-only)."""
    import tempfile
    path = tempfile.mkdtemp(prefix="ttd-native-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_no_permission_for_userfaultfd(recording, world_readable_dir):
    """As user nobody, without CAP_SYS_PTRACE, unprivileged userfaultfd off and
    /dev/userfaultfd root-only, userfaultfd is refused: the message names every fix."""
    with open("/proc/sys/vm/unprivileged_userfaultfd") as f:
        require(f.read().strip() == "0", "vm.unprivileged_userfaultfd is on: nobody may use userfaultfd")
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is missing")
    require(not os.path.exists("/dev/userfaultfd") or os.stat("/dev/userfaultfd").st_mode & 0o006 == 0,
            "/dev/userfaultfd is open to everyone")
    db = os.path.join(world_readable_dir, "remat.db")
    shutil.copy(recording.db_path, db)
    os.chmod(db, 0o644)
    code = ("import sys; from gdb_plugin.remat import rematerialize, RematerializeError\n"
            f"try:\n    with rematerialize({str(db)!r}, 1):\n        pass\n"
            "except RematerializeError as e:\n    print(e); sys.exit(2)\n")
    run = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          "--inh-caps=-all", "--bounding-set=-all", str(VENV_PYTHON), "-c", code],
                         capture_output=True, text=True, timeout=60, cwd=TOP,
                         env=dict(os.environ, PYTHONPATH=str(TOP)))
    assert run.returncode == 2, run.stderr
    assert run.stdout.strip() == (
        "no permission for userfaultfd: run as root or with CAP_SYS_PTRACE, or set sysctl "
        "vm.unprivileged_userfaultfd=1, or give this user read-write access to /dev/userfaultfd")


@pytest.mark.parametrize("mask, missing", [
    ("0", "WP_ASYNC WP_UNPOPULATED"),
    (hex(0x1FFFF & ~(1 << 15)), "WP_ASYNC"),
], ids=["no-wp-features", "no-wp-async"])
def test_kernel_without_wp_async_when_wp_async_is_forced(recording, monkeypatch, mask, missing):
    monkeypatch.setenv("TTD_UFFD_FEATURES_MASK", mask)
    with pytest.raises(RematerializeError) as exc:
        with rematerialize(recording.db_path, 1, tracker="wp-async"):
            pass
    assert str(exc.value) == (
        f"this kernel's userfaultfd lacks {missing}: the wp-async tracker needs Linux 6.7 or "
        "newer (the diff tracker works without it)")


def test_kernel_without_pagemap_scan_when_wp_async_is_forced(recording, monkeypatch):
    monkeypatch.setenv("TTD_NO_PAGEMAP_SCAN", "1")
    with pytest.raises(RematerializeError,
                       match=r"^this kernel lacks the PAGEMAP_SCAN ioctl \(.*\): the wp-async tracker "
                             r"needs Linux 6.7 or newer \(the diff tracker works without it\)$"):
        with rematerialize(recording.db_path, 1, tracker="wp-async"):
            pass


@pytest.mark.parametrize("knob, value, missing", [
    ("TTD_UFFD_FEATURES_MASK", hex(0x1FFFF & ~(1 << 15)), "UFFD_FEATURE_WP_ASYNC"),
    ("TTD_UFFD_FEATURES_MASK", "0", "UFFD_FEATURE_WP_ASYNC"),
    ("TTD_NO_PAGEMAP_SCAN", "1", "the PAGEMAP_SCAN ioctl"),
], ids=["no-wp-async", "no-wp-features", "no-pagemap-scan"])
def test_auto_falls_back_to_the_diff_tracker_with_a_notice(recording, monkeypatch, knob, value, missing):
    monkeypatch.setenv(knob, value)
    with rematerialize(recording.db_path, 1) as proc:
        assert proc.tracker == "diff" and proc.stats()["tracker"] == "diff"
        assert proc.notice == (f"ttd: this kernel lacks {missing} (Linux >= 6.7); using the diff "
                               "tracker: writes that leave bytes unchanged are not seen.")


def test_auto_takes_wp_async_here_without_a_notice(recording):
    with rematerialize(recording.db_path, 1) as proc:
        assert (proc.tracker, proc.notice) == ("wp-async", None)
    with rematerialize(recording.db_path, 1, tracker="diff") as proc:
        assert (proc.tracker, proc.notice) == ("diff", None)  # asked for: no notice


def test_unknown_tracker(recording):
    with pytest.raises(RematerializeError, match=re.escape(
            "Unknown tracker 'soft-dirty': use one of auto, diff, wp-async.")):
        rematerialize(recording.db_path, 1, tracker="soft-dirty")


def image_end() -> int:
    out = subprocess.run(["readelf", "-lW", str(TOP / "native" / "ttd-stub")], capture_output=True,
                         text=True, check=True).stdout
    ends = [int(f[2], 16) + int(f[5], 16) for f in (line.split() for line in out.splitlines())
            if f and f[0] == "LOAD"]
    return (max(ends) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def test_mapping_overlapping_the_stub_image(recording, tmp_path):
    db = tmp_path / "overlap.db"
    shutil.copy(recording.db_path, db)
    with sqlite3.connect(db) as conn:
        snap_id = conn.execute("SELECT id FROM snapshot WHERE tick = 1").fetchone()[0]
        conn.execute("INSERT INTO mapping (snapshot_id, start, end, perms, offset, path) "
                     "VALUES (?, ?, ?, 'rw-p', 0, '')",
                     (snap_id, STUB_IMAGE_START + 0x1000, STUB_IMAGE_START + 0x3000))
    with pytest.raises(RematerializeError) as exc:
        with rematerialize(db, 1):
            pass
    assert str(exc.value) == (
        f"recorded mapping 0x2f0000001000-0x2f0000003000 overlaps ttd-stub's image "
        f"0x2f0000000000-{image_end():#x}: rebuild native/ with another STUB_BASE (native/Makefile)")


def corrupt_page(db, rec_addr: int, tick: int) -> None:
    """Replace a stored page's bytes by a valid encoding of other bytes (hash kept)."""
    with sqlite3.connect(db) as conn:
        content_id = conn.execute(
            "SELECT content_id FROM page_version WHERE address = ? AND first_tick <= ? "
            "ORDER BY first_tick DESC LIMIT 1", (rec_addr, tick)).fetchone()[0]
        _, codec, data = encode(b"\x66" * PAGE_SIZE)
        conn.execute("UPDATE page_content SET codec = ?, data = ? WHERE id = ?", (codec, data, content_id))


def test_corrupt_page_kills_the_process_and_names_tick_and_address(recording, tmp_path):
    db = tmp_path / "corrupt.db"
    shutil.copy(recording.db_path, db)
    bad = region_of(recording) + 4 * PAGE_SIZE
    corrupt_page(db, bad, 1)
    with rematerialize(db, 1) as proc:
        pid = proc.pid
        assert process_vm_readv(proc.pid, region_of(recording) + 100 * PAGE_SIZE, 8)  # fine pages serve
        with pytest.raises(OSError):
            process_vm_readv(proc.pid, bad, 8)  # never served: the read fails
        assert not alive(pid)
        with pytest.raises(RematerializeError) as exc:
            proc.stats()
    assert str(exc.value) == (f"page {bad:#x} at tick 1 is corrupt "
                              "(its sha256 does not match the recorded digest)")


def test_corrupt_neighbour_in_fault_around_window_is_caught_too(recording, tmp_path):
    db = tmp_path / "corrupt2.db"
    shutil.copy(recording.db_path, db)
    region = region_of(recording)
    corrupt_page(db, region + 6 * PAGE_SIZE, 1)
    with rematerialize(db, 1, fault_around_pages=16) as proc:
        process_vm_readv(proc.pid, region, 8)  # one page
        with pytest.raises(OSError):
            process_vm_readv(proc.pid, region + PAGE_SIZE, 8)  # sequential: its window holds page 6
        with pytest.raises(RematerializeError,
                           match=f"^page {region + 6 * PAGE_SIZE:#x} at tick 1 is corrupt "):
            proc.stats()
