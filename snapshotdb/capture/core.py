"""`ttd import-core DB CORE [--exe PATH]`: a kernel or gcore core file as one snapshot.

What comes from where:

    threads     NT_PRSTATUS / NT_FPREGSET / NT_X86_XSTATE, the first one is the one
                that stopped (kernel: the signalled thread; gcore: GDB's selected one)
    mappings    PT_LOAD (start, end, perms) merged with NT_FILE (path, offset);
                NT_FILE ranges with no PT_LOAD (gcore leaves them out) take their
                perms from the mapped ELF file's program headers
    names       [stack] holds the main thread's rsp, [vdso] is at AT_SYSINFO_EHDR,
                [vvar] the unnamed read-only mappings just below it, [heap] the
                first anonymous mapping after the executable (best effort)
    pages       the PT_LOAD bytes; what a core leaves out of a file-backed mapping is
                read from the mapped file when the file is there and agrees with
                the core (a page of it that the core holds, e.g. the ELF header);
                otherwise a warning, and those pages read as zeros
    mm fields   start_code/end_code, start_data/end_data: the executable's r-x and
                rw- mappings (mapping bounds, approximations of the kernel's values);
                start_brk/brk: the [heap] bounds (or the executable's end);
                start_stack, arg_*, env_*: found by locating the auxv on the stack
                (exact when the program did not overwrite its initial stack, else 0)
    xstate      as the core has it (kernel cores: the kernel's layout); for gcore cores
                only the x87/SSE/AVX part, see fixed_layout_part()
    pc          the stopped thread's rip; function from the ELF symbol tables of the
                mapped file, file and line from its DWARF line table (NULL without one)
"""

from __future__ import annotations

import os
import signal
import struct
from bisect import bisect_right
from dataclasses import dataclass

from ..elf import Core, CoreError, FileRange, build_id, load_perms, read_core, where_in_file
from ..pages import PAGE_SIZE
from ..regs import FPREGS_SIZE, gpreg
from .elf_files import FileKeeper
from .proc import KERNEL_SPACE, canonical
from .writer import CHUNK_SIZE, MappingInfo, SnapshotInfo, SnapshotWriter, ThreadState, WriteStats

AT_PHDR = 3
AT_ENTRY = 9
AT_SYSINFO_EHDR = 33
HEAP_SEARCH = 0x40000000 + 0x10000000  # x86_64 brk randomization range (1 GiB), with room


@dataclass
class ImportResult:
    stats: WriteStats
    warnings: list[str]


def import_core(engine, core: Core | str, exe: str | None = None) -> ImportResult:
    """Append the core's moment to the recording behind `engine` (read-write)."""
    if isinstance(core, str):
        core = read_core(core)
    importer = _Importer(core, exe)
    mappings = importer.mappings()
    exe_path = importer.exe_file or core.notes.fname or "?"
    writer = SnapshotWriter(
        engine,
        exe_path=exe_path,
        build_id=build_id(exe_path) if os.path.isfile(exe_path) else None,
        cmdline=importer.argv,
    )
    heap = next((m.start for m in mappings if m.path == "[heap]"), KERNEL_SPACE)
    rows = canonical(mappings, heap)  # as live snapshots keep them
    stats = writer.write(importer.info(rows), importer.threads(), rows, importer.chunks(mappings))
    importer.warnings += FileKeeper(engine).keep(
        rows, importer.file_opener, exe_mapped=importer.exe_recorded
    )
    return ImportResult(stats, importer.warnings)


