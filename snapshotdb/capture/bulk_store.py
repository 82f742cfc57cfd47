"""The bulk path: whole runs of a stopped process's memory stored by native code, inside the
snapshot's transaction.

native/capture/libttdcapture.so is an SQLite extension (its header comment is the
contract): loaded into the writer's own connection, `SELECT ttd_store_pages(MEM_FD, RUNS,
PREV, TICK)` reads the runs from /proc/PID/mem, hashes and compresses their pages on worker
threads, and inserts their new contents, their versions and the contents' digests
(page_digest), at the speed of memory.

It serves SQLite files only; for a server database, or when the library is not built
(`make -C native/capture`), the writer reads the same runs in Python (same pages and
versions, slower; the stored form of a content may differ: zstd level 1, and no attempt
on a page whose first 256 bytes look random, here; level 3 on every page there).
TTD_NO_NATIVE_CAPTURE=1 makes it read them in Python (the tests compare both).
"""

from __future__ import annotations

import os
import struct
from array import array
from pathlib import Path

from ..pages import PAGE_SIZE

LIBRARY = Path(__file__).resolve().parents[2] / "native" / "capture" / "libttdcapture.so"
_LOADED = "ttd_store_pages"  # key in the pooled connection's info: the extension is loaded


def usable(conn) -> bool:
    """Can this connection (SQLAlchemy, in a transaction) run ttd_store_pages? Loads the
    extension into it the first time."""
    if (
        conn.dialect.name != "sqlite"
        or not LIBRARY.exists()
        or os.environ.get("TTD_NO_NATIVE_CAPTURE") == "1"
    ):
        return False
    pooled = conn.connection
    if not pooled.info.get(_LOADED):
        dbapi = pooled.dbapi_connection
        dbapi.enable_load_extension(True)
        try:
            # SQLite finds the entry point by the file's name: sqlite3_ttdcapture_init
            dbapi.load_extension(str(LIBRARY))
        finally:
            dbapi.enable_load_extension(False)
        pooled.info[_LOADED] = True
    return True


def store(
    conn, mem_fd: int, runs: list[tuple[int, int]], prev: array, tick: int
) -> tuple[array, int, int]:
    """Store the pages of `runs` (`prev`: their content ids at the previous tick) at `tick`:
    (their content ids now, contents inserted, versions written). SQL errors are raised as
    the connection raises them (a full disk: "database or disk is full")."""
    runs_blob = b"".join(struct.pack("<QQ", start, end) for start, end in runs)
    if not runs:
        return array("q"), 0, 0
    out = conn.exec_driver_sql(
        "SELECT ttd_store_pages(?, ?, ?, ?)", (mem_fd, runs_blob, prev.tobytes(), tick)
    ).scalar()
    ids = array("q")
    ids.frombytes(out)
    contents, versions = ids[0], ids[1]
    del ids[:2]
    if len(ids) * PAGE_SIZE != sum(end - start for start, end in runs):
        raise AssertionError("ttd_store_pages returned the wrong number of ids")
    return ids, contents, versions
