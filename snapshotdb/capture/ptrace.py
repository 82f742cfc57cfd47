"""Registers of a stopped live thread (PTRACE_GETREGSET), and ptrace_stopped: seize and
stop every thread of a process from outside GDB (benchmarks, tools), so that this
thread is their tracer and may read their registers."""
from __future__ import annotations

import ctypes
import os

from ..errors import CaptureError
from ..regs import FPREGS_SIZE, GPREGS_SIZE, NT_PRFPREG, NT_PRSTATUS, NT_X86_XSTATE, XSTATE_MAX_SIZE
from .proc import thread_ids, thread_name
from .writer import ThreadState

PTRACE_GETREGSET = 0x4204
class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = None


def _ptrace():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.ptrace.restype = ctypes.c_long
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    return _libc.ptrace


def get_regset(tid: int, note_type: int, size: int) -> bytes:
    """PTRACE_GETREGSET: the kernel's own layout of one register set of a stopped tracee.

    Only the tracer (the thread that attached) may call it; GDB's Python runs on
    GDB's main thread, which is the tracer of its native inferiors.
    """
    buf = ctypes.create_string_buffer(size)
    iov = _IoVec(ctypes.cast(buf, ctypes.c_void_p), size)
    if _ptrace()(PTRACE_GETREGSET, tid, note_type, ctypes.byref(iov)) < 0:
        err = ctypes.get_errno()
        raise CaptureError(
            f"Cannot read the registers of thread {tid}: {os.strerror(err)}. The thread must be "
            "stopped and traced by this process (a native GDB inferior in all-stop mode).")
    return buf.raw[:iov.iov_len]


def read_thread(pid: int, tid: int) -> ThreadState:
    gpregs = get_regset(tid, NT_PRSTATUS, GPREGS_SIZE)
    fpregs = get_regset(tid, NT_PRFPREG, FPREGS_SIZE)
    try:
        xstate = get_regset(tid, NT_X86_XSTATE, XSTATE_MAX_SIZE)
    except CaptureError:
        xstate = None  # a CPU without XSAVE
    return ThreadState(tid, gpregs, fpregs, xstate, thread_name(pid, tid))


PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000  # __WALL: wait for clone threads too


class ptrace_stopped:
    """Context manager: seize and stop every thread of `pid`, detach on exit.

    For capture outside GDB (benchmarks, tools): inside the block this thread is
    the tracer, so snapshot_live(..., threads=None) can read the registers.
    Threads created while seizing are not handled (stop the process first if it
    spawns threads).
    """

    def __init__(self, pid: int):
        self.pid = pid
        self.tids: list[int] = []

    def __enter__(self) -> ptrace_stopped:
        try:
            for tid in thread_ids(self.pid):
                self._call(PTRACE_SEIZE, tid, "seize")
                self.tids.append(tid)
                self._call(PTRACE_INTERRUPT, tid, "interrupt")
                os.waitpid(tid, WALL)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for tid in self.tids:
            _ptrace()(PTRACE_DETACH, tid, None, None)
        self.tids = []

    @staticmethod
    def _call(request: int, tid: int, what: str) -> None:
        if _ptrace()(request, tid, None, None) < 0:
            err = ctypes.get_errno()
            raise CaptureError(f"Cannot {what} thread {tid}: {os.strerror(err)}. Please make "
                               "sure to run as root or with the ptrace capability.")
