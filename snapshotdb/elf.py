"""The one ELF reader of ttd, on pyelftools: a core file's program headers and notes,
build-ids (of files and of images in recorded memory), the permissions a file's own
program headers give a range of it, and the function and line at an address.

    core file ─ ELF header (ET_CORE, EM_X86_64) ─ program headers (PN_XNUM: the count
              │  is in section header 0's sh_info when there are 65535 or more)
              ├─ PT_NOTE: NT_PRPSINFO (pid, fname, psargs); per thread NT_PRSTATUS
              │    (pr_pid = tid, pr_cursig, pr_reg = user_regs_struct), NT_FPREGSET,
              │    NT_X86_XSTATE; NT_AUXV; NT_FILE (file-backed ranges and their paths)
              └─ PT_LOAD per mapping: vaddr, memsz, flags; the first filesz bytes are in
                 the file (the rest was left out)

The kernel writes one PT_LOAD per mapping and the signalled thread's NT_PRSTATUS first;
GDB's gcore does the same for the selected thread but omits mappings it did not dump
at all (read-only file-backed ones): NT_FILE still lists those.

A build-id is the NT_GNU_BUILD_ID note (name "GNU"), found through the PT_NOTE program
headers (what the loader maps, so what a recording holds in memory), else through the
SHT_NOTE sections. One definition, for a file (build_id) and for an image in recorded
memory (image_build_id), so that the two can be compared.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .errors import RecordingError
from .paths import NOT_FOUND, path_problem
from .regs import GPREGS_SIZE, NT_X86_XSTATE  # pyelftools names the other core notes

PF_X, PF_W, PF_R = 1, 2, 4
ET_CORE = 4
EM_X86_64 = 62
PAGE_SIZE = 4096
# struct elf_prstatus on x86_64 (linux/elfcore.h): pr_cursig at 12, pr_pid at 32,
# pr_reg (struct user_regs_struct) at 112
PRSTATUS_CURSIG = 12
PRSTATUS_PID = 32
PRSTATUS_REG = 112
# An image in memory whose header claims more program headers than this, or notes
# longer than a page, is not one the loader mapped: no build-id is read from it.
IMAGE_MAX_PHDRS = 64
IMAGE_MAX_NOTES = PAGE_SIZE


class CoreError(RecordingError):
    """A file that is not an x86_64 ELF core, or a core that is cut short."""


@dataclass
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int

    @property
    def perms(self) -> str:
        return perms_of(self.flags)


@dataclass
class CoreThread:
    tid: int
    cursig: int
    gpregs: bytes
    fpregs: bytes | None = None
    xstate: bytes | None = None


@dataclass
class FileRange:
    start: int
    end: int
    file_offset: int  # in bytes
    path: str


@dataclass
class CoreNotes:
    pid: int | None = None
    fname: str | None = None
    psargs: str | None = None
    threads: list[CoreThread] = field(default_factory=list)
    auxv: bytes = b""
    files: list[FileRange] = field(default_factory=list)
    written_by_gdb: bool = False

    def auxv_value(self, key: int) -> int | None:
        for i in range(0, len(self.auxv) - 15, 16):
            k, v = struct.unpack_from("<QQ", self.auxv, i)
            if k == key:
                return v
        return None


@dataclass
class Core:
    path: str
    segments: list[Segment]  # PT_LOAD only
    notes: CoreNotes


def perms_of(p_flags: int) -> str:
    """/proc/PID/maps perms ("r-xp") of a program header's flags."""
    return (
        ("r" if p_flags & PF_R else "-")
        + ("w" if p_flags & PF_W else "-")
        + ("x" if p_flags & PF_X else "-")
        + "p"
    )


# ─── core files ──────────────────────────────────────────────────────────────


