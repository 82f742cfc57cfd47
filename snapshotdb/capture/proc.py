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

_MAPS_LINE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ (\d+)\s*(.*)$")


def parse_maps(text: str) -> list[MappingInfo]:
    """Parse /proc/PID/maps text."""
    out = []
    for line in text.splitlines():
        m = _MAPS_LINE.match(line)
        if m is None:
            raise CaptureError(f"Cannot parse a line of /proc/PID/maps: {line!r}")
        out.append(
            MappingInfo(int(m[1], 16), int(m[2], 16), m[3], int(m[4], 16), m[6], inode=int(m[5]))
        )
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
        raise CaptureError(
            f"Cannot read /proc/{pid}/{name}: {exc.strerror}. Please make sure "
            "to run as root or with the ptrace capability."
        ) from None


def read_layout(pid: int) -> tuple[list[MappingInfo], dict[str, int]]:
    """The process's mappings as a recording keeps them (canonical) and its mm fields."""
    stat = read_proc(pid, "stat").decode()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is stat field 3
    value = lambda n: int(fields[n - 3])  # noqa: E731 (1-based stat field number)
    mm = {
        "start_code": value(26),
        "end_code": value(27),
        "start_stack": value(28),
        "start_data": value(45),
        "end_data": value(46),
        "start_brk": value(47),
        "arg_start": value(48),
        "arg_end": value(49),
        "env_start": value(50),
        "env_end": value(51),
    }
    mappings = canonical(read_maps(pid), mm["start_brk"])
    heap = [m for m in mappings if m.path == "[heap]"]
    mm["brk"] = heap[-1].end if heap else mm["start_brk"]  # /proc shows no brk
    return mappings, mm


def canonical(mappings: list[MappingInfo], start_brk: int) -> list[MappingInfo]:
    """The mappings as rows of a recording: the same whatever way the kernel happens to
    split or merge anonymous memory. Adjacent private anonymous mappings with the same
    permissions and name are one row (the kernel keeps them apart when they grew apart,
    and the write tracker's registration merges them), and no part below start_brk is
    [heap] (the kernel names a whole mapping [heap] when it reaches into the brk area:
    the tail of a program's .bss merged with its heap would be)."""
    pieces = []
    for m in mappings:
        if m.path == "[heap]" and m.start < start_brk:
            below = MappingInfo(m.start, min(m.end, start_brk), m.perms, m.offset, "")
            pieces.append(below)
            if m.end > start_brk:
                pieces.append(MappingInfo(start_brk, m.end, m.perms, m.offset, m.path))
        else:
            pieces.append(m)
    out: list[MappingInfo] = []
    for m in pieces:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.end == m.start
            and prev.perms == m.perms
            and prev.path == m.path
            and m.perms[3] == "p"
            and is_anonymous(m)
        ):
            out[-1] = MappingInfo(prev.start, m.end, prev.perms, prev.offset, prev.path)
        else:
            out.append(m)
    return out


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
    return m.path in ("", "[heap]") or m.path.startswith("[stack") or (m.path.startswith("[anon:"))


_PRESENT_OR_SWAPPED = re.compile(rb"[\x40-\xff]+")  # pagemap bits 62 (swapped), 63 (present)


def populated_runs(pagemap_fd: int, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) runs of pages in [start, end) that are present or swapped."""
    npages = (end - start) // PAGE_SIZE
    raw = os.pread(pagemap_fd, npages * 8, (start // PAGE_SIZE) * 8)
    top = raw[7::8]  # the high byte of each little-endian u64 entry
    return [
        (start + m.start() * PAGE_SIZE, start + m.end() * PAGE_SIZE)
        for m in _PRESENT_OR_SWAPPED.finditer(top)
    ]


def live_chunks(pid: int, mappings: list[MappingInfo]) -> Iterator[tuple[int, bytes]]:
    """Yield (rec_addr, bytes) of a stopped process's memory, CHUNK_SIZE at most each:
    every mapping as MemoryReader.mapping_chunks reads it."""
    with MemoryReader(pid) as reader:
        for m in mappings:
            yield from reader.mapping_chunks(m)


class MemoryReader:
    """/proc/PID/mem and /proc/PID/pagemap of a stopped process, open for reading."""

    def __init__(self, pid: int):
        self.pid = pid
        self.mem_fd = _open_proc(pid, "mem")
        try:
            self.pagemap_fd = _open_proc(pid, "pagemap")
        except BaseException:
            os.close(self.mem_fd)
            raise

    def close(self) -> None:
        os.close(self.mem_fd)
        os.close(self.pagemap_fd)

    def __enter__(self) -> MemoryReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def populated_runs(self, start: int, end: int) -> list[tuple[int, int]]:
        return populated_runs(self.pagemap_fd, start, end)

    def mapping_runs(self, m: MappingInfo) -> list[tuple[int, int]]:
        """The runs of a mapping that hold its bytes. Readable mappings are read whole,
        except anonymous ones, of which only the populated pages are read. Unreadable
        mappings ('---p' guards and reserves) are read only where populated: their content
        survives an mprotect back."""
        if is_anonymous(m) or "r" not in m.perms:
            return self.populated_runs(m.start, m.end)
        return [(m.start, m.end)]

    def mapping_chunks(self, m: MappingInfo) -> Iterator[tuple[int, bytes]]:
        """The mapping's bytes (mapping_runs). Special mappings that the kernel refuses to
        read ([vvar], [vsyscall]) give no pages."""
        for start, end in self.mapping_runs(m):
            yield from self.run_chunks(start, end, special=is_special(m))

    def run_chunks(
        self, start: int, end: int, *, special: bool = False
    ) -> Iterator[tuple[int, bytes]]:
        """The bytes of [start, end), leaving out pages the kernel cannot read.
        Chunks are aligned to CHUNK_SIZE in the address space, so the same addresses fall
        into the same chunk at every snapshot (MemoryScan compares them by start)."""
        rec_addr = start
        while rec_addr < end:
            stop = min(end, (rec_addr // CHUNK_SIZE + 1) * CHUNK_SIZE)
            data = _pread(self.mem_fd, rec_addr, stop - rec_addr)
            if data is not None:
                yield rec_addr, data
            elif special:
                return  # the kernel keeps it to itself ([vvar], [vsyscall], ...)
            else:
                yield from _read_pages(self.mem_fd, rec_addr, stop)
            rec_addr = stop


def _open_proc(pid: int, name: str) -> int:
    try:
        return os.open(f"/proc/{pid}/{name}", os.O_RDONLY)
    except FileNotFoundError:
        raise CaptureError(f"No process {pid}: it has exited.") from None
    except PermissionError as exc:
        raise CaptureError(
            f"Cannot open /proc/{pid}/{name}: {exc.strerror}. Please make sure "
            "to run as root or with the ptrace capability."
        ) from None


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
