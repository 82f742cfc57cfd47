"""A live process's snapshots: what /proc shows (proc.py), its registers (ptrace.py, or
given by the caller), and its memory as a change from its previous snapshot, into a
SnapshotWriter.

    recorder = writer_for_pid(engine, pid)          one per recorded process
    snapshot_live(recorder, pid, reason=..., tracker="auto")

How changed pages are found (`tracker`):

    auto       the kernel's write tracking (tracked_memory.py), armed at the first
               snapshot; where it cannot be armed, the scan, said once in one line
    wp-async   the kernel's write tracking, or an error
    scan       today's way: read all memory and compare it with the bytes read last time
               (memory_scan.py; the recorder then holds as much memory as the process)

Both ways make the same recording, byte for byte. The caller must be the tracer of every
thread and every thread must be stopped (GDB in all-stop mode is; so is a benchmark inside
ptrace_stopped).
"""

from __future__ import annotations

import os

from sqlalchemy.engine import Engine

from ..elf import build_id
from ..errors import CaptureError
from ..pages import PAGE_SIZE
from ..regs import gpreg
from .elf_files import FileKeeper, live_opener
from .memory_scan import MemoryScan
from .proc import MemoryReader, read_layout, read_proc, thread_ids
from .ptrace import read_thread
from .remote_syscall import CannotRunSyscall
from .tracked_memory import TrackedMemory
from .write_tracker import CannotTrack, TrackerLost, WriteTracker, holds_userfaultfd
from .writer import PageDelta, SnapshotInfo, SnapshotWriter, StaleBase, ThreadState, WriteStats

TRACKERS = ("auto", "wp-async", "scan")


class LiveRecorder:
    """One live process recorded into one recording: the writer and how the process's
    changed pages are found. Hold one per process across its snapshots; close() (or
    dropping it) releases the tracking."""

    def __init__(self, writer: SnapshotWriter, pid: int):
        self.writer = writer
        self.pid = pid
        self.tracked: TrackedMemory | None = None
        self.scan = MemoryScan()
        self.untrackable: str | None = None  # why the kernel cannot track it (said once)
        self._last_tick: int | None = None  # the tick our tracking or scan is relative to
        self._said: set[str] = set()
        self.files = FileKeeper(writer.engine)  # the ELF files it maps, kept once

    def snapshot(
        self, info: SnapshotInfo, threads: list[ThreadState], mappings, tracker: str = "auto"
    ) -> WriteStats:
        if tracker not in TRACKERS:
            raise CaptureError(f"Unknown tracker '{tracker}': choose from {', '.join(TRACKERS)}.")
        notes: list[str] = []
        self.files.start(mappings, live_opener(self.pid))  # read beside the snapshot
        try:
            if tracker == "scan":
                self._disarm()
            else:
                required = tracker == "wp-async"
                self._arm(threads, info.stop_tid, mappings, required=required, notes=notes)
            stats = self._write(info, threads, mappings)
        except BaseException:
            self.files.abandon()
            raise
        stats.notes = notes + self.files.finish()
        return stats

    def _write(self, info, threads, mappings) -> WriteStats:
        for fresh in (False, True):  # a stale base (another writer wrote): read afresh
            with MemoryReader(self.pid) as reader:
                delta, way = self._delta(reader, mappings, fresh)
                try:
                    stats = self.writer.write(info, threads, mappings, delta)
                except StaleBase:
                    self._abort()
                    continue
                except BaseException:
                    self._abort()
                    raise
            scan = self.tracked.scan if self.tracked else self.scan
            stats.tracker = way
            stats.chunks_skipped = scan.chunks_skipped
            # what the scan compared was read, not only what it passed on
            stats.bytes_scanned += scan.bytes_compared - scan.bytes_passed
            stats.pages_scanned = stats.bytes_scanned // PAGE_SIZE
            self._commit(stats.tick)
            return stats
        raise AssertionError("a delta made afresh cannot be stale")

    def _delta(self, reader: MemoryReader, mappings, fresh: bool) -> tuple[PageDelta, str]:
        """The memory as a change from the last snapshot (a full description when there is
        none to compare with), and how it was found."""
        base = None if fresh else self._last_tick
        full = base is None or base != self.writer.tick
        if self.tracked is not None:
            try:
                return self.tracked.delta(reader, mappings, full=full, base_tick=base), "wp-async"
            except TrackerLost:  # it ran exec: read everything, arm again next time
                self._disarm()
                full = True
        if full:
            self.scan.abort()
        kept: list[tuple[int, int]] = []
        chunks = self.scan.changes((c for m in mappings for c in reader.mapping_chunks(m)), kept)
        return PageDelta(chunks, None, kept, None if full else base), "scan"

    def _commit(self, tick: int) -> None:
        (self.tracked or self.scan).commit()
        self._last_tick = tick

    def _abort(self) -> None:
        (self.tracked or self.scan).abort()
        self._last_tick = None

    def _arm(self, threads, stop_tid, mappings, *, required: bool, notes: list[str]) -> None:
        """Arm the kernel's tracking when it is not armed; say once why it cannot be."""
        if self.tracked is not None:
            if not holds_userfaultfd(self.pid):
                return
            self._disarm()
            self.untrackable = "the program started using userfaultfd itself"
        if self.untrackable is None:
            tids = [stop_tid] + [t.tid for t in threads if t.tid != stop_tid]
            try:
                tracker = WriteTracker.arm(self.pid, tids, mappings)
            except CannotRunSyscall:
                return  # a stop the process cannot make calls from: read all, arm next time
            except CannotTrack as exc:
                self.untrackable = str(exc)
            else:
                self.tracked = TrackedMemory(self.pid, tracker)
                self._last_tick = None  # the first tracked snapshot reads everything
                return
        if required:
            raise CaptureError(
                f"Cannot track the writes of process {self.pid}: {self.untrackable}."
            )
        self._say(
            notes,
            f"writes of process {self.pid} are not tracked "
            f"({self.untrackable}): every snapshot reads all its memory",
        )

    def stop_tracking(self, why: str) -> None:
        """Release the kernel's write tracking for good and scan from now on: `why` the
        program is about to use userfaultfd itself (a mapping our userfaultfd holds would
        refuse its registration)."""
        self._disarm()
        self.untrackable = why

    def _disarm(self) -> None:
        if self.tracked is not None:
            self.tracked.tracker.close()
            self.tracked = None
            self._last_tick = None

    def _say(self, notes: list[str], note: str) -> None:
        if note not in self._said:
            self._said.add(note)
            notes.append(note)

    def close(self) -> None:
        self._disarm()