def read_core(path: str) -> Core:
    """Parse an x86_64 ELF core's program headers and notes; CoreError when it is not one."""
    problem = path_problem(path)
    if problem == NOT_FOUND:
        raise CoreError(f"No core file at '{path}'.")
    if problem is not None:
        raise CoreError(f"No core file at '{path}': {problem}.")
    if os.path.isdir(path):
        raise CoreError(f"'{path}' is a directory, not a core file.")
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise CoreError(f"Cannot read the core file '{path}': {exc.strerror}.") from None
    with f:
        _check_header(path, f.read(64))
        size = os.fstat(f.fileno()).st_size
        elf = _elf_file(path, f)
        if elf["e_phoff"] + elf.num_segments() * elf["e_phentsize"] > size:
            raise CoreError(f"'{path}' is truncated: its program headers are cut short.")
        segments, notes = [], CoreNotes()
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD":
                segments.append(
                    Segment(
                        seg["p_vaddr"],
                        seg["p_memsz"],
                        seg["p_offset"],
                        seg["p_filesz"],
                        seg["p_flags"],
                    )
                )
            elif seg["p_type"] == "PT_NOTE":
                if seg["p_offset"] + seg["p_filesz"] > size:
                    raise CoreError(f"'{path}' is truncated: its notes are cut short.")
                _core_notes(seg.iter_notes(), notes)
    if not notes.threads:
        raise CoreError(f"'{path}' has no NT_PRSTATUS note: no thread to import.")
    return Core(path, segments, notes)


def _check_header(path: str, head: bytes) -> None:
    if len(head) < 64 or head[:4] != b"\x7fELF":
        raise CoreError(f"'{path}' is not a core file (not ELF).")
    if head[4] != 2 or head[5] != 1:
        raise CoreError(f"'{path}' is not a 64-bit little-endian ELF file.")
    e_type, e_machine = struct.unpack_from("<HH", head, 16)
    if e_type != ET_CORE:
        raise CoreError(f"'{path}' is an ELF file but not a core file.")
    if e_machine != EM_X86_64:
        raise CoreError(f"'{path}' is a core of machine {e_machine}, not x86_64.")


def _elf_file(path: str, f):
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        return ELFFile(f)
    except ELFError as exc:
        raise CoreError(f"'{path}' cannot be read as an ELF file: {exc}") from None


def _core_notes(notes_in: Iterable, notes: CoreNotes) -> None:
    """Fill `notes` from the notes of one PT_NOTE segment (pyelftools containers)."""
    for note in notes_in:
        name, ntype, desc = note["n_name"], note["n_type"], note["n_descdata"]
        if name == "GDB":
            notes.written_by_gdb = True  # NT_GDB_TDESC: only gcore writes it
            continue
        if name not in ("CORE", "LINUX"):
            continue
        if ntype == "NT_PRSTATUS":
            (cursig,) = struct.unpack_from("<h", desc, PRSTATUS_CURSIG)
            (tid,) = struct.unpack_from("<i", desc, PRSTATUS_PID)
            gpregs = desc[PRSTATUS_REG : PRSTATUS_REG + GPREGS_SIZE]
            notes.threads.append(CoreThread(tid, cursig, gpregs))
        elif ntype == "NT_FPREGSET" and notes.threads:
            notes.threads[-1].fpregs = desc
        elif ntype == NT_X86_XSTATE and notes.threads:
            notes.threads[-1].xstate = desc
        elif ntype == "NT_PRPSINFO" and name == "CORE":
            info = note["n_desc"]
            notes.pid = info.pr_pid
            notes.fname, notes.psargs = _cstr(info.pr_fname), _cstr(info.pr_psargs)
        elif ntype == "NT_AUXV":
            notes.auxv = desc
        elif ntype == "NT_FILE":
            table = note["n_desc"]
            notes.files = [
                FileRange(e.vm_start, e.vm_end, e.page_offset * table.page_size, _text(name))
                for e, name in zip(table.Elf_Nt_File_Entry, table.filename, strict=True)
            ]


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


# ─── build-ids ───────────────────────────────────────────────────────────────


