"""Bounds on what GDB waits for: a call past its timeout, an attach or a kill that
gdbserver never answers.

A Watchdog runs timed steps in its own thread until the guarded block ends. GDB's API
is not thread-safe: a step may only send signals (os.kill) or hand work to GDB's own
thread with gdb.post_event, which GDB runs from its event loop, also while it waits
for a call to stop.

    with Watchdog([(10.0, interrupt), (11.0, stop), ...]) as dog:
        gdb.execute(...)          # returns once a step has made GDB give up
    dog.taken                     # the names of the steps that ran
"""
from __future__ import annotations

import os
import signal
import threading


class Watchdog:
    """Runs each (after_s, name, action) of `steps` at after_s seconds from __enter__,
    in order, unless the block has ended by then."""

    def __init__(self, steps: list[tuple[float, str, object]]) -> None:
        self.steps = sorted(steps, key=lambda step: step[0])
        self.taken: list[str] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ttd-watchdog")

    def _run(self) -> None:
        waited = 0.0
        for after_s, name, action in self.steps:
            if self._done.wait(max(after_s - waited, 0.0)):
                return
            waited = after_s
            self.taken.append(name)
            action()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def __enter__(self) -> Watchdog:
        if self.steps:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()  # it only waits on _done or sends a signal: returns at once


def send(pid: int, sig: int) -> None:
    """Signal `pid`; nothing when it is gone."""
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def gdbserver_of(target_pid: int) -> int | None:
    """The gdbserver this GDB started to attach to `target_pid`, or None."""
    needle = b"\0--attach\0" + str(target_pid).encode() + b"\0"
    mine = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            if ppid != mine:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read() + b"\0":
                    return int(entry)
        except (OSError, IndexError):
            continue
    return None


def kill_gdbserver(target_pid: int) -> None:
    """End the gdbserver attached to `target_pid`: GDB then sees its connection close
    and gives up whatever it waited for."""
    server = gdbserver_of(target_pid)
    if server is not None:
        send(server, signal.SIGKILL)


def where_in_kernel(pid: int) -> str:
    """Where a process is, from /proc/PID/syscall: 'in system call 35 at 0x7f...' or
    'running at 0x...'; '' when it cannot be read."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            words = f.read().split()
    except OSError:
        return ""
    if not words or words[0] == "running":
        return "running"
    if words[0] == "-1":
        return f"at {words[-1]}"
    return f"in system call {words[0]} at {words[-1]}"
