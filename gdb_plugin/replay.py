"""Moving the kept process of a call session to another tick, in GDB (issue 10).

    movable(session, info)    whether the session's process can become `info`'s tick
    move(session, info)       do it: memory map, break and memory by the page server
                              (remat's proc.move, its ttd_stub_apply() called here as an
                              inferior call when the map or the break must change), the
                              registers of each thread that needs them by one `G` packet
                              (remat/gpacket.py), GDB's caches flushed

What a move costs is what differs: the stub's routine runs only when the memory map
differs or the break may have moved (the sandbox shows the page server every brk);
registers are written for every thread only when something but a call may have set
them (ttd goto, an expression naming a register), else for the threads whose
recorded registers differ between the ticks.

A process moves only to a tick of the same threads (ids and names), auxv, mm fields
but the break, executable and libraries: a thread cannot be made or ended from
outside, and GDB's symbols stay right. Otherwise the caller builds a new process
("rebuilt"). Runs with the temporary inferior selected; the other threads stay
stopped for the routine's call (scheduler-locking on).
"""

from __future__ import annotations

import contextlib
import re
import time

import gdb

from gdb_plugin.errors import SessionError
from gdb_plugin.evaluate import CallStopper, UserBreakpointsDisabled
from gdb_plugin.gdb_settings import GdbSettings

APPLY_TIMEOUT_S = 10.0
LOCKED = [("scheduler-locking", "on")]
_RECEIVED = re.compile(r'received: "(.*)"')


def layout_of(info):
    """The TickLayout (remat/layout.py) at info's tick, read once per TickInfo."""
    if info.layout is None:
        from gdb_plugin.remat.layout import read_layout

        info.layout = read_layout(info.recording, info.tick, info.rows)
        info.rows = None
    return info.layout


def movable(session, info) -> str | None:
    """None when the session's process can be moved to info's tick, else why not."""
    proc = session.proc
    if proc is None or proc.layout is None or session.tracker_used != "wp-async":
        return "the process cannot be moved (diff tracker)"
    if not session.movable:
        return "the last call left what a move cannot undo"
    if (session.info.exe_path, session.info.libraries) != (info.exe_path, info.libraries):
        return "the libraries differ"
    if not layout_of(info).same_process_as(proc.layout):
        return "the threads differ"
    return None


def thread_of(inferior_num: int, lwp: int):
    """The GDB thread of the temporary inferior whose LWP is `lwp`, or None."""
    for inferior in gdb.inferiors():
        if inferior.num == inferior_num:
            for thread in inferior.threads():
                if thread.ptid[1] == lwp:
                    return thread
    return None


def _packet(text: str) -> str:
    out = gdb.execute(f"maint packet {text}", to_string=True)
    match = _RECEIVED.search(out)
    if match is None:
        raise SessionError(f"Moving the process: no reply to a {text[:1]} packet.")
    return match.group(1)


@contextlib.contextmanager
def this_thread_only(nr_threads: int):
    """scheduler-locking on for a call in the selected thread of a process of several
    threads (the others stay stopped), the user's setting back afterwards. GDB cannot
    set it (and turns it off) once the process has ended in the call: no target to
    lock then."""
    locked = GdbSettings(LOCKED) if nr_threads > 1 else None
    if locked is not None:
        try:
            locked.apply()
        except gdb.error:
            locked = None
    try:
        yield
    finally:
        if locked is not None:
            try:
                locked.restore()
            except gdb.error:
                pass


def _call_apply(pid: int, nr_threads: int, fn: int, arg: int) -> None:
    """ttd_stub_apply(arg) in the process, on the selected thread alone."""
    try:  # its result is in the process: the page server reads it (MOVED)
        with (
            this_thread_only(nr_threads),
            UserBreakpointsDisabled(),
            CallStopper(pid, APPLY_TIMEOUT_S),
        ):
            gdb.parse_and_eval(f"((long(*)(void*)){fn:#x})({arg:#x})")
    except gdb.error as exc:
        raise SessionError(f"Moving the process: the stub's routine failed: {exc}") from None


