"""ttd_store_pages reads a live process's memory through /proc/PID/mem's descriptor: with
process_vm_readv where it can, with the descriptor's pread where it cannot (pages without
read permission). Either way every page is stored with its bytes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from array import array

import pytest
from sqlalchemy import text

from snapshotdb.capture import bulk_store
from snapshotdb.db import open_engine
from snapshotdb.pages import PAGE_SIZE, decode
from tests.conftest import require

PAGES = 300  # more than one batch of 256

# A process holding two regions of PAGES pages (page i: bytes of i, then of region), the
# second made PROT_NONE once written; it prints their addresses and waits for its stdin.
CHILD = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
addrs, maps = [], []  # the maps kept: a dropped one is unmapped
for region in range(2):
    m = mmap.mmap(-1, PAGES * 4096)
    maps.append(m)
    for i in range(PAGES):
        m[i * 4096 : (i + 1) * 4096] = bytes([i % 251, region + 1]) * 2048
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    if region == 1 and libc.mprotect(addr, PAGES * 4096, 0) != 0:
        sys.exit("mprotect failed")
    addrs.append(addr)
print(*addrs, flush=True)
sys.stdin.read()
""".replace("PAGES", str(PAGES))


def expected(region: int) -> list[bytes]:
    return [bytes([i % 251, region + 1]) * (PAGE_SIZE // 2) for i in range(PAGES)]


@pytest.fixture
def child():
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        addrs = [int(a) for a in proc.stdout.readline().split()]
        assert len(addrs) == 2, "the child did not start"
        yield proc.pid, addrs
    finally:
        proc.kill()
        proc.wait()


def test_readable_and_unreadable_pages_are_stored(child, tmp_path):
    require(bulk_store.LIBRARY.exists(), "make -C native/capture")
    pid, addrs = child
    runs = [(a, a + PAGES * PAGE_SIZE) for a in addrs]
    engine = open_engine(tmp_path / "rec.db", create=True)
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        with engine.connect() as conn, conn.begin():
            assert bulk_store.usable(conn)
            ids, contents, versions = bulk_store.store(
                conn, fd, runs, array("q", [0] * 2 * PAGES), 1
            )
            rows = {
                cid: decode(codec, data, bytes(digest))
                for cid, codec, data, digest in conn.execute(
                    text("SELECT id, codec, data, digest FROM page_content")
                )
            }
    finally:
        os.close(fd)
        engine.dispose()
    want = expected(0) + expected(1)
    assert [rows[cid] for cid in ids] == want
    assert contents == len({hashlib.sha256(p).digest() for p in want})
    assert versions == 2 * PAGES
