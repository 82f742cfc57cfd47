"""GDB, gdbserver and the rematerialized process on one CPU while they talk.

A call and a move are chains of short round trips: GDB asks gdbserver through a pipe,
gdbserver ptraces the process, the page server fills its faults, and each side sleeps
until the other answers. On this 2-CPU VM a wake-up on the other, idle CPU costs tens of
microseconds, while a sleeper that hands its CPU to the one it waits for costs almost
nothing. Measured here, GDB and gdbserver free to run anywhere against both on one CPU:
a remote-protocol round trip (`maint packet m...`) 70 us against 19 us, and an inferior
call of an empty function 3.1 ms against 1.5 ms (GDB sends some 20 `G` packets per call:
gdbserver has no `P` packet).

The page server already runs on one CPU with the process (pin_to_one_cpu in
native/pageserver/main.c). GDB's own thread joins them for the length of the attach (so
gdbserver, started then, inherits the CPU), a move or a call, then gets its own CPUs
back: the user's GDB is never left pinned. Best effort: placement is no correctness
matter, and TTD_NO_PIN leaves every CPU to everyone, as it does for the page server.
"""

from __future__ import annotations

import contextlib
import os


def cpus_of(pid: int) -> set[int] | None:
    """The one CPU process `pid` is pinned to, as a set; None when it may run on more
    than one, is gone, or pinning is off."""
    if os.environ.get("TTD_NO_PIN"):
        return None
    try:
        cpus = os.sched_getaffinity(pid)
    except OSError:
        return None
    return cpus if len(cpus) == 1 else None


@contextlib.contextmanager
def beside(pid: int):
    """GDB's thread on the CPU process `pid` is pinned to, for the block; its own CPUs
    back afterwards (os.sched_setaffinity(0) is the calling thread's, not the other
    threads' of GDB)."""
    cpus = cpus_of(pid)
    own = None
    if cpus is not None:
        try:
            own = os.sched_getaffinity(0)
            if cpus <= own and cpus != own:
                os.sched_setaffinity(0, cpus)
            else:
                own = None
        except OSError:
            own = None
    try:
        yield
    finally:
        if own is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, own)
