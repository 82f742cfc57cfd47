"""The register layout of a recorded thread, written once.

gpregs is `struct user_regs_struct` (sys/user.h, x86_64): 27 unsigned longs in
GPREG_NAMES order, fs_base and gs_base included (216 bytes). fpregs is `struct
user_fpregs_struct` (512 bytes, the FXSAVE area). xstate is the NT_X86_XSTATE
regset as the kernel gave it (variable size, the CPU's own XSAVE layout).
"""

from __future__ import annotations

import struct

# The snapshot's mm columns (models.Snapshot) in struct prctl_mm_map's order, as the
# spec sends them to the page server (native/layout.h MM_FIELDS; tests/native/test_abi.py
# compares the two): written once, here.
MM_FIELDS = (
    "start_code",
    "end_code",
    "start_data",
    "end_data",
    "start_brk",
    "brk",
    "start_stack",
    "arg_start",
    "arg_end",
    "env_start",
    "env_end",
)

GPREG_NAMES = (
    "r15",
    "r14",
    "r13",
    "r12",
    "rbp",
    "rbx",
    "r11",
    "r10",
    "r9",
    "r8",
    "rax",
    "rcx",
    "rdx",
    "rsi",
    "rdi",
    "orig_rax",
    "rip",
    "cs",
    "eflags",
    "rsp",
    "ss",
    "fs_base",
    "gs_base",
    "ds",
    "es",
    "fs",
    "gs",
)
GPREGS = struct.Struct(f"<{len(GPREG_NAMES)}Q")
GPREGS_SIZE = GPREGS.size  # 216
FPREGS_SIZE = 512  # struct user_fpregs_struct
XSTATE_MAX_SIZE = 16384  # room for the largest XSAVE area a CPU reports
# The three as PTRACE_GETREGSET and a core's notes name them (linux/elf.h)
NT_PRSTATUS = 1  # gpregs (a core's NT_PRSTATUS holds them at pr_reg)
NT_PRFPREG = 2  # fpregs (NT_FPREGSET)
NT_X86_XSTATE = 0x202  # xstate

_INDEX = {name: i for i, name in enumerate(GPREG_NAMES)}


def gpreg(gpregs: bytes, name: str) -> int:
    """One register from a struct user_regs_struct, e.g. gpreg(regs, "rsp")."""
    return struct.unpack_from("<Q", gpregs, 8 * _INDEX[name])[0]


def gpregs_dict(gpregs: bytes) -> dict[str, int]:
    """Every general register by name."""
    return dict(zip(GPREG_NAMES, GPREGS.unpack_from(gpregs), strict=True))


def pack_gpregs(values: dict[str, int]) -> bytes:
    """A struct user_regs_struct from {name: value}; registers not named are 0."""
    return GPREGS.pack(*(values.get(name, 0) for name in GPREG_NAMES))
