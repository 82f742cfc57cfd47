"""The contract between this package and native/ttd-pageserver, written once on this side.

The page server prints its side with `ttd-pageserver --abi` (native/pageserver/abi.c,
from the definitions it is built from: spec.h, layout.h, ctl.c); abi() gives this side
in the same shape, and tests/native/test_abi.py fails when the two differ. Change
native/pageserver/spec.h or layout.h, and that test says what to change here.

    spec = SPEC_HEAD bytes (pack_head), then nr_maps x STUB_MAP (pack_map),
           auxv_size bytes of auxv, nr_threads x (SPEC_THREAD (pack_thread) and its
           xstate_size bytes of XSAVE area; the leader first), db_path_size of path
    MOVE   = "MOVE <tick> <nr_maps> <brk hex> <ran: 0|1>" and a line break, then
           nr_maps x STUB_MAP (native/pageserver/move.c)
"""

from __future__ import annotations

import struct

from snapshotdb.regs import FPREGS_SIZE, GPREGS_SIZE, MM_FIELDS

SPEC_MAGIC = b"TTDSPEC3"

# struct spec_head (native/pageserver/spec.h), packed: (name, struct format).
SPEC_HEAD_FIELDS = (
    ("magic", "8s"),
    ("tick", "Q"),
    ("nr_maps", "I"),
    ("auxv_size", "I"),
    ("nr_threads", "I"),
    ("db_path_size", "I"),
    ("mode", "I"),
    ("fault_around_pages", "I"),
    ("flags", "I"),
    ("mem_margin", "Q"),
    ("mm", f"{len(MM_FIELDS)}Q"),
)
COMM_LEN = 16  # a thread's name with its NUL (TASK_COMM_LEN)
# struct spec_thread (native/pageserver/spec.h), packed
SPEC_THREAD_FIELDS = (
    ("tid", "i"),
    ("xstate_size", "I"),
    ("name", f"{COMM_LEN}s"),
    ("gpregs", f"{GPREGS_SIZE}s"),
    ("fpregs", f"{FPREGS_SIZE}s"),
)
# struct stub_map (native/layout.h)
STUB_MAP_FIELDS = (("rec_start", "Q"), ("rec_end", "Q"), ("prot", "I"), ("register_uffd", "I"))

FLAGS = {"SPEC_SANDBOX": 1, "SPEC_TRACKER_DIFF": 2, "SPEC_TRACKER_WP_ASYNC": 4}
MODES = {"lazy": 0, "eager": 1, "workaround": 2}  # all but lazy: ttd-pageserver-bench only
REQUESTS = ("STATS", "WRITTEN", "CLEAR", "FILL", "TAKE_BLOCKED", "THREADS", "MOVE", "MOVED", "KILL")
LIMITS = {"max_maps": 8192, "max_auxv": 1024, "max_threads": 1024}

# what the `tracker` argument of rematerialize() asks for
TRACKER_FLAGS = {
    "auto": 0,
    "diff": FLAGS["SPEC_TRACKER_DIFF"],
    "wp-async": FLAGS["SPEC_TRACKER_WP_ASYNC"],
}


def _struct(fields) -> struct.Struct:
    return struct.Struct("<" + "".join(code for _, code in fields))


SPEC_HEAD = _struct(SPEC_HEAD_FIELDS)
SPEC_THREAD = _struct(SPEC_THREAD_FIELDS)
STUB_MAP = _struct(STUB_MAP_FIELDS)


def _layout(fields) -> dict:
    """{"size", "fields": [{"name", "offset", "size"}]} as ttd-pageserver --abi prints it."""
    out, offset = [], 0
    for name, code in fields:
        size = struct.calcsize("<" + code)
        out.append({"name": name, "offset": offset, "size": size})
        offset += size
    return {"size": offset, "fields": out}


def abi() -> dict:
    """This side of the contract, in the shape of `ttd-pageserver --abi`."""
    return {
        "spec_magic": SPEC_MAGIC.decode(),
        "spec_head": _layout(SPEC_HEAD_FIELDS),
        "spec_thread": _layout(SPEC_THREAD_FIELDS),
        "stub_map": _layout(STUB_MAP_FIELDS),
        "flags": dict(FLAGS),
        "modes": dict(MODES),
        "mm_fields": list(MM_FIELDS),
        "requests": list(REQUESTS),
        "limits": dict(LIMITS),
    }


def pack_head(**values) -> bytes:
    """struct spec_head from its fields by name (mm: a sequence in MM_FIELDS order);
    the magic is filled in."""
    values["magic"] = SPEC_MAGIC
    flat = []
    for name, _ in SPEC_HEAD_FIELDS:
        flat.extend(values[name] if name == "mm" else [values[name]])
    return SPEC_HEAD.pack(*flat)


def pack_thread(
    tid: int, name: str | None, gpregs: bytes, fpregs: bytes, xstate: bytes = b""
) -> bytes:
    """struct spec_thread and its XSAVE area; the name is cut to what the kernel keeps."""
    raw = (name or "").encode(errors="replace")[: COMM_LEN - 1]
    return SPEC_THREAD.pack(tid, len(xstate), raw, gpregs, fpregs) + xstate


def pack_map(rec_start: int, rec_end: int, prot: int, register_uffd: bool = True) -> bytes:
    return STUB_MAP.pack(rec_start, rec_end, prot, int(register_uffd))
