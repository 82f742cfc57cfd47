"""Decode stored register sets into the values GDB shows, for comparisons in tests.

gpregs: struct user_regs_struct; fpregs / xstate legacy area: FXSAVE layout
(mxcsr at 24, st0-7 at 32 + 16 i, xmm0-15 at 160 + 16 i); XSAVE header at 512
(XSTATE_BV: bit 0 x87, bit 1 SSE, bit 2 AVX); AVX upper halves at 576 + 16 i.
"""

from __future__ import annotations

import struct

from snapshotdb.regs import gpregs_dict

XSTATE_BV = 512
AVX_UPPER = 576


gp = gpregs_dict  # every general register by name


def mxcsr(fxsave: bytes) -> int:
    return struct.unpack_from("<I", fxsave, 24)[0]


def st(fxsave: bytes, i: int) -> bytes:
    return fxsave[32 + 16 * i : 32 + 16 * i + 10]


def xmm(fxsave: bytes, i: int) -> bytes:
    return fxsave[160 + 16 * i : 176 + 16 * i]


def ymm(xstate: bytes, i: int) -> bytes:
    """The whole 32 bytes of ymm i; the upper half is zero when AVX is in its init state."""
    (bv,) = struct.unpack_from("<Q", xstate, XSTATE_BV)
    upper = xstate[AVX_UPPER + 16 * i : AVX_UPPER + 16 * i + 16] if bv & 4 else bytes(16)
    return xmm(xstate, i) + upper
