"""Bounds on what GDB waits for: a call past its timeout, an attach or a kill that
gdbserver never answers.

A Watchdog runs timed steps in a thread (one for all of them) until the guarded block
ends. GDB's API is not thread-safe: a step may only send signals (os.kill) or hand work
to GDB's own thread with gdb.post_event, which GDB runs from its event loop, also while
it waits for a call to stop.

    with Watchdog([(10.0, interrupt), (11.0, stop), ...]) as dog:
        gdb.execute(...)          # returns once a step has made GDB give up
    dog.taken                     # the names of the steps that ran
"""

from __future__ import annotations

import heapq
import os
import signal
import threading
import time


class Watchdog:
    """Runs each (after_s, name, action) of `steps` at after_s seconds from __enter__,
    in order, unless the block has ended by then. Once __exit__ has returned, no step
    of it runs any more (nor is running)."""

    def __init__(self, steps: list[tuple[float, str, object]]) -> None:
        self.steps = sorted(steps, key=lambda step: step[0])
        self.taken: list[str] = []
        self.done = False

    def __enter__(self) -> Watchdog:
        if self.steps:
            _WORKER.arm(self)
        return self

    def __exit__(self, *exc) -> None:
        if self.steps:
            _WORKER.disarm(self)  # waits for a step being run
        self.done = True


class _Worker:
    """One thread for every Watchdog of this GDB: a thread per call cost 0.4 ms to start
    and join, more than the rest of a repeated call's bookkeeping. Steps run with the
    lock held, so disarm() returns only once no step of that watchdog can run."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Watchdog, str, object]] = []  # heap by time
        self._seq = 0
        self._thread: threading.Thread | None = None

    def arm(self, dog: Watchdog) -> None:
        start = time.monotonic()
        with self._cond:
            for after_s, name, action in dog.steps:
                self._seq += 1
                heapq.heappush(self._due, (start + after_s, self._seq, dog, name, action))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="ttd-watchdog")
                self._thread.start()
            self._cond.notify()

    def disarm(self, dog: Watchdog) -> None:
        with self._cond:
            self._due = [job for job in self._due if job[2] is not dog]
            heapq.heapify(self._due)

    def _run(self) -> None:
        with self._cond:
            while True:
                if not self._due:
                    self._cond.wait()
                    continue
                at, _, dog, name, action = self._due[0]
                wait_s = at - time.monotonic()
                if wait_s > 0:
                    self._cond.wait(wait_s)
                    continue
                heapq.heappop(self._due)
                dog.taken.append(name)
                try:
                    action()
                except Exception:  # a step must never end the thread
                    pass


_WORKER = _Worker()


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