def build_id(path: str | os.PathLike) -> str | None:
    """The GNU build-id of an ELF file as hex; None when it is not ELF or has none."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            for seg in elf.iter_segments("PT_NOTE"):
                found = _gnu_build_id(seg.iter_notes())
                if found:
                    return found
            for section in elf.iter_sections("SHT_NOTE"):
                found = _gnu_build_id(section.iter_notes())
                if found:
                    return found
    except (OSError, ELFError):
        return None
    return None


def image_build_id(read: Callable[[int, int], bytes], base: int) -> str | None:
    """The GNU build-id of the ELF image whose header is mapped at `base` in (recorded)
    memory, through its PT_NOTE program headers; read(rec_addr, length) reads the
    memory. None when no ELF image is there (a locale archive, a data file)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.notes import iter_notes

    stream = _ImageStream(read, base)
    head = stream.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:  # ELFCLASS64 only
        return None
    try:
        elf = ELFFile(stream)
        if elf.num_segments() > IMAGE_MAX_PHDRS:
            return None
        loads = [seg["p_vaddr"] for seg in elf.iter_segments("PT_LOAD")]
        first = min(loads) & ~(PAGE_SIZE - 1) if loads else 0  # non-PIE: 0x400000
        for seg in elf.iter_segments("PT_NOTE"):
            if 0 < seg["p_memsz"] <= IMAGE_MAX_NOTES and seg["p_vaddr"] >= first:
                found = _gnu_build_id(iter_notes(elf, seg["p_vaddr"] - first, seg["p_memsz"]))
                if found:
                    return found
    except ELFError:
        return None
    return None


def _gnu_build_id(notes: Iterable) -> str | None:
    for note in notes:
        if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
            return note["n_desc"]
    return None


class _ImageStream(io.RawIOBase):
    """An ELF image in memory as a file: position 0 is its ELF header at `base`."""

    SIZE = 1 << 32  # pyelftools asks for the length; an image is never larger

    def __init__(self, read: Callable[[int, int], bytes], base: int):
        self._read, self._base, self._pos = read, base, 0
        self._pages: dict[int, bytes] = {}  # pyelftools reads a few bytes at a time

    def _page(self, rec_page: int) -> bytes:
        if rec_page not in self._pages:
            self._pages[rec_page] = self._read(rec_page, PAGE_SIZE)
        return self._pages[rec_page]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.SIZE}[whence]
        self._pos = origin + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        """Reads whole pages of the memory once each (a read of a recording is a query)."""
        at, done = self._base + self._pos, 0
        while done < len(buffer):
            rec_page = (at + done) & ~(PAGE_SIZE - 1)
            page = self._page(rec_page)
            chunk = page[at + done - rec_page :][: len(buffer) - done]
            if not chunk:
                break
            buffer[done : done + len(chunk)] = chunk
            done += len(chunk)
            if len(page) < PAGE_SIZE:
                break
        self._pos += done
        return done


# ─── a file's own program headers and symbols ───────────────────────────────


