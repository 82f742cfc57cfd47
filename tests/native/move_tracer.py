"""What the native move tests need besides the page server: a recording of
tests/native/move_target.c made by snapshotdb's capture (every thread), and a small
tracer that plays GDB's part in a move without GDB: it calls ttd_stub_apply() in the
process (an inferior call by ptrace) and sets every thread's recorded registers.

    with Tracer(proc.threads()) as tracer:
        proc.move(layout, ran, tracer.call)
        tracer.set_registers(layout)
        tracer.gpregs(tid), tracer.xstate(tid)
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from pathlib import Path

from snapshotdb.capture import ptrace_stopped, snapshot_live, writer_for_pid
from snapshotdb.db import open_engine
from snapshotdb.regs import GPREG_NAMES, GPREGS_SIZE, gpregs_dict, pack_gpregs
from tests.native.recording_fixture import _IoVec, _libc, process_vm_writev, ptrace

PTRACE_CONT, PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_SETFPREGS = 7, 12, 13, 15
PTRACE_DETACH, PTRACE_GETREGSET, PTRACE_SETREGSET = 17, 0x4204, 0x4205
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
NT_X86_XSTATE = 0x202
PTRACE_EVENT_STOP = 128
WALL = 0x40000000
XSTATE_MAX = 16384
STEPS = 6


def in_read(pid: int) -> bool:
    """Every thread of pid blocked in read(2) (the target between steps)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                if not f.read().startswith("0 "):
                    return False
        except OSError:
            return False
    return True


def record_steps(binary: Path, db: Path, steps: int = STEPS) -> list[list[int]]:
    """Run move_target and snapshot it after each step (ticks 1..steps), then kill it
    (its thread ids are free again); the thread ids of each tick."""
    engine = open_engine(db, create=True)
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    tids = []
    try:
        writer = writer_for_pid(engine, proc.pid)
        for n in range(1, steps + 1):
            proc.stdin.write(bytes([n]))
            proc.stdin.flush()
            assert proc.stdout.readline() == f"STEP {n}\n".encode()
            deadline = time.monotonic() + 30
            while not in_read(proc.pid):
                assert time.monotonic() < deadline, "the target did not block in read"
                time.sleep(0.005)
            with ptrace_stopped(proc.pid) as stopped:
                snapshot_live(writer, proc.pid)
                tids.append(sorted(stopped.tids))
    finally:
        proc.kill()
        proc.wait(timeout=30)
        engine.dispose()
    return tids


class Tracer:
    """Every thread of a rematerialized process seized and stopped, as gdbserver holds
    them; detached on exit (they stay in their group stop)."""

    def __init__(self, tids: list[int]) -> None:
        self.tids = list(tids)
        self._seized: list[int] = []

    def __enter__(self) -> Tracer:
        for tid in self.tids:
            ptrace(PTRACE_SEIZE, tid)
            self._seized.append(tid)
            ptrace(PTRACE_INTERRUPT, tid)
            os.waitpid(tid, WALL)
        return self

    def __exit__(self, *exc) -> None:
        for tid in self._seized:
            _libc.ptrace(PTRACE_DETACH, tid, 0, None)
        self._seized = []

    def gpregs(self, tid: int) -> bytes:
        buf = ctypes.create_string_buffer(GPREGS_SIZE)
        ptrace(PTRACE_GETREGS, tid, 0, buf)
        return buf.raw

    def xstate(self, tid: int) -> bytes:
        buf = ctypes.create_string_buffer(XSTATE_MAX)
        iov = _IoVec(ctypes.cast(buf, ctypes.c_void_p), XSTATE_MAX)
        ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, ctypes.byref(iov))
        return buf.raw[: iov.len]

    def call(self, fn: int, arg: int) -> int:
        """fn(arg) on the first thread, as GDB's inferior call: its registers are put back
        afterwards; it returns to address 0, where it stops with SIGSEGV."""
        tid = self.tids[0]
        saved = self.gpregs(tid)
        regs = gpregs_dict(saved)
        rsp = ((regs["rsp"] - 512) & ~0xF) - 8
        process_vm_writev(tid, rsp, bytes(8))  # a page not filled yet is served first
        regs.update(rip=fn, rdi=arg, rsp=rsp, rax=0, orig_rax=2**64 - 1)
        ptrace(PTRACE_SETREGS, tid, 0, ctypes.create_string_buffer(pack_gpregs(regs), GPREGS_SIZE))
        status = self._run(tid)
        assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == 11, hex(status)
        result = gpregs_dict(self.gpregs(tid))
        assert result["rip"] == 0, hex(result["rip"])
        ptrace(PTRACE_SETREGS, tid, 0, ctypes.create_string_buffer(saved, GPREGS_SIZE))
        return result["rax"]

    @staticmethod
    def _run(tid: int) -> int:
        """Continue tid until it stops for a reason of its own: a seized thread taken in
        a group stop reports the stop (PTRACE_EVENT_STOP) once more when continued."""
        for _ in range(8):
            ptrace(PTRACE_CONT, tid, 0, None)
            _, status = os.waitpid(tid, WALL)
            if not (os.WIFSTOPPED(status) and status >> 16 == PTRACE_EVENT_STOP):
                return status
        raise AssertionError(f"thread {tid} keeps reporting event stops")

    def set_registers(self, layout) -> None:
        """Every thread's recorded registers at the layout's tick (the threads in order)."""
        for tid, thread in zip(self.tids, layout.threads, strict=True):
            ptrace(PTRACE_SETREGS, tid, 0, ctypes.create_string_buffer(thread.gpregs, GPREGS_SIZE))
            if thread.xstate:
                buf = ctypes.create_string_buffer(thread.xstate, len(thread.xstate))
                iov = _IoVec(ctypes.cast(buf, ctypes.c_void_p), len(thread.xstate))
                ptrace(PTRACE_SETREGSET, tid, NT_X86_XSTATE, ctypes.byref(iov))
            else:
                ptrace(PTRACE_SETFPREGS, tid, 0, ctypes.create_string_buffer(thread.fpregs, 512))


# What of an XSAVE area a thread's state is: the x87/SSE registers (FXSAVE area up to
# the xmm registers' end) and the AVX upper halves (standard format offset 576).
XSTATE_PARTS = ((0, 28), (32, 416), (576, 832))


def same_vector_state(a: bytes, b: bytes) -> bool:
    return all(a[lo:hi] == b[lo:hi] for lo, hi in XSTATE_PARTS)


def describe_regs(gpregs: bytes) -> str:
    regs = gpregs_dict(gpregs)
    return " ".join(f"{name}={regs[name]:#x}" for name in GPREG_NAMES)
