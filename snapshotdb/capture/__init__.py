"""Capture: every way a moment of a process becomes a snapshot of a recording.

    writer.py   SnapshotWriter: appends snapshots, only the pages that changed
    proc.py     a stopped live process as /proc shows it: mappings, mm fields, memory
    ptrace.py   its registers (PTRACE_GETREGSET); ptrace_stopped outside GDB
    live.py     writer_for_pid, snapshot_live: a live process into a writer
    core.py     import_core: a kernel or gcore core file into a writer

The names below are what the GDB plugin (`ttd snapshot`), the benchmarks and the tests
use; importing this package loads SQLAlchemy (the writer), so import it when needed.
"""
from ..errors import CaptureError
from .live import snapshot_live, writer_for_pid
from .proc import KERNEL_SPACE, parse_maps, read_maps
from .ptrace import ptrace_stopped, read_thread
from .writer import (
    CHUNK_SIZE,
    MappingInfo,
    SnapshotInfo,
    SnapshotWriter,
    ThreadState,
    WriteStats,
)

__all__ = [
    "CHUNK_SIZE", "KERNEL_SPACE", "CaptureError", "MappingInfo", "SnapshotInfo",
    "SnapshotWriter", "ThreadState", "WriteStats", "parse_maps", "ptrace_stopped",
    "read_maps", "read_thread", "snapshot_live", "writer_for_pid",
]
