"""The capture library outside GDB, as benchmarks use it: ptrace_stopped + snapshot_live."""

from __future__ import annotations

import os
import signal

import pytest
from sqlalchemy.orm import Session

from snapshotdb import queries
from snapshotdb.capture import (
    CaptureError,
    ptrace_stopped,
    read_maps,
    snapshot_live,
    writer_for_pid,
)
from snapshotdb.db import open_engine
from snapshotdb.regs import gpreg
from tests.record.memory import TickMemory

HEAP_MIB = 16


@pytest.fixture
def held(hold):
    return hold(HEAP_MIB)


def test_snapshots_of_a_process_stopped_with_ptrace(held, tmp_path):
    proc, exe = held
    engine = open_engine(tmp_path / "h.db", create=True)
    writer = writer_for_pid(engine, proc.pid)
    with ptrace_stopped(proc.pid):
        first = snapshot_live(writer, proc.pid, note="first")
        heap = max((m for m in read_maps(proc.pid) if m.path == ""), key=lambda m: m.end - m.start)
        before = read_live(proc.pid, heap.start, heap.end)
    os.kill(proc.pid, signal.SIGUSR1)
    assert proc.stdout.read(1) == b"c"  # the 10 pages are rewritten
    with ptrace_stopped(proc.pid):
        second = snapshot_live(writer, proc.pid, reason="manual")
        after = read_live(proc.pid, heap.start, heap.end)
    live_changed = {
        heap.start + off
        for off in range(0, len(before), 4096)
        if before[off : off + 4096] != after[off : off + 4096]
    }
    assert (first.tick, second.tick) == (1, 2)
    assert first.versions_written >= HEAP_MIB * 256
    # 10 heap pages, plus the few stack and libc pages that signal delivery touches
    assert 10 <= second.versions_written <= 32
    # the kernel said which pages were written: a few dozen read, not the 16 MiB heap
    assert (first.tracker, second.tracker) == ("wp-async", "wp-async")
    assert second.bytes_scanned < 1 << 20 < HEAP_MIB << 20 <= first.bytes_scanned
    with Session(engine) as session:
        snap = queries.snapshot_at(session, 1)
        assert snap.note == "first" and [t.tid for t in snap.threads] == [proc.pid]
        assert gpreg(snap.threads[0].gpregs, "rip") == snap.pc
        assert queries.recording(session).exe_path == str(exe)
        tick1, tick2 = TickMemory(session, 1), TickMemory(session, 2)
        assert tick1.read(heap.start, heap.end - heap.start) == before
        assert tick2.read(heap.start, heap.end - heap.start) == after
        stored_changed = {
            a
            for a in set(tick1.map) | set(tick2.map)
            if heap.start <= a < heap.end and tick1.map.get(a) != tick2.map.get(a)
        }
        assert stored_changed == live_changed and len(live_changed) >= 10
    engine.dispose()


def read_live(pid: int, start: int, end: int) -> bytes:
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(start)
        return mem.read(end - start)


def test_registers_need_a_tracer(held, tmp_path):
    proc, _ = held
    engine = open_engine(tmp_path / "h.db", create=True)
    with pytest.raises(CaptureError, match=rf"^Cannot read the registers of thread {proc.pid}: "):
        snapshot_live(writer_for_pid(engine, proc.pid), proc.pid)
    engine.dispose()


def test_process_gone(tmp_path):
    engine = open_engine(tmp_path / "h.db", create=True)
    with pytest.raises(CaptureError, match=r"^No process 999999999: it has exited\.$"):
        writer_for_pid(engine, 999999999)
    engine.dispose()
