"""ptrace(2) from Python: registers of a stopped live thread (PTRACE_GETREGSET), the raw
requests remote_syscall.py needs, and ptrace_stopped: seize and stop every thread of a
process from outside GDB (benchmarks, tools), so that this thread is their tracer.

Only the tracer (the thread that attached) may make these requests; GDB's Python runs on
GDB's main thread, which is the tracer of its native inferiors.
"""

from __future__ import annotations

import ctypes
import os
import struct

from ..errors import CaptureError
from ..regs import FPREGS_SIZE, GPREGS_SIZE, NT_PRFPREG, NT_PRSTATUS, NT_X86_XSTATE, XSTATE_MAX_SIZE
from .proc import thread_ids, thread_name
from .writer import ThreadState

# linux/ptrace.h
PTRACE_CONT = 7
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_GETSIGINFO = 0x4202
PTRACE_SETSIGINFO = 0x4203
PTRACE_GETREGSET = 0x4204
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_GETSIGMASK = 0x420A
PTRACE_SETSIGMASK = 0x420B
PTRACE_GET_SYSCALL_INFO = 0x420E
PTRACE_GET_RSEQ_CONFIGURATION = 0x420F
SIGINFO_SIZE = 128  # siginfo_t
SIGSET_SIZE = 8  # the kernel's sigset_t on x86_64
SYSCALL_INFO_SIZE = 88  # struct ptrace_syscall_info; op is its first byte
RSEQ_CONFIGURATION = struct.Struct("<QIIII")  # pointer, size, signature, flags, pad
WALL = 0x40000000  # __WALL: wait for clone threads too


class PtraceFailed(CaptureError):
    """A ptrace request failed; errno is the OS error."""

    def __init__(self, message: str, errno: int):
        super().__init__(message)
        self.errno = errno


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


def request(req: int, tid: int, addr=None, data=None, *, what: str) -> int:
    """One ptrace request; PtraceFailed("Cannot WHAT of thread TID: ...") when it fails."""
    result = _ptrace()(req, tid, addr, data)
    if result < 0:
        err = ctypes.get_errno()
        raise PtraceFailed(f"Cannot {what} of thread {tid}: {os.strerror(err)}.", err)
    return result


def get_regs(tid: int) -> bytearray:
    """struct user_regs_struct of a stopped tracee (PTRACE_GETREGS)."""
    buf = ctypes.create_string_buffer(GPREGS_SIZE)
    request(PTRACE_GETREGS, tid, None, buf, what="read the registers")
    return bytearray(buf.raw)


def set_regs(tid: int, regs: bytes) -> None:
    buf = ctypes.create_string_buffer(bytes(regs), GPREGS_SIZE)
    request(PTRACE_SETREGS, tid, None, buf, what="set the registers")


def get_siginfo(tid: int) -> bytes | None:
    """The siginfo of the stop, or None for a group-stop (which has none)."""
    buf = ctypes.create_string_buffer(SIGINFO_SIZE)
    try:
        request(PTRACE_GETSIGINFO, tid, None, buf, what="read the stop's siginfo")
    except PtraceFailed as exc:
        if exc.errno == 22:  # EINVAL: a group-stop
            return None
        raise
    return buf.raw


def set_siginfo(tid: int, siginfo: bytes) -> None:
    buf = ctypes.create_string_buffer(siginfo, SIGINFO_SIZE)
    request(PTRACE_SETSIGINFO, tid, None, buf, what="set the stop's siginfo")


def get_sigmask(tid: int) -> int:
    buf = ctypes.create_string_buffer(SIGSET_SIZE)
    request(PTRACE_GETSIGMASK, tid, SIGSET_SIZE, buf, what="read the signal mask")
    return struct.unpack("<Q", buf.raw)[0]


def set_sigmask(tid: int, mask: int) -> None:
    buf = ctypes.create_string_buffer(struct.pack("<Q", mask), SIGSET_SIZE)
    request(PTRACE_SETSIGMASK, tid, SIGSET_SIZE, buf, what="set the signal mask")


def syscall_stop_op(tid: int) -> int:
    """PTRACE_GET_SYSCALL_INFO's op: 0 not a system-call stop, 1 entry, 2 exit, 3 seccomp."""
    buf = ctypes.create_string_buffer(SYSCALL_INFO_SIZE)
    request(PTRACE_GET_SYSCALL_INFO, tid, SYSCALL_INFO_SIZE, buf, what="read the stop's kind")
    return buf.raw[0]


def rseq_area(tid: int) -> tuple[int, int] | None:
    """(rec_addr, size) of the thread's registered struct rseq, or None (none registered,
    or a kernel that does not say)."""
    buf = ctypes.create_string_buffer(RSEQ_CONFIGURATION.size)
    try:
        request(
            PTRACE_GET_RSEQ_CONFIGURATION,
            tid,
            RSEQ_CONFIGURATION.size,
            buf,
            what="read the rseq configuration",
        )
    except PtraceFailed:
        return None
    pointer, size, _, _, _ = RSEQ_CONFIGURATION.unpack(buf.raw)
    return (pointer, size) if pointer and size else None


def resume_to_syscall_stop(tid: int, signal: int = 0) -> int:
    """PTRACE_SYSCALL and wait for the next stop; its wait status. PtraceFailed when the
    thread is gone instead."""
    request(PTRACE_SYSCALL, tid, None, signal, what="resume to a system call stop")
    _, status = os.waitpid(tid, WALL)
    if not os.WIFSTOPPED(status):
        raise PtraceFailed(
            f"Thread {tid} ended while it made a system call for the recorder.", 3
        )  # ESRCH
    return status


def get_regset(tid: int, note_type: int, size: int) -> bytes:
    """PTRACE_GETREGSET: the kernel's own layout of one register set of a stopped tracee."""
    buf = ctypes.create_string_buffer(size)
    iov = _IoVec(ctypes.cast(buf, ctypes.c_void_p), size)
    if _ptrace()(PTRACE_GETREGSET, tid, note_type, ctypes.byref(iov)) < 0:
        err = ctypes.get_errno()
        raise CaptureError(
            f"Cannot read the registers of thread {tid}: {os.strerror(err)}. The thread must be "
            "stopped and traced by this process (a native GDB inferior in all-stop mode)."
        )
    return buf.raw[: iov.iov_len]


def read_thread(pid: int, tid: int) -> ThreadState:
    gpregs = get_regset(tid, NT_PRSTATUS, GPREGS_SIZE)
    fpregs = get_regset(tid, NT_PRFPREG, FPREGS_SIZE)
    try:
        xstate = get_regset(tid, NT_X86_XSTATE, XSTATE_MAX_SIZE)
    except CaptureError:
        xstate = None  # a CPU without XSAVE
    return ThreadState(tid, gpregs, fpregs, xstate, thread_name(pid, tid))


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
    def _call(req: int, tid: int, what: str) -> None:
        if _ptrace()(req, tid, None, None) < 0:
            err = ctypes.get_errno()
            raise CaptureError(
                f"Cannot {what} thread {tid}: {os.strerror(err)}. Please make "
                "sure to run as root or with the ptrace capability."
            )
