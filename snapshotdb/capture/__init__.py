"""Capture: every way a moment of a process becomes a snapshot of a recording.

    writer.py           SnapshotWriter: appends snapshots, only the pages that changed
    page_map.py         the page map a writer keeps (content id per page, 2 MiB blocks)
    content_store.py    page contents stored once: ids by digest, new ones inserted
    page_codec.py       a batch of pages: zero or not, digests, stored form
    proc.py             a stopped live process as /proc shows it: mappings, mm fields, memory
    ptrace.py           its registers (PTRACE_GETREGSET), raw requests; ptrace_stopped
    remote_syscall.py   system calls the process makes for the recorder
    write_tracker.py    the kernel's write tracking: userfaultfd WP_ASYNC + PAGEMAP_SCAN
    tracked_memory.py   a snapshot's memory as a change, found with the write tracker
    memory_scan.py      ... or by reading everything and comparing (today's way)
    live.py             LiveRecorder, writer_for_pid, snapshot_live: a live process
    core.py             import_core: a kernel or gcore core file into a writer

The names below are what the GDB plugin (`ttd snapshot`), the benchmarks and the tests
use; importing this package loads SQLAlchemy (the writer), so import it when needed.
"""

from ..errors import CaptureError
from .live import TRACKERS, LiveRecorder, snapshot_live, writer_for_pid
from .proc import KERNEL_SPACE, parse_maps, read_maps
from .ptrace import ptrace_stopped, read_thread
from .writer import (
    CHUNK_SIZE,
    DiskFull,
    MappingInfo,
    PageDelta,
    SnapshotInfo,
    SnapshotWriter,
    ThreadState,
    WriteStats,
)

__all__ = [
    "CHUNK_SIZE",
    "KERNEL_SPACE",
    "TRACKERS",
    "CaptureError",
    "DiskFull",
    "LiveRecorder",
    "MappingInfo",
    "PageDelta",
    "SnapshotInfo",
    "SnapshotWriter",
    "ThreadState",
    "WriteStats",
    "parse_maps",
    "ptrace_stopped",
    "read_maps",
    "read_thread",
    "snapshot_live",
    "writer_for_pid",
]