def _recorded(thread) -> tuple:
    return thread.gpregs, thread.fpregs, thread.xstate


def _to_write(session, old, layout) -> list:
    """(lwp, recorded thread) of the threads whose registers a move to `layout` must
    write: every thread when something but a call may have set registers (ttd goto hands
    the process to the user, an expression named one), else those whose recorded
    registers differ between the tick the process is at (`old`) and `layout`'s: GDB puts
    back the registers a call changed, and nothing else runs."""
    everything = session.user_visible or session.registers_touched
    return [
        (lwp, new)
        for lwp, was, new in zip(session.proc.threads(), old.threads, layout.threads, strict=True)
        if everything or _recorded(was) != _recorded(new)
    ]


def _select_in_gdbserver(session, lwp: int) -> None:
    """Make `lwp` gdbserver's thread for g and G packets: GDB, with nothing cached, reads
    $pc and selects it (Hg) on the way."""
    gdb_thread = thread_of(session.inferior.num, lwp)
    if gdb_thread is None:
        raise SessionError(f"Moving the process: GDB has no thread {lwp}.")
    gdb.execute("maintenance flush register-cache", to_string=True)
    gdb_thread.switch()
    gdb.parse_and_eval("$pc")


def _write_registers(session, old, layout) -> bool:
    """The recorded registers of the threads _to_write() names, one G packet each (the
    rest of the packet, which the recording does not give: the thread's own `g` reply,
    read once: a call puts back what it changed). A process of one thread needs no
    selecting: gdbserver has no other. True when any was written."""
    from gdb_plugin.remat.gpacket import build_g_packet, parse_remote_registers, recorded_values

    if session.reg_layout is None:
        session.reg_layout = parse_remote_registers(
            gdb.execute("maint print remote-registers", to_string=True)
        )
    todo = _to_write(session, old, layout)
    alone = len(session.proc.threads()) == 1
    for lwp, thread in todo:
        current = None if session.user_visible else session.g_packets.get(lwp)
        if current is None or not alone:
            _select_in_gdbserver(session, lwp)
        if current is None:
            current = bytes.fromhex(_packet("g").replace("x", "0"))
            session.g_packets[lwp] = current
        packet = build_g_packet(
            session.reg_layout,
            current,
            recorded_values(thread.gpregs, thread.fpregs, thread.xstate),
        )
        if _packet("G" + packet.hex()) != "OK":
            raise SessionError(f"Moving the process: gdbserver refused thread {lwp}'s registers.")
    session.registers_touched = False
    return bool(todo)


def move(session, info) -> tuple[float, dict]:
    """Move the session's process to info's tick (movable() said yes), its temporary
    inferior selected (session.inferior.selected()); the time in ms and the page
    server's counts (remat's proc.move).
    Raises MoveRefused (remat: the process is as it was) or SessionError /
    RematerializeError (the process is not to be used any more)."""
    t0 = time.perf_counter()
    layout = layout_of(info)
    proc = session.proc
    ran = session.calls > 0 or session.inferior.resumed

    def call_apply(fn: int, arg: int) -> None:
        gdb.execute("maintenance flush register-cache", to_string=True)  # as just written
        _call_apply(proc.pid, len(layout.threads), fn, arg)
        session.inferior.mark_resumed()

    # the registers first: the stub's routine then runs on the new tick's stack (the
    # call may have left the old one unusable: $rsp = 0)
    _write_registers(session, proc.layout, layout)
    counts = proc.move(layout, ran, call_apply)
    gdb.execute("maintenance flush register-cache", to_string=True)  # GDB read them before
    gdb.execute("maintenance flush dcache", to_string=True)
    return (time.perf_counter() - t0) * 1e3, counts
