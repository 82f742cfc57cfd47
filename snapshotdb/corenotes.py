"""ELF core files: program headers and the notes ttd needs (x86_64 only).

    ELF header ─ program headers ─┬─ PT_NOTE: NT_PRPSINFO, then per thread
                                  │    NT_PRSTATUS (pr_pid = tid, pr_reg = user_regs_struct)
                                  │    NT_FPREGSET, NT_X86_XSTATE, (NT_SIGINFO)
                                  │  NT_AUXV, NT_FILE (file-backed ranges and their paths)
                                  └─ PT_LOAD per mapping: vaddr, memsz, flags; the first
                                     filesz bytes are in the file (the rest was left out)

The kernel writes one PT_LOAD per mapping and the signalled thread's NT_PRSTATUS
first; GDB's gcore does the same for the selected thread but omits mappings it did
not dump at all (read-only file-backed ones): NT_FILE still lists those.
Layouts: linux/elfcore.h (struct elf_prstatus, elf_prpsinfo), fs/binfmt_elf.c (NT_FILE).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .errors import RecordingError

NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_PRPSINFO = 3
NT_AUXV = 6
NT_X86_XSTATE = 0x202
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45

PT_LOAD = 1
PT_NOTE = 4
PF_X, PF_W, PF_R = 1, 2, 4
ET_CORE = 4
EM_X86_64 = 62
PN_XNUM = 0xFFFF

# struct elf_prstatus on x86_64: pr_cursig at 12, pr_pid at 32, pr_reg at 112 (27 u64).
PRSTATUS_CURSIG = 12
PRSTATUS_PID = 32
PRSTATUS_REG = 112
GPREGS_SIZE = 216
# struct elf_prpsinfo on x86_64: pr_pid at 24, pr_fname[16] at 40, pr_psargs[80] at 56.
PRPSINFO_PID = 24
PRPSINFO_FNAME = 40
PRPSINFO_PSARGS = 56


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
        return ("r" if self.flags & PF_R else "-") + ("w" if self.flags & PF_W else "-") + (
            "x" if self.flags & PF_X else "-") + "p"


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
    segments: list[Segment]
    notes: CoreNotes


def read_core(path: str) -> Core:
    """Parse an x86_64 ELF core's program headers and notes; CoreError when it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            _check_header(path, head)
            segments = _segments(path, f, head)
            notes = CoreNotes()
            for seg in segments:
                if seg.flags == -PT_NOTE:
                    f.seek(seg.offset)
                    raw = f.read(seg.filesz)
                    if len(raw) != seg.filesz:
                        raise CoreError(f"'{path}' is truncated: its notes are cut short.")
                    _parse_notes(raw, notes)
    except FileNotFoundError:
        raise CoreError(f"No core file at '{path}'.") from None
    except IsADirectoryError:
        raise CoreError(f"'{path}' is a directory, not a core file.") from None
    if not notes.threads:
        raise CoreError(f"'{path}' has no NT_PRSTATUS note: no thread to import.")
    return Core(path, [s for s in segments if s.flags >= 0], notes)


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


def _segments(path: str, f, head: bytes) -> list[Segment]:
    """PT_LOAD segments, and PT_NOTE ones marked with flags = -PT_NOTE."""
    (e_phoff,) = struct.unpack_from("<Q", head, 32)
    (e_shoff,) = struct.unpack_from("<Q", head, 40)
    e_phentsize, e_phnum = struct.unpack_from("<HH", head, 54)
    if e_phnum == PN_XNUM:  # the real count is in section header 0's sh_info
        f.seek(e_shoff + 44)
        (e_phnum,) = struct.unpack("<I", f.read(4))
    f.seek(e_phoff)
    table = f.read(e_phentsize * e_phnum)
    if len(table) != e_phentsize * e_phnum:
        raise CoreError(f"'{path}' is truncated: its program headers are cut short.")
    out = []
    for i in range(e_phnum):
        p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz = struct.unpack_from(
            "<IIQQQQQ", table, i * e_phentsize)
        if p_type == PT_LOAD:
            out.append(Segment(p_vaddr, p_memsz, p_offset, p_filesz, p_flags))
        elif p_type == PT_NOTE:
            out.append(Segment(0, 0, p_offset, p_filesz, -PT_NOTE))
    return out


def iter_notes(raw: bytes):
    """(type, name, desc) of each note in a PT_NOTE segment's bytes."""
    pos = 0
    while pos + 12 <= len(raw):
        namesz, descsz, ntype = struct.unpack_from("<III", raw, pos)
        pos += 12
        name = raw[pos:pos + namesz].rstrip(b"\0")
        pos += (namesz + 3) & ~3
        desc = raw[pos:pos + descsz]
        pos += (descsz + 3) & ~3
        yield ntype, name, desc


def _parse_notes(raw: bytes, notes: CoreNotes) -> None:
    for ntype, name, desc in iter_notes(raw):
        if name == b"GDB":
            notes.written_by_gdb = True  # NT_GDB_TDESC: only gcore writes it
            continue
        if name not in (b"CORE", b"LINUX"):
            continue
        if ntype == NT_PRSTATUS:
            (cursig,) = struct.unpack_from("<h", desc, PRSTATUS_CURSIG)
            (tid,) = struct.unpack_from("<i", desc, PRSTATUS_PID)
            gpregs = desc[PRSTATUS_REG:PRSTATUS_REG + GPREGS_SIZE]
            notes.threads.append(CoreThread(tid, cursig, gpregs))
        elif ntype == NT_PRFPREG and notes.threads:
            notes.threads[-1].fpregs = desc
        elif ntype == NT_X86_XSTATE and notes.threads:
            notes.threads[-1].xstate = desc
        elif ntype == NT_PRPSINFO and name == b"CORE":
            (notes.pid,) = struct.unpack_from("<i", desc, PRPSINFO_PID)
            notes.fname = _cstr(desc[PRPSINFO_FNAME:PRPSINFO_FNAME + 16])
            notes.psargs = _cstr(desc[PRPSINFO_PSARGS:PRPSINFO_PSARGS + 80])
        elif ntype == NT_AUXV:
            notes.auxv = desc
        elif ntype == NT_FILE:
            notes.files = parse_nt_file(desc)


def parse_nt_file(desc: bytes) -> list[FileRange]:
    """NT_FILE: count, page_size, count x (start, end, file_ofs in pages), then the paths."""
    count, page_size = struct.unpack_from("<QQ", desc, 0)
    table = [struct.unpack_from("<QQQ", desc, 16 + 24 * i) for i in range(count)]
    names = desc[16 + 24 * count:].split(b"\0")
    return [FileRange(start, end, pgoff * page_size, names[i].decode(errors="replace"))
            for i, (start, end, pgoff) in enumerate(table)]


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")