def load_perms(path: str, file_offset: int) -> str | None:
    """The perms ("r-xp") the PT_LOAD of ELF file `path` that holds `file_offset` gives
    it; None when the file cannot be read as ELF or no PT_LOAD holds it."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            for seg in ELFFile(f).iter_segments("PT_LOAD"):
                start = seg["p_offset"] & ~(PAGE_SIZE - 1)
                if start <= file_offset < seg["p_offset"] + max(seg["p_filesz"], 1):
                    return perms_of(seg["p_flags"])
    except (OSError, ELFError):
        return None
    return None


def where_in_file(path: str, file_offset: int) -> tuple[str | None, str | None, int | None]:
    """(function, source file, line) of the code at `file_offset` of an ELF file, as far
    as its symbol tables and DWARF line table tell, or those of its separate debug file
    (debug_file_of: libc's comes with libc6-dbg); Nones where they do not."""
    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            vaddr = _vaddr_of(elf, file_offset)
            if vaddr is None:
                return None, None, None
            function, (source, line) = _function_at(elf, vaddr), _line_at(elf, vaddr)
        debug = debug_file_of(path) if function is None or source is None else None
        if debug is not None:  # the same addresses: it is the same link's other half
            with open(debug, "rb") as f:
                elf = ELFFile(f)
                function = function or _function_at(elf, vaddr)
                if source is None:
                    source, line = _line_at(elf, vaddr)
        return function, source, line
    except (OSError, ELFError, DWARFError):
        return None, None, None


DEBUG_ROOT = "/usr/lib/debug"


def debug_file_of(path: str) -> str | None:
    """The separate debug file of an ELF file, where GDB looks for it: by build-id under
    /usr/lib/debug/.build-id, else by its .gnu_debuglink name beside it, in .debug/ beside
    it, or under /usr/lib/debug; None when there is none."""
    found = build_id(path)
    if found:
        candidate = os.path.join(DEBUG_ROOT, ".build-id", found[:2], found[2:] + ".debug")
        if os.path.isfile(candidate):
            return candidate
    link = _debuglink(path)
    if link:
        here = os.path.dirname(os.path.realpath(path))
        for directory in (here, os.path.join(here, ".debug"), DEBUG_ROOT + here):
            candidate = os.path.join(directory, link)
            if os.path.isfile(candidate) and candidate != os.path.realpath(path):
                return candidate
    return None


def _debuglink(path: str) -> str | None:
    """The file name a .gnu_debuglink section names, or None."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(path, "rb") as f:
            section = ELFFile(f).get_section_by_name(".gnu_debuglink")
            if section is None:
                return None
            name = section.data().split(b"\0", 1)[0].decode(errors="replace")
    except (OSError, ELFError):
        return None
    return name if name and "/" not in name else None


def _vaddr_of(elf, file_offset: int) -> int | None:
    for seg in elf.iter_segments("PT_LOAD"):
        if seg["p_offset"] <= file_offset < seg["p_offset"] + seg["p_filesz"]:
            return seg["p_vaddr"] + file_offset - seg["p_offset"]
    return None


def _function_at(elf, vaddr: int) -> str | None:
    for name in (".symtab", ".dynsym"):
        section = elf.get_section_by_name(name)
        if section is None:
            continue
        for sym in section.iter_symbols():
            if sym["st_info"]["type"] == "STT_FUNC" and sym["st_value"] <= vaddr < sym[
                "st_value"
            ] + max(sym["st_size"], 1):
                return sym.name
    return None


def _line_at(elf, vaddr: int) -> tuple[str | None, int | None]:
    """The line table row covering vaddr: the last row at or below it in its sequence."""
    if not elf.has_dwarf_info():
        return None, None
    dwarf = elf.get_dwarf_info()
    for cu in _candidate_cus(dwarf, vaddr):
        program = dwarf.line_program_for_CU(cu)
        if program is None:
            continue
        prev = None
        for entry in program.get_entries():
            state = entry.state
            if state is None:
                continue
            if prev is not None and prev.address <= vaddr < state.address:
                return _line_file(program, prev.file), prev.line
            prev = None if state.end_sequence else state
    return None, None


def _candidate_cus(dwarf, vaddr: int):
    """The CU that .debug_aranges names for vaddr, or every CU when it names none."""
    aranges = dwarf.get_aranges()
    offset = aranges.cu_offset_at_addr(vaddr) if aranges is not None else None
    return [dwarf.get_CU_at(offset)] if offset is not None else dwarf.iter_CUs()


def _line_file(program, index: int) -> str | None:
    entries = program["file_entry"]
    i = index if program["version"] >= 5 else index - 1  # DWARF 5 counts files from 0
    if not 0 <= i < len(entries):
        return None
    # As GDB names it: the name as the compiler got it, i.e. joined with its directory
    # unless that is directory 0, the compilation directory.
    name, dir_index = _text(entries[i].name), entries[i].dir_index
    dirs = program["include_directory"]
    if dir_index and not name.startswith("/"):
        j = dir_index if program["version"] >= 5 else dir_index - 1
        if 0 <= j < len(dirs):
            name = os.path.join(_text(dirs[j]), name)
    return name


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value
