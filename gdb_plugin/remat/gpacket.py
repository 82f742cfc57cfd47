"""A recorded thread's registers as a remote `G` packet (GDB's g/G layout), so that a
kept process moved to another tick gets every register of every thread in one packet
per thread (gdb_plugin/replay.py). Does not import gdb.

    layout = parse_remote_registers(text of `maint print remote-registers`)
    packet = build_g_packet(layout, current_g_bytes, recorded_thread)

Registers come from the recording: the general ones from gpregs (user_regs_struct),
x87/SSE from fpregs (the FXSAVE area), the AVX upper halves from the XSAVE area at
their architectural offset (576). What the recording does not give in a form known
here (pkru, AVX-512) keeps its current value: GDB reads $pkru at a wrong offset on
some AMD CPUs (DESIGN.md), so it is never written by name.
"""

from __future__ import annotations

import re

from snapshotdb.regs import gpregs_dict

# name, g offset, size
RegLayout = dict[str, tuple[int, int]]

_ROW = re.compile(r"^\s*(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s*$")
GP64 = (
    "rax",
    "rbx",
    "rcx",
    "rdx",
    "rsi",
    "rdi",
    "rbp",
    "rsp",
    "r8",
    "r9",
    "r10",
    "r11",
    "r12",
    "r13",
    "r14",
    "r15",
    "rip",
    "fs_base",
    "gs_base",
    "orig_rax",
)
GP32 = ("eflags", "cs", "ss", "ds", "es", "fs", "gs")
XSTATE_BV = 512  # offset of XSTATE_BV in the XSAVE header
AVX_OFFSET = 576  # the AVX upper halves in the standard XSAVE format
AVX_BIT = 1 << 2


def parse_remote_registers(text: str) -> RegLayout:
    """{name: (g offset, size)} of the registers the remote target transfers in `g`."""
    layout = {}
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            name, size, g_offset = match.group(1), int(match.group(5)), int(match.group(8))
            layout[name] = (g_offset, size)
    return layout


def _abridged_to_full_tag(abridged: int) -> int:
    """The 16-bit tag word from FXSAVE's abridged one: empty (3) where the bit is clear,
    valid (0) otherwise; gdbserver turns it back into the same abridged bits."""
    return sum((0 if abridged >> i & 1 else 3) << (2 * i) for i in range(8))


def recorded_values(gpregs: bytes, fpregs: bytes, xstate: bytes) -> dict[str, bytes]:
    """Register name -> its little-endian bytes (the names GDB's amd64 target uses)."""
    regs = gpregs_dict(gpregs)
    values = {name: regs[name].to_bytes(8, "little") for name in GP64}
    values.update({name: (regs[name] & 0xFFFFFFFF).to_bytes(4, "little") for name in GP32})
    u16 = lambda off: int.from_bytes(fpregs[off : off + 2], "little")  # noqa: E731
    values["fctrl"] = u16(0).to_bytes(4, "little")
    values["fstat"] = u16(2).to_bytes(4, "little")
    values["ftag"] = _abridged_to_full_tag(fpregs[4]).to_bytes(4, "little")
    values["fop"] = (u16(6) & 0x7FF).to_bytes(4, "little")
    values["fioff"] = fpregs[8:12]
    values["fiseg"] = u16(12).to_bytes(4, "little")
    values["fooff"] = fpregs[16:20]
    values["foseg"] = u16(20).to_bytes(4, "little")
    values["mxcsr"] = fpregs[24:28]
    for i in range(8):
        values[f"st{i}"] = fpregs[32 + 16 * i : 32 + 16 * i + 10]
    for i in range(16):
        values[f"xmm{i}"] = fpregs[160 + 16 * i : 176 + 16 * i]
    avx = (
        len(xstate) >= AVX_OFFSET + 256
        and int.from_bytes(xstate[XSTATE_BV : XSTATE_BV + 8], "little") & AVX_BIT
    )
    for i in range(16):
        values[f"ymm{i}h"] = (
            xstate[AVX_OFFSET + 16 * i : AVX_OFFSET + 16 * (i + 1)] if avx else bytes(16)
        )
    return values


def build_g_packet(layout: RegLayout, current: bytes, values: dict[str, bytes]) -> bytes:
    """`current` (the thread's `g` reply) with every register of `values` that the layout
    holds replaced; the others stay."""
    out = bytearray(current)
    for name, value in values.items():
        where = layout.get(name)
        if where is None:
            continue
        offset, size = where
        if offset + size <= len(out):
            out[offset : offset + size] = value[:size].ljust(size, b"\0")
    return bytes(out)
