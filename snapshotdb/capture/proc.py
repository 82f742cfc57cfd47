"""A stopped live process as /proc shows it: its mappings, mm fields and threads, and
its memory read in big chunks (live_chunks) for the writer.

Memory comes from big preads of /proc/PID/mem; /proc/PID/pagemap tells which pages of
anonymous (and unreadable) mappings were ever populated, so the others are not read.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator

from ..errors import CaptureError
from ..pages import PAGE_SIZE
from .writer import CHUNK_SIZE, MappingInfo

_MAPS_LINE = re.compile(
    r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ \d+\s*(.*)$")


def parse_maps(text: str) -> list[MappingInfo]:
    """Parse /proc/PID/maps text."""
    out = []
    for line in text.splitlines():
        m = _MAPS_LINE.match(line)
        if m is None:
            raise CaptureError(f"Cannot parse a line of /proc/PID/maps: {line!r}")
        out.append(MappingInfo(int(m[1], 16), int(m[2], 16), m[3], int(m[4], 16), m[5]))
    return out


# Mappings at or above this are the kernel's, shared by every process ([vsyscall]):
# nothing to record or restore, and they do not fit a signed 64-bit column.
KERNEL_SPACE = 1 << 63


def read_maps(pid: int) -> list[MappingInfo]:
    """The process's user-space mappings (kernel-space ones such as [vsyscall] left out)."""
    return [m for m in parse_maps(read_proc(pid, "maps").decode()) if m.start < KERNEL_SPACE]


def read_proc(pid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    except PermissionError as exc:
        raise CaptureError(f"Cannot read /proc/{pid}/{name}: {exc.strerror}. Please make sure "
                           "to run as root or with the ptrace capability.") from None


def mm_fields(pid: int, mappings: list[MappingInfo]) -> dict[str, int]:
    """The mm fields of /proc/PID/stat, and brk = the [heap] end (start_brk without a heap)."""
    stat = read_proc(pid, "stat").decode()
    fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is stat field 3
    value = lambda n: int(fields[n - 3])  # noqa: E731 (1-based stat field number)
    mm = {"start_code": value(26), "end_code": value(27), "start_stack": value(28),
          "start_data": value(45), "end_data": value(46), "start_brk": value(47),
          "arg_start": value(48), "arg_end": value(49), "env_start": value(50),
          "env_end": value(51)}
    heap = [m for m in mappings if m.path == "[heap]"]
    mm["brk"] = heap[-1].end if heap else mm["start_brk"]
    return mm


def thread_ids(pid: int) -> list[int]:
    """The process's threads, the main thread first."""
    try:
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    return sorted(tids, key=lambda tid: tid != pid)


def thread_name(pid: int, tid: int) -> str | None:
    try:
        return read_proc(pid, f"task/{tid}/comm").decode().rstrip("\n")
    except CaptureError:
        return None


def is_special(m: MappingInfo) -> bool:
    """A kernel-made mapping ([vdso], [vvar], [vsyscall], ...), not [heap] or [stack]."""
    return m.path.startswith("[") and m.path != "[heap]" and not m.path.startswith("[stack")


def is_anonymous(m: MappingInfo) -> bool:
    """Memory whose never-populated pages read as zeros (no file behind them)."""
    return m.path in ("", "[heap]") or m.path.startswith("[stack") or (
        m.path.startswith("[anon:"))


_PRESENT_OR_SWAPPED = re.compile(rb"[\x40-\xff]+")  # pagemap bits 62 (swapped), 63 (present)


def populated_runs(pagemap_fd: int, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) runs of pages in [start, end) that are present or swapped."""
    npages = (end - start) // PAGE_SIZE
    raw = os.pread(pagemap_fd, npages * 8, (start // PAGE_SIZE) * 8)
    top = raw[7::8]  # the high byte of each little-endian u64 entry
    return [(start + m.start() * PAGE_SIZE, start + m.end() * PAGE_SIZE)
            for m in _PRESENT_OR_SWAPPED.finditer(top)]


def live_chunks(pid: int, mappings: list[MappingInfo]) -> Iterator[tuple[int, bytes]]:
    """Yield (rec_addr, bytes) of a stopped process's memory, CHUNK_SIZE at most each.

    Readable mappings are read whole, except anonymous ones, of which only the
    populated pages are read. Unreadable mappings ('---p' guards and reserves)
    are read only where populated: their content survives an mprotect back.
    Special mappings that the kernel refuses to read ([vvar], [vsyscall]) give
    no pages.
    """
    mem_fd = _open_proc(pid, "mem")
    pagemap_fd = _open_proc(pid, "pagemap")
    try:
        for m in mappings:
            if is_anonymous(m) or "r" not in m.perms:
                runs = populated_runs(pagemap_fd, m.start, m.end)
            else:
                runs = [(m.start, m.end)]
            for start, end in runs:
                yield from _read_run(mem_fd, m, start, end)
    finally:
        os.close(mem_fd)
        os.close(pagemap_fd)


def _open_proc(pid: int, name: str) -> int:
    try:
        return os.open(f"/proc/{pid}/{name}", os.O_RDONLY)
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    except PermissionError as exc:
        raise CaptureError(f"Cannot open /proc/{pid}/{name}: {exc.strerror}. Please make sure "
                           "to run as root or with the ptrace capability.") from None


def _read_run(mem_fd: int, m: MappingInfo, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    # Chunks are aligned to CHUNK_SIZE in the address space so the same addresses
    # fall into the same chunk at every snapshot (the writer's cache is keyed by start).
    rec_addr = start
    while rec_addr < end:
        stop = min(end, (rec_addr // CHUNK_SIZE + 1) * CHUNK_SIZE)
        data = _pread(mem_fd, rec_addr, stop - rec_addr)
        if data is not None:
            yield rec_addr, data
        elif is_special(m):
            return  # the kernel keeps it to itself ([vvar], [vsyscall], ...)
        else:
            yield from _read_pages(mem_fd, rec_addr, stop)
        rec_addr = stop


def _pread(mem_fd: int, rec_addr: int, length: int) -> bytes | None:
    """All `length` bytes at rec_addr, or None when any of them cannot be read."""
    try:
        data = os.pread(mem_fd, length, rec_addr)
    except OSError:
        return None
    return data if len(data) == length else None


def _read_pages(mem_fd: int, start: int, stop: int) -> Iterator[tuple[int, bytes]]:
    """Page by page, leaving out pages the kernel cannot read: a file mapping beyond
    the end of its file (the process would get SIGBUS there), a PROT_NONE guard."""
    for rec_addr in range(start, stop, PAGE_SIZE):
        data = _pread(mem_fd, rec_addr, PAGE_SIZE)
        if data is not None:
            yield rec_addr, data
