"""What lives at a dirtied address, asked of GDB in the temporary inferior.

- data (globals, .bss, libraries' data): `info symbol` -> "counter+16";
- the thread's TLS: the executable's STT_TLS symbols, their addresses from GDB
  (`&name`), else computed for x86-64 TLS variant II -> "tls:counter_tls+4";
- heap: the malloc chunk, by walking glibc's chunk headers from the start of
  [heap] -> "chunk 0x55d0c0a2b2c0+8 (32 bytes)";
- stack: the frame whose [sp, caller's sp) holds the address -> "frame #1 push".

Called while the temporary inferior is selected; never resumes it.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import os
import re
import struct

try:
    import gdb
except ImportError:  # the build-id helpers are used (and tested) without GDB
    gdb = None

from gdb_plugin import report

_INFO_SYMBOL_RE = re.compile(r"^(\S+)(?: \+ (\d+))? in section \S+")
MAX_FRAMES = 256  # deep recursion: name frames beyond this as "below frame #255"
MAX_CHUNKS = 1_000_000


TLS_WINDOW = 64 << 10  # static TLS lies within this far below the thread pointer


class _Lazy:
    """What naming needs, computed on first use and kept in `cache` across calls at one
    tick (a call cannot change them once its pages are reset): frames, TLS addresses."""

    def __init__(self, info, cache: dict) -> None:
        self.info, self.cache = info, cache

    def frames(self) -> list[tuple[int, str]]:
        if "frames" not in self.cache:
            self.cache["frames"] = _frame_spans()
        return self.cache["frames"]

    def tls(self, target_addr: int) -> list[tuple[int, int, str]]:
        fs_base = self.info.fs_base
        if not fs_base or not fs_base - TLS_WINDOW <= target_addr < fs_base + 4096:
            return []  # too far from the thread pointer to be static TLS
        if "tls" not in self.cache:
            self.cache["tls"] = tls_symbols(self.info)
        return self.cache["tls"]


NAMED_PAGES = 256  # changed pages named per call (in address order); the rest: no symbol


def annotate(
    pages: list[report.DirtiedPage],
    pid: int,
    info,
    cache: dict | None = None,
    limit: int = NAMED_PAGES,
) -> None:
    """Set .symbol and .range_symbols of the first `limit` changed pages (each name asks
    GDB or reads memory: a call that changed a million pages is not named page by page);
    None for the others and for unchanged pages."""
    lazy = _Lazy(info, {} if cache is None else cache)
    heaps: dict[int, HeapWalk] = {}
    named = 0
    for page in pages:
        if not page.changed or named >= limit:  # unchanged: as recorded, nothing to name
            page.symbol, page.range_symbols = None, []
            continue
        named += 1
        targets = [page.rec_addr + off for off, _ in page.changed_ranges]
        if page.kind == "heap":
            region = report.region_at(info.regions, page.rec_addr)
            walk = heaps.setdefault(region.start, HeapWalk(pid, region.start, region.end))
            names = [walk.chunk_name(t) for t in targets]
        elif page.kind in ("stack", "stack-scratch"):
            # a second thread's TLS block sits right above its stack, in the same mapping
            names = [tls_symbol(t, lazy.tls(t)) or _stack_name(lazy, t) for t in targets]
        elif page.kind in ("data", "other"):
            names = [data_symbol(t, lazy.tls(t)) for t in targets]
        else:
            names = [None for _ in targets]
        page.range_symbols = names
        page.symbol = names[0]


def _stack_name(lazy: _Lazy, target_addr: int) -> str:
    """Dead stack below the recorded rsp and its red zone needs no unwinding."""
    if target_addr < lazy.info.rsp - report.RED_ZONE:
        return "below rsp"
    return stack_frame(lazy.frames(), target_addr)


# --- globals and TLS ------------------------------------------------------------------


def tls_symbol(target_addr: int, tls: list[tuple[int, int, str]] | None) -> str | None:
    for start, size, name in tls or ():
        if start <= target_addr < start + max(size, 1):
            off = target_addr - start
            return f"tls:{name}+{off}" if off else f"tls:{name}"
    return None


def data_symbol(target_addr: int, tls: list[tuple[int, int, str]] | None = None) -> str | None:
    found = tls_symbol(target_addr, tls)
    if found:
        return found
    try:
        out = gdb.execute(f"info symbol {target_addr:#x}", to_string=True).strip()
    except gdb.error:
        return None
    match = _INFO_SYMBOL_RE.match(out)
    if not match:
        return None
    name, off = match.group(1), int(match.group(2) or 0)
    return f"{name}+{off}" if off else name


def _elf_tls(exe_path: str):
    """(TLS segment (vaddr, memsz, align), [(st_value, size, name)]) of an ELF file;
    parsed once per file version."""
    return _elf_tls_cached(exe_path, os.stat(exe_path).st_mtime)


@functools.lru_cache(maxsize=16)
def _elf_tls_cached(exe_path: str, _mtime: float):
    from elftools.elf.elffile import ELFFile

    with open(exe_path, "rb") as f:
        elf = ELFFile(f)
        segment = None
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_TLS":
                segment = (seg["p_vaddr"], seg["p_memsz"], seg["p_align"] or 1)
        symbols = []
        symtab = elf.get_section_by_name(".symtab") or elf.get_section_by_name(".dynsym")
        if segment and symtab is not None:
            for sym in symtab.iter_symbols():
                if sym["st_info"]["type"] == "STT_TLS" and sym.name:
                    symbols.append((sym["st_value"], sym["st_size"], sym.name))
    return segment, symbols


def tls_symbols(info) -> list[tuple[int, int, str]]:
    """[(target_addr, size, name)] of the executable's TLS variables in this thread."""
    try:
        segment, symbols = _elf_tls(info.exe_path)
    except (OSError, ValueError, ImportError):
        return []
    if not segment or not info.fs_base:
        return []
    vaddr, memsz, align = segment
    # TLS variant II: the executable's block ends at the thread pointer
    firstbyte = (-vaddr) & (align - 1)
    offset = ((memsz + firstbyte + align - 1) // align) * align
    block = info.fs_base - offset + firstbyte
    out = []
    for st_value, size, name in symbols:
        out.append((_gdb_address(name) or block + st_value, size, name))
    return out


def _gdb_address(name: str) -> int | None:
    try:
        return int(gdb.parse_and_eval(f"(unsigned long)&'{name}'"))
    except gdb.error:
        return None


# --- heap -----------------------------------------------------------------------------


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.process_vm_readv.restype = ctypes.c_ssize_t


def read_remote(pid: int, target_addr: int, length: int) -> bytes:
    """process_vm_readv: faults pages in through userfaultfd (reads never count as writes)."""
    buf = ctypes.create_string_buffer(length)
    local = _Iovec(ctypes.cast(buf, ctypes.c_void_p), length)
    remote = _Iovec(target_addr, length)
    n = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return buf.raw[:n]


class HeapWalk:
    """The glibc malloc chunks of a heap, walked once from its start and only as far as
    asked (pages are named in address order), reading the heap a MiB at a time."""

    READ_BYTES = 1 << 20

    def __init__(self, pid: int, heap_start: int, heap_end: int) -> None:
        self.pid, self.start, self.end = pid, heap_start, heap_end
        self.starts: list[int] = []  # chunk addresses, ascending
        self.sizes: list[int] = []
        self._next = heap_start  # the next chunk header to read
        self._buf, self._buf_at = b"", heap_start
        self._broken = False  # a size that cannot be a chunk's: stop walking

    def _read(self, target_addr: int, length: int) -> bytes | None:
        if not (
            self._buf_at <= target_addr and target_addr + length <= self._buf_at + len(self._buf)
        ):
            size = min(max(self.READ_BYTES, length), self.end - target_addr)
            try:
                self._buf = read_remote(self.pid, target_addr, size)
            except OSError:
                return None
            self._buf_at = target_addr
        off = target_addr - self._buf_at
        data = self._buf[off : off + length]
        return data if len(data) == length else None

    def _walk_past(self, target_addr: int) -> None:
        while (
            not self._broken
            and self._next <= target_addr
            and self._next + 16 <= self.end
            and len(self.starts) < MAX_CHUNKS
        ):
            header = self._read(self._next, 16)
            size = struct.unpack_from("<Q", header, 8)[0] & ~0x7 if header else 0
            if size < 16:
                self._broken = True
                return
            self.starts.append(self._next)
            self.sizes.append(size)
            self._next += size

    def chunk_name(self, target_addr: int) -> str | None:
        """ "chunk 0x55d0c0a2b2c0+8 (32 bytes)" for the chunk holding target_addr."""
        self._walk_past(target_addr)
        i = bisect.bisect_right(self.starts, target_addr) - 1
        if i < 0 or target_addr >= self.starts[i] + self.sizes[i]:
            return None
        mem = self.starts[i] + 16  # what malloc returned
        off = target_addr - mem
        if off < 0:
            return f"chunk {mem:#x} ({self.sizes[i]} bytes) header"
        return f"chunk {mem:#x}" + (f"+{off}" if off else "") + f" ({self.sizes[i]} bytes)"


# --- stack ----------------------------------------------------------------------------


def _frame_spans() -> list[tuple[int, str]]:
    """[(sp, "frame #i name")] from the newest frame outwards."""
    spans = []
    try:
        frame = gdb.newest_frame()
    except gdb.error:
        return spans
    i = 0
    while frame is not None and i < MAX_FRAMES:
        try:
            sp = int(frame.read_register("rsp"))
        except (gdb.error, ValueError):
            break
        spans.append((sp, f"frame #{i} {frame.name() or '??'}"))
        try:
            frame = frame.older()
        except gdb.error:
            break
        i += 1
    return spans


def stack_frame(spans: list[tuple[int, str]], target_addr: int) -> str | None:
    """The frame whose stack holds target_addr; the 128 bytes below the newest frame's
    rsp are its red zone (a leaf function keeps its locals there without moving rsp)."""
    if not spans or target_addr < spans[0][0] - report.RED_ZONE:
        return "below rsp"
    if target_addr < spans[0][0]:
        return f"{spans[0][1]} (red zone)"
    for (sp, name), (older_sp, _) in zip(spans, spans[1:], strict=False):
        if sp <= target_addr < older_sp:
            return name
    return spans[-1][1] if len(spans) < MAX_FRAMES else f"below {spans[-1][1]}"


# --- build-ids ------------------------------------------------------------------------

_local_ids: dict[tuple[str, float], str | None] = {}


def _local_build_id(path: str) -> str | None:
    try:
        key = (path, os.stat(path).st_mtime)
    except OSError:
        return None
    if key not in _local_ids:
        from snapshotdb import elf

        _local_ids[key] = elf.build_id(path)
    return _local_ids[key]


def build_id_warnings(info) -> list[str]:
    """A warning for the executable and each library whose local file is not the recorded
    one (by build-id): GDB then reads wrong symbols, while memory stays the recorded one."""
    warnings = []
    if info.build_id:
        local = _local_build_id(info.exe_path)
        if local is not None and local != info.build_id:
            warnings.append(_mismatch(info.exe_path, local, info.build_id))
    if info.libraries:
        warnings.extend(_library_warnings(info))
    return warnings


def _mismatch(path: str, local: str, recorded: str) -> str:
    return (
        f"warning: {path} has build-id {local}, the recording {recorded}: "
        "symbols may be wrong; memory is the recorded one."
    )


def _library_warnings(info) -> list[str]:
    from snapshotdb import elf, queries
    from snapshotdb.errors import RecordingError

    warnings = []
    with info.recording.session() as session:

        def read(rec_addr: int, length: int) -> bytes:
            return queries.read_memory(session, rec_addr, length, info.tick)

        for base, path in info.libraries:
            try:
                recorded = elf.image_build_id(read, base)
            except RecordingError:
                continue
            if recorded is None:  # not an ELF image (locale archive, caches, data files)
                continue
            if not os.path.exists(path):
                warnings.append(
                    f"warning: {path} is missing: no symbols for it; memory is the recorded one."
                )
                continue
            local = _local_build_id(path)
            if local is not None and recorded != local:
                warnings.append(_mismatch(path, local, recorded))
    return warnings
