"""The bulk path: whole runs of a stopped process's memory stored by native code.

native/capture/libttdcapture.so (ttdcap_store, its header comment is the contract) reads
the runs from /proc/PID/mem, hashes and compresses their pages on worker threads and inserts
the page contents not stored yet, on its own connection, at the speed of memory; it returns
the content id of every page (0: zeros or unreadable). The writer then writes the versions
in the snapshot's transaction, as for any page.

It serves SQLite files only; for a server database, or when the library is not built
(`make -C native/capture`), the writer reads the same runs in Python (same result, slower).
"""
from __future__ import annotations

import ctypes
from array import array
from pathlib import Path

from ..errors import CaptureError
from ..pages import PAGE_SIZE

LIBRARY = Path(__file__).resolve().parents[2] / "native" / "capture" / "libttdcapture.so"


class _Run(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64)]


class _Result(ctypes.Structure):
    _fields_ = [("pages_read", ctypes.c_uint64), ("contents_inserted", ctypes.c_uint64),
                ("disk_full", ctypes.c_int32), ("error", ctypes.c_char * 256)]


_lib = None


def _library():
    """The loaded library, or None when it is not built."""
    global _lib
    if _lib is None and LIBRARY.exists():
        lib = ctypes.CDLL(str(LIBRARY))
        lib.ttdcap_store.restype = ctypes.c_int
        lib.ttdcap_store.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_Run),
                                     ctypes.c_uint64, ctypes.POINTER(ctypes.c_int64),
                                     ctypes.POINTER(_Result)]
        _lib = lib
    return _lib


def available() -> bool:
    return _library() is not None


class BulkFailed(CaptureError):
    def __init__(self, message: str, disk_full: bool):
        super().__init__(message)
        self.disk_full = disk_full


def store(db_path: str, mem_fd: int, runs: list[tuple[int, int]]) -> tuple[array, int]:
    """(content id of every page of `runs` in order, contents inserted). The caller holds no
    write transaction on the database. BulkFailed when it cannot."""
    lib = _library()
    npages = sum((end - start) // PAGE_SIZE for start, end in runs)
    ids = array("q", bytes(8 * npages))
    if not npages:
        return ids, 0
    c_runs = (_Run * len(runs))(*[_Run(start, end) for start, end in runs])
    result = _Result()
    address, _ = ids.buffer_info()
    if lib.ttdcap_store(db_path.encode(), mem_fd, c_runs, len(runs),
                        ctypes.cast(address, ctypes.POINTER(ctypes.c_int64)),
                        ctypes.byref(result)) != 0:
        raise BulkFailed(result.error.decode(errors="replace"), bool(result.disk_full))
    return ids, result.contents_inserted