def writer_for_pid(engine: Engine, pid: int) -> LiveRecorder:
    """A recorder whose recording describes process `pid` (exe, build-id, argv)."""
    try:
        exe_path = os.readlink(f"/proc/{pid}/exe")
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    cmdline = [a.decode(errors="replace") for a in read_proc(pid, "cmdline").split(b"\0")[:-1]]
    writer = SnapshotWriter(
        engine, exe_path=exe_path, build_id=build_id(f"/proc/{pid}/exe"), cmdline=cmdline
    )
    return LiveRecorder(writer, pid)


def snapshot_live(
    recorder: LiveRecorder,
    pid: int,
    *,
    reason: str = "manual",
    stop_tid: int | None = None,
    threads: list[ThreadState] | None = None,
    function: str | None = None,
    file: str | None = None,
    line: int | None = None,
    signal: str | None = None,
    note: str | None = None,
    tracker: str = "auto",
) -> WriteStats:
    """Snapshot a stopped live process into the recorder's recording.

    threads=None reads every thread's registers with PTRACE_GETREGSET (the caller
    must be their tracer); pass ThreadState objects to supply them otherwise.
    stop_tid defaults to the main thread; pc is the stop thread's rip.
    """
    if pid != recorder.pid:
        raise CaptureError(f"This recorder records process {recorder.pid}, not {pid}.")
    if threads is None:
        threads = [read_thread(pid, tid) for tid in thread_ids(pid)]
    stop_tid = pid if stop_tid is None else stop_tid
    stop = next((t for t in threads if t.tid == stop_tid), None)
    if stop is None:
        raise CaptureError(f"Thread {stop_tid} is not a thread of process {pid}.")
    mappings, mm = read_layout(pid)
    info = SnapshotInfo(
        reason=reason,
        stop_tid=stop_tid,
        pc=gpreg(stop.gpregs, "rip"),
        auxv=read_proc(pid, "auxv"),
        mm=mm,
        function=function,
        file=file,
        line=line,
        signal=signal,
        note=note,
    )
    return recorder.snapshot(info, threads, mappings, tracker)
