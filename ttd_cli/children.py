"""What the command line's GDB leaves behind comes back to it, and is ended.

The `ttd` process becomes a child subreaper: when GDB ends, however it ends, what it
started (gdbserver, the page server, the rematerialized process, the recorded program)
is re-parented to `ttd` instead of PID 1 (which reaps late here), and end_descendants()
kills and reaps all of it, as ttd-pageserver does with its own descendants.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import time

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
WALL = 0x40000000  # __WALL: clone children too
END_WAIT_S = 10.0


def become_subreaper() -> None:
    """Orphans below this process come to it (prctl(2); not inherited by children)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children() -> list[int]:
    """This process's children, from /proc (zombies included)."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == me:
            found.append(int(entry))
    return found


def end_descendants(timeout_s: float = END_WAIT_S) -> None:
    """SIGKILL every child and reap it, again for the orphans each one leaves, until
    none is left or timeout_s has passed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pids = children()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            _reap(pid, deadline)


def _reap(pid: int, deadline: float) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [], max(deadline - time.monotonic(), 0))
        os.waitpid(pid, os.WNOHANG | WALL)
    except ChildProcessError:
        pass
    finally:
        os.close(pidfd)
