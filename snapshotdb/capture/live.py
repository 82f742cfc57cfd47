"""A live process's snapshot: what /proc shows (proc.py) and its registers (ptrace.py,
or given by the caller) into a SnapshotWriter.

The caller must be the tracer of every thread and every thread must be stopped (GDB in
all-stop mode is; so is a benchmark inside ptrace_stopped)."""
from __future__ import annotations

import os

from sqlalchemy.engine import Engine

from ..elf import build_id
from ..errors import CaptureError
from ..regs import gpreg
from .proc import live_chunks, mm_fields, read_maps, read_proc, thread_ids
from .ptrace import read_thread
from .writer import SnapshotInfo, SnapshotWriter, ThreadState, WriteStats


def writer_for_pid(engine: Engine, pid: int, *, keep_bytes: bool = True) -> SnapshotWriter:
    """A writer whose recording describes process `pid` (exe, build-id, argv)."""
    try:
        exe_path = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    cmdline = [a.decode(errors="replace") for a in read_proc(pid, "cmdline").split(b"\0")[:-1]]
    return SnapshotWriter(engine, exe_path=exe_path, build_id=build_id(f"/proc/{pid}/exe"),
                          cmdline=cmdline, keep_bytes=keep_bytes)


def snapshot_live(writer: SnapshotWriter, pid: int, *, reason: str = "manual",
                  stop_tid: int | None = None, threads: list[ThreadState] | None = None,
                  function: str | None = None, file: str | None = None,
                  line: int | None = None, signal: str | None = None,
                  note: str | None = None) -> WriteStats:
    """Snapshot a stopped live process into the writer's recording.

    threads=None reads every thread's registers with PTRACE_GETREGSET (the caller
    must be their tracer); pass ThreadState objects to supply them otherwise.
    stop_tid defaults to the main thread; pc is the stop thread's rip.
    """
    if threads is None:
        threads = [read_thread(pid, tid) for tid in thread_ids(pid)]
    stop_tid = pid if stop_tid is None else stop_tid
    stop = next((t for t in threads if t.tid == stop_tid), None)
    if stop is None:
        raise CaptureError(f"Thread {stop_tid} is not a thread of process {pid}.")
    mappings = read_maps(pid)
    info = SnapshotInfo(reason=reason, stop_tid=stop_tid, pc=gpreg(stop.gpregs, "rip"),
                        auxv=read_proc(pid, "auxv"), mm=mm_fields(pid, mappings),
                        function=function, file=file, line=line, signal=signal, note=note)
    return writer.write(info, threads, mappings, live_chunks(pid, mappings))
