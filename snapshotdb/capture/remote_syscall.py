"""System calls made by a stopped, traced process on the recorder's behalf.

The write tracker (write_tracker.py) needs userfaultfd(2) run inside the recorded process
(the descriptor is then taken with pidfd_getfd(2)) and close(2) of it there. They run
without any of the program's own code:

    save      the thread's registers, signal mask, the siginfo of its stop, and its rseq
              area (the kernel rewrites cpu_id there whenever the thread goes back to
              user space, as it does to make the calls)
    block     every signal (PTRACE_SETSIGMASK): nothing is delivered meanwhile
    per call  rip = a `syscall` instruction the process has mapped (in its [vdso]),
              rax = number, rdi, rsi, rdx = arguments, orig_rax = -1 (no restart of a
              call it was in); PTRACE_SYSCALL to the entry stop and to the exit stop;
              rax = the result
    return    a SIGSTOP sent to the thread stops it again in a signal-delivery stop
              before it reaches user space, as it was stopped before
    restore   registers, signal mask, siginfo of the stop, the rseq area's bytes

Nothing is written to the program's memory, no other thread runs, errno (in the program's
TLS) is untouched. An inferior call from GDB (`call syscall(323, ...)`) was the other way;
it is not taken because it needs a `syscall` symbol (a static program may have none), runs
the other threads unless scheduler-locking is on, can stop at the user's breakpoints,
writes the stack below rsp, and the recorder also runs outside GDB (ptrace_stopped).

Because the thread ends in a signal-delivery stop with its own registers and siginfo, it
resumes exactly as from its own stop: a system call the stop interrupted (rax = -ERESTART*)
restarts, or returns EINTR to a handler of a signal that arrives meanwhile, as the kernel
decides then; a signal GDB passes on resume keeps its siginfo.

Which thread (usable_thread): one in a signal-delivery, group or PTRACE_EVENT_STOP stop; not
at a system-call entry/exit stop or a fork/exec/clone event (the pending call would run
instead of ours); a 64-bit thread; not inside a call that swapped the signal mask
(sigsuspend, ppoll, pselect, epoll_pwait), whose saved mask PTRACE_SETSIGMASK would lose.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import struct

from ..errors import CaptureError
from ..regs import GPREG_NAMES
from . import ptrace
from .proc import MappingInfo

SYSCALL_INSN = b"\x0f\x05"
CS_64BIT = 0x33
# -ERESTARTSYS, -ERESTARTNOINTR, -ERESTARTNOHAND, -ERESTART_RESTARTBLOCK (linux/errno.h)
ERESTART = {512, 513, 514, 516}
# Calls that install a temporary signal mask and restore it on return (TIF_RESTORE_SIGMASK)
SIGMASK_SWAPPING = {130, 270, 271, 281, 333, 441}  # rt_sigsuspend pselect6 ppoll epoll_pwait
#                                                     io_pgetevents epoll_pwait2
PTRACE_EVENT_STOP = 128
ALL_SIGNALS = (1 << 64) - 1
ORIG_RAX = GPREG_NAMES.index("orig_rax")
RAX, RIP, CS = (GPREG_NAMES.index(n) for n in ("rax", "rip", "cs"))
ARG_REGS = tuple(GPREG_NAMES.index(n) for n in ("rdi", "rsi", "rdx"))
NR_TGKILL = 234

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class CannotRunSyscall(CaptureError):
    """No thread of the process can make a system call for the recorder now."""


def _word(regs: bytes | bytearray, index: int) -> int:
    return struct.unpack_from("<Q", regs, 8 * index)[0]


def _set_word(regs: bytearray, index: int, value: int) -> None:
    struct.pack_into("<Q", regs, 8 * index, value & (2**64 - 1))


def _signed(value: int) -> int:
    return value - 2**64 if value >= 2**63 else value


def why_unusable(tid: int) -> str | None:
    """Why thread `tid` cannot make a system call for the recorder now, or None."""
    if ptrace.syscall_stop_op(tid) != 0:
        return "it is stopped at a system call"
    siginfo = ptrace.get_siginfo(tid)
    if siginfo is not None:
        signo, _, code = struct.unpack_from("<iii", siginfo)
        event = (code >> 8) & 0xFF if signo == signal.SIGTRAP and code > 0 else 0
        if event and event != PTRACE_EVENT_STOP:
            return "it is stopped at a fork, exec or clone event"
    regs = ptrace.get_regs(tid)
    if _word(regs, CS) != CS_64BIT:
        return "it runs 32-bit code"
    orig = _signed(_word(regs, ORIG_RAX))
    if orig in SIGMASK_SWAPPING and -_signed(_word(regs, RAX)) in ERESTART:
        return "it waits in a call that swapped its signal mask"
    return None


def usable_thread(tids: list[int]) -> tuple[int | None, str]:
    """The first of `tids` that can make system calls for the recorder, and when there is
    none, (None, why the first one cannot)."""
    first_reason = ""
    for tid in tids:
        reason = why_unusable(tid)
        if reason is None:
            return tid, ""
        first_reason = first_reason or f"thread {tid}: {reason}"
    return None, first_reason


def find_syscall_insn(pid: int, mappings: list[MappingInfo]) -> int | None:
    """Address of a `syscall` instruction (bytes 0f 05) in an executable mapping of the
    process: its [vdso] first (the kernel's, always there), else any r-x mapping."""
    executable = [m for m in mappings if "x" in m.perms]
    executable.sort(key=lambda m: m.path != "[vdso]")
    try:
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:
        return None
    try:
        for m in executable:
            try:
                data = os.pread(mem, min(m.end - m.start, 1 << 20), m.start)
            except OSError:
                continue
            found = re.search(re.escape(SYSCALL_INSN), data)
            if found:
                return m.start + found.start()
    finally:
        os.close(mem)
    return None


class RemoteSyscalls:
    """Context manager: thread `tid` of process `tgid` (see usable_thread) makes system
    calls with call(); on exit it is as it was. Every result is the kernel's (a negative
    errno on failure)."""

    def __init__(self, tgid: int, tid: int, syscall_insn: int):
        self.tgid = tgid
        self.tid = tid
        self.syscall_insn = syscall_insn
        self.deferred: list[int] = []  # stop signals that arrived meanwhile (SIGSTOP)

    def __enter__(self) -> RemoteSyscalls:
        tid = self.tid
        self.saved_regs = ptrace.get_regs(tid)
        self.saved_siginfo = ptrace.get_siginfo(tid)
        self.saved_mask = ptrace.get_sigmask(tid)
        self.rseq = ptrace.rseq_area(tid)
        self.saved_rseq = None
        if self.rseq is not None:
            rec_addr, size = self.rseq
            self.saved_rseq = self._memory(os.O_RDONLY, os.pread, size, rec_addr)
        ptrace.set_sigmask(tid, ALL_SIGNALS)
        return self

    def call(self, number: int, *args: int) -> int:
        regs = bytearray(self.saved_regs)
        _set_word(regs, RIP, self.syscall_insn)
        _set_word(regs, RAX, number)
        _set_word(regs, ORIG_RAX, -1)
        for index, value in zip(ARG_REGS, args, strict=False):
            _set_word(regs, index, value)
        ptrace.set_regs(self.tid, regs)
        self._to_syscall_stop()  # entry
        self._to_syscall_stop()  # exit
        return _signed(_word(ptrace.get_regs(self.tid), RAX))

    def _to_syscall_stop(self) -> None:
        """Resume to the next system-call stop; a signal stop on the way (only SIGSTOP can
        come: every other signal is blocked) is remembered and sent again at the end."""
        while True:
            status = ptrace.resume_to_syscall_stop(self.tid)
            sig = os.WSTOPSIG(status) & 0x7F
            if sig == signal.SIGTRAP and status >> 16 == 0:
                return
            if status >> 16 == 0 and sig != signal.SIGTRAP:
                self.deferred.append(sig)

    def __exit__(self, *exc) -> None:
        """Back to a signal-delivery stop, with everything as it was: the thread then
        resumes exactly as from its own stop (a system call it was in restarts, or
        returns EINTR to a handler, as the kernel decides at that moment)."""
        tid = self.tid
        self._to_signal_stop()
        ptrace.set_regs(tid, self.saved_regs)
        ptrace.set_sigmask(tid, self.saved_mask)
        if self.saved_siginfo is not None:
            ptrace.set_siginfo(tid, self.saved_siginfo)
        if self.saved_rseq is not None:
            self._memory(os.O_RDWR, os.pwrite, self.saved_rseq, self.rseq[0])
        for sig in self.deferred:
            _tgkill(self.tgid, tid, sig)

    def _memory(self, flags: int, io, *args):
        """pread or pwrite on the process's memory (/proc/PID/mem)."""
        fd = os.open(f"/proc/{self.tgid}/mem", flags)
        try:
            return io(fd, *args)
        finally:
            os.close(fd)

    def _to_signal_stop(self) -> None:
        """From the system-call-exit stop to a signal-delivery stop: a SIGSTOP sent to the
        thread stops it on its way back to user space, before any of its code runs."""
        _tgkill(self.tgid, self.tid, signal.SIGSTOP)
        while True:
            ptrace.request(ptrace.PTRACE_CONT, self.tid, None, 0, what="resume")
            _, status = os.waitpid(self.tid, ptrace.WALL)
            if not os.WIFSTOPPED(status):
                raise ptrace.PtraceFailed(
                    f"Thread {self.tid} ended while it made a system call for the recorder.", 3
                )
            if os.WSTOPSIG(status) == signal.SIGSTOP and status >> 16 == 0:
                return


def _tgkill(tgid: int, tid: int, sig: int) -> None:
    if _libc.syscall(NR_TGKILL, tgid, tid, sig) < 0:
        err = ctypes.get_errno()
        raise ptrace.PtraceFailed(f"Cannot signal thread {tid}: {os.strerror(err)}.", err)
