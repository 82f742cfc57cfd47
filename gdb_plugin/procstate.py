"""What a call can change in its process besides memory and registers, read from /proc.

A process is kept between calls at one tick; writing back the pages a call changed
resets its memory, but a call can also map, unmap or protect memory and move the brk
(/proc/PID/maps), block, ignore or catch signals (/proc/PID/status SigBlk, SigIgn,
SigCgt), leave a signal pending (SigPnd, ShdPnd: a timer that fired), create POSIX
timers (/proc/PID/timers) and close or replace descriptors (/proc/PID/fd). Putting
those back needs code run in the process; instead a CallSession compares this state
after each call with the state it had when it was built, and a process that differs is
not used again (the next call gets a new one).

Not visible here: interval timers (alarm, setitimer); the SIGALRM, SIGVTALRM or SIGPROF
they send shows as a pending signal, or ends a later call, which is then made again in
a new process (gdb_plugin/sessions.py). Importable without GDB.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

# SIGSTOP pending from gdbserver's attach until the first resume: not the call's doing
_IGNORED_PENDING = 1 << (signal.SIGSTOP - 1)
_MASKS = {"SigBlk": "signal mask", "SigIgn": "ignored signals", "SigCgt": "caught signals"}


@dataclass(frozen=True)
class ProcessState:
    maps: str  # /proc/PID/maps: each mapping's range, permissions, offset, file
    masks: tuple[tuple[str, int], ...]  # (SigBlk | SigIgn | SigCgt, mask)
    pending: int  # signals pending, to the thread or the process
    timers: str  # /proc/PID/timers: the POSIX timers
    fds: tuple[tuple[str, str], ...]  # (descriptor, what it refers to)

    @classmethod
    def read(cls, pid: int) -> ProcessState:
        """The state of process `pid` (one thread); OSError when it is gone."""
        status = _status(pid)
        masks = tuple((name, int(status[name], 16)) for name in _MASKS)
        return cls(
            maps=_text(f"/proc/{pid}/maps"),
            masks=masks,
            pending=int(status["SigPnd"], 16) | int(status["ShdPnd"], 16),
            timers=_text(f"/proc/{pid}/timers"),
            fds=_fds(pid),
        )

    def changes(self, now: ProcessState) -> list[str]:
        """What differs in `now`, in words ("mappings", "signal mask", ...); [] when
        nothing does."""
        out = []
        if now.maps != self.maps:
            out.append("mappings")
        out += [
            _MASKS[name]
            for (name, mask), (_, was) in zip(now.masks, self.masks, strict=True)
            if mask != was
        ]
        if now.pending & ~_IGNORED_PENDING:
            out.append("pending signals")
        if now.timers != self.timers:
            out.append("timers")
        if now.fds != self.fds:
            out.append("descriptors")
        return out


def _text(path: str) -> str:
    with open(path) as f:
        return f.read()


def _status(pid: int) -> dict[str, str]:
    return dict(
        line.split(":", 1) for line in _text(f"/proc/{pid}/status").splitlines() if ":" in line
    )


def _fds(pid: int) -> tuple[tuple[str, str], ...]:
    fd_dir = f"/proc/{pid}/fd"
    return tuple(sorted((fd, os.readlink(f"{fd_dir}/{fd}")) for fd in os.listdir(fd_dir)))