class _Importer:
    def __init__(self, core: Core, exe: str | None):
        self.core = core
        self.notes = core.notes
        self.warnings: list[str] = []
        self.segments = sorted(
            (s for s in core.segments if s.vaddr < KERNEL_SPACE), key=lambda s: s.vaddr
        )
        self._seg_starts = [s.vaddr for s in self.segments]
        self.exe_recorded = self._exe_recorded_path()
        self.exe_file = exe or self.exe_recorded
        self.argv: list[str] = (self.notes.psargs or "").split()
        self.stack_mm: dict[str, int] = {}

    # ── mappings ──

    def _exe_recorded_path(self) -> str | None:
        """The executable's path as the core names it: the NT_FILE range holding AT_PHDR."""
        for key in (AT_PHDR, AT_ENTRY):
            target_addr = self.notes.auxv_value(key)
            for fr in self.notes.files:
                if target_addr is not None and fr.start <= target_addr < fr.end:
                    return fr.path
        return None

    def local_path(self, recorded: str) -> str:
        """Where to read a mapped file on this machine (--exe replaces the executable)."""
        return self.exe_file if recorded == self.exe_recorded and self.exe_file else recorded

    def file_opener(self, m: MappingInfo) -> str | None:
        """The local file to keep for a mapped one: when it agrees with the core."""
        path = self.local_path(m.path)
        return None if self._file_mismatch(m.path, path) else path

    def mappings(self) -> list[MappingInfo]:
        by_start = {
            s.vaddr: MappingInfo(s.vaddr, s.vaddr + s.memsz, s.perms, 0, "") for s in self.segments
        }
        for fr in self.notes.files:
            m = by_start.get(fr.start)
            if m is None:
                by_start[fr.start] = MappingInfo(
                    fr.start, fr.end, self._file_perms(fr), fr.file_offset, fr.path
                )
            else:
                m.offset, m.path = fr.file_offset, fr.path
        mappings = sorted(by_start.values(), key=lambda m: m.start)
        self._name_special(mappings)
        return mappings

    def _file_perms(self, fr: FileRange) -> str:
        """Perms of a file range the core has no PT_LOAD for: from the file's own PT_LOAD."""
        return load_perms(self.local_path(fr.path), fr.file_offset) or "r--p"

    def _name_special(self, mappings: list[MappingInfo]) -> None:
        rsp = gpreg(self._main_thread().gpregs, "rsp")
        vdso = self.notes.auxv_value(AT_SYSINFO_EHDR)
        for i, m in enumerate(mappings):
            if m.path:
                continue
            if m.start <= rsp < m.end:
                m.path = "[stack]"
            elif m.start == vdso:
                m.path = "[vdso]"
                j = i - 1
                while (
                    j >= 0
                    and not mappings[j].path
                    and "w" not in mappings[j].perms
                    and (mappings[j].end == mappings[j + 1].start)
                ):
                    mappings[j].path = "[vvar]"
                    j -= 1
        exe_maps = [m for m in mappings if m.path == self.exe_recorded]
        if exe_maps:
            exe_end = exe_maps[-1].end
            for m in mappings:
                if m.start >= exe_end and m.path == "" and "w" in m.perms:
                    if m.start < exe_end + HEAP_SEARCH:
                        m.path = "[heap]"
                    break

    def _main_thread(self):
        for t in self.notes.threads:
            if t.tid == self.notes.pid:
                return t
        return self.notes.threads[0]

    # ── threads and snapshot facts ──

    def threads(self) -> list[ThreadState]:
        out = []
        for t in self.notes.threads:
            fpregs = t.fpregs if t.fpregs is not None and len(t.fpregs) == FPREGS_SIZE else None
            if fpregs is None:
                self.warnings.append(f"thread {t.tid} has no NT_FPREGSET; FP state is zeros")
            xstate = t.xstate
            if xstate is not None and self.notes.written_by_gdb:
                xstate = fixed_layout_part(xstate)
            out.append(ThreadState(t.tid, t.gpregs, fpregs or bytes(FPREGS_SIZE), xstate))
        return out

    def info(self, mappings: list[MappingInfo]) -> SnapshotInfo:
        stop = self.notes.threads[0]
        pc = gpreg(stop.gpregs, "rip")
        sig = None
        if stop.cursig:
            try:
                sig = signal.Signals(stop.cursig).name
            except ValueError:
                sig = f"SIG{stop.cursig}"
        function, filename, line = self._where(pc, mappings)
        return SnapshotInfo(
            reason="core",
            stop_tid=stop.tid,
            pc=pc,
            auxv=self.notes.auxv,
            mm=self._mm(mappings),
            function=function,
            file=filename,
            line=line,
            signal=sig,
            note=f"core {os.path.basename(self.core.path)}",
        )

    def _mm(self, mappings: list[MappingInfo]) -> dict[str, int]:
        mm = dict.fromkeys(
            ("start_code", "end_code", "start_data", "end_data", "start_brk", "brk"), 0
        )
        exe_maps = [m for m in mappings if m.path == self.exe_recorded]
        code = [m for m in exe_maps if "x" in m.perms]
        data = [m for m in exe_maps if "w" in m.perms]
        if code:
            mm["start_code"], mm["end_code"] = code[0].start, code[-1].end
        if data:
            mm["start_data"], mm["end_data"] = data[0].start, data[-1].end
        heap = [m for m in mappings if m.path == "[heap]"]
        if heap:
            mm["start_brk"], mm["brk"] = heap[0].start, heap[0].end
        elif exe_maps:
            mm["start_brk"] = mm["brk"] = exe_maps[-1].end
        stack = [m for m in mappings if m.path == "[stack]"]
        mm.update(self._stack_fields(stack[0]) if stack else {})
        return mm

    def _stack_fields(self, stack: MappingInfo) -> dict[str, int]:
        """start_stack, arg_*, env_* from the initial stack: argc, argv[], envp[], auxv.

        The kernel's auxv copy (NT_AUXV) also sits on the stack right after envp's
        NULL; walk back from there. Returns {} when it cannot be found.
        """
        raw = self.read(stack.start, stack.end - stack.start)
        auxv = self.notes.auxv.rstrip(b"\0")[:64]
        pos = raw.rfind(auxv) if auxv else -1
        if pos < 16 or pos % 8:
            return {}
        words = lambda i: struct.unpack_from("<Q", raw, i)[0]  # noqa: E731
        on_stack = lambda i: stack.start <= words(i) < stack.end  # noqa: E731
        i = pos - 8  # envp's NULL
        envp = []
        while i >= 8 and on_stack(i - 8):
            i -= 8
            envp.insert(0, words(i))
        i -= 8  # argv's NULL
        if i < 0 or words(i) != 0:
            return {}
        argv = []
        while i >= 8 and on_stack(i - 8):
            i -= 8
            argv.insert(0, words(i))
        argc_at = i - 8
        if argc_at < 0 or words(argc_at) != len(argv) or not argv:
            return {}
        strings = lambda ptrs: [self._cstring(raw, stack.start, p) for p in ptrs]  # noqa: E731
        args, env = strings(argv), strings(envp)
        if None in args or None in env:
            return {}
        self.argv = args
        fields = {
            "start_stack": stack.start + argc_at,
            "arg_start": argv[0],
            "arg_end": argv[-1] + len(args[-1].encode()) + 1,
        }
        if envp:
            fields.update(env_start=envp[0], env_end=envp[-1] + len(env[-1].encode()) + 1)
        return fields

    @staticmethod
    def _cstring(raw: bytes, base: int, target_addr: int) -> str | None:
        off = target_addr - base
        if not 0 <= off < len(raw):
            return None
        end = raw.find(b"\0", off)
        return None if end < 0 else raw[off:end].decode(errors="replace")

    def _where(self, pc: int, mappings: list[MappingInfo]):
        m = next(
            (
                m
                for m in mappings
                if m.start <= pc < m.end and m.path and not m.path.startswith("[")
            ),
            None,
        )
        if m is None:
            return None, None, None
        return where_in_file(self.local_path(m.path), m.offset + (pc - m.start))

    # ── memory ──

    def read(self, target_addr: int, length: int) -> bytes:
        """Bytes the core holds at [target_addr, +length); zeros where it holds none."""
        out = bytearray(length)
        i = bisect_right(self._seg_starts, target_addr) - 1
        with open(self.core.path, "rb") as f:
            for seg in self.segments[max(i, 0) :]:
                if seg.vaddr >= target_addr + length:
                    break
                lo = max(seg.vaddr, target_addr)
                hi = min(seg.vaddr + seg.filesz, target_addr + length)
                if lo < hi:
                    f.seek(seg.offset + lo - seg.vaddr)
                    out[lo - target_addr : hi - target_addr] = f.read(hi - lo)
        return bytes(out)

    def chunks(self, mappings: list[MappingInfo]):
        """(rec_addr, bytes) of every page the core or the mapped files give."""
        with open(self.core.path, "rb") as f:
            seg_of = {s.vaddr: s for s in self.segments}
            for m in mappings:
                seg = seg_of.get(m.start)
                dumped = min(seg.filesz, m.end - m.start) if seg else 0
                if dumped:
                    yield from _file_chunks(f, seg.offset, m.start, dumped)
                if m.start + dumped < m.end and m.path and not m.path.startswith("["):
                    yield from self._from_mapped_file(m, dumped)

    def _from_mapped_file(self, m: MappingInfo, dumped: int):
        path = self.local_path(m.path)
        problem = self._file_mismatch(m.path, path)
        if problem:
            self.warnings.append(
                f"{m.start + dumped:#x}-{m.end:#x} ({m.path}): {problem}; these pages read as zeros"
            )
            return
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            start = m.offset + dumped
            length = min(m.end - m.start - dumped, size - start)
            if length <= 0:
                return
            # the last page of a file may be partial: the rest of it reads as zeros
            yield from _file_chunks(f, start, m.start + dumped, length, pad=True)

    def _file_mismatch(self, recorded: str, path: str) -> str | None:
        """Why the file at `path` cannot stand in for the recorded mapped file, or None."""
        cache = self.__dict__.setdefault("_mismatch", {})
        if path in cache:
            return cache[path]
        problem = None
        if not os.path.isfile(path):
            problem = f"the file '{path}' is not there"
        else:
            # The page at file offset 0 (the ELF header, build-id note included) is one
            # the kernel and gcore dump and the program never writes: compare it.
            for fr in self.notes.files:
                if fr.path != recorded or fr.file_offset != 0:
                    continue
                held = self._dumped_page(fr.start)
                if held is None:
                    continue
                with open(path, "rb") as f:
                    on_disk = f.read(PAGE_SIZE).ljust(PAGE_SIZE, b"\0")
                if on_disk != held:
                    problem = f"the file '{path}' differs from the one the core was made with"
                break
        cache[path] = problem
        return problem

    def _dumped_page(self, target_addr: int) -> bytes | None:
        i = bisect_right(self._seg_starts, target_addr) - 1
        if i < 0:
            return None
        seg = self.segments[i]
        if seg.vaddr == target_addr and seg.filesz >= PAGE_SIZE:
            return self.read(target_addr, PAGE_SIZE)
        return None


# XSAVE standard format: the legacy FXSAVE area (0-511), the header (512-575, its first
# u64 is XSTATE_BV) and the AVX upper halves (576-831) sit at the same offsets on every
# CPU; later components (AVX-512, PKRU, ...) sit where CPUID leaf 0xD says.
XSAVE_FIXED_END = 832
XSTATE_BV_FIXED = 0b111  # x87, SSE, AVX


def fixed_layout_part(xstate: bytes) -> bytes:
    """gcore writes the XSAVE area in GDB's own layout (Intel's offsets, wrong on AMD for
    AVX-512 and PKRU): keep the parts every CPU agrees on and mark the later components
    as in their initial state (XSTATE_BV bits cleared), so a restore cannot load
    another component's bytes. The buffer keeps its size."""
    if len(xstate) < XSAVE_FIXED_END:
        return xstate
    (bv,) = struct.unpack_from("<Q", xstate, 512)
    head = bytearray(xstate[:XSAVE_FIXED_END])
    struct.pack_into("<Q", head, 512, bv & XSTATE_BV_FIXED)
    return bytes(head) + bytes(len(xstate) - XSAVE_FIXED_END)


def _file_chunks(f, offset: int, rec_addr: int, length: int, pad: bool = False):
    done = 0
    while done < length:
        n = min(CHUNK_SIZE, length - done)
        f.seek(offset + done)
        data = f.read(n)
        if len(data) != n and not pad:
            raise CoreError(
                f"'{f.name}' is truncated: memory at {rec_addr + done:#x} is cut short."
            )
        if len(data) % PAGE_SIZE:
            data = data.ljust(len(data) + PAGE_SIZE - len(data) % PAGE_SIZE, b"\0")
        if not data:
            return
        yield rec_addr + done, data
        done += n
