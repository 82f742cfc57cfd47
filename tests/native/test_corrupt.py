"""A corrupt page in the recording (issue 8 item 4): named at once, never a hang.

Whoever waits on the page gets an error at once (the process, a reader through
process_vm_readv, gdbserver's reads through libttdmem.so), the process is killed,
and every request after that raises the same one-line error:
"page 0x... at tick T is corrupt (why)". The time bounds only catch hangs."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import signal
import sqlite3
import time

import pytest

from gdb_plugin.remat import RematerializeError, rematerialize
from snapshotdb.pages import PAGE_SIZE, encode
from tests.native.helpers import alive, read_mem_in_child, region_of, wait_for
from tests.native.recording_fixture import process_vm_readv

pytestmark = pytest.mark.timeout(120)

HANG_S = 20  # "within a second", with room for a busy machine: only a hang exceeds it
MISMATCH = "its sha256 does not match the recorded digest"


def _flip_a_byte(conn, content_id):
    (data,) = conn.execute("SELECT data FROM page_content WHERE id = ?", (content_id,)).fetchone()
    data = bytearray(data)
    data[len(data) // 2] ^= 0x01
    conn.execute("UPDATE page_content SET data = ? WHERE id = ?", (bytes(data), content_id))


def _sql(statement, *args):
    return lambda conn, content_id: conn.execute(statement, (*args, content_id))


# kind -> (how the stored page is damaged, why the message gives)
CORRUPTIONS = {
    "flipped-byte": (_flip_a_byte, rf"{MISMATCH}|zstd blob of \d+ bytes: .+"),
    "wrong-digest": (
        _sql(
            "UPDATE page_content SET digest = ? WHERE id = ?",
            hashlib.sha256(b"another page").digest(),
        ),
        MISMATCH,
    ),
    "bad-codec": (
        _sql("UPDATE page_content SET codec = 'lz4' WHERE id = ?"),
        "unknown codec 'lz4'",
    ),
    "short-blob": (
        _sql("UPDATE page_content SET codec = 'raw', data = zeroblob(100) WHERE id = ?"),
        "raw blob of 100 bytes",
    ),
    "short-digest": (
        _sql("UPDATE page_content SET digest = zeroblob(12) WHERE id = ?"),
        "a digest of 12 bytes",
    ),
    "other-bytes": (
        lambda conn, content_id: conn.execute(
            "UPDATE page_content SET codec = ?, data = ? WHERE id = ?",
            (*encode(b"\x66" * PAGE_SIZE)[1:], content_id),
        ),
        MISMATCH,
    ),
}


def corrupt_copy(recording, tmp_path, rec_addr: int, kind: str):
    """A copy of the recording with the page at rec_addr (tick 1) damaged."""
    db = tmp_path / f"corrupt-{kind}.db"
    shutil.copy(recording.db_path, db)
    with sqlite3.connect(db) as conn:
        (content_id,) = conn.execute(
            "SELECT content_id FROM page_version WHERE address = ? AND first_tick <= 1 "
            "ORDER BY first_tick DESC LIMIT 1",
            (rec_addr,),
        ).fetchone()
        CORRUPTIONS[kind][0](conn, content_id)
    conn.close()
    return db


def expected(rec_addr: int, kind: str) -> str:
    return rf"page {rec_addr:#x} at tick 1 is corrupt \(({CORRUPTIONS[kind][1]})\)"


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_page_is_named_at_once_and_nothing_waits(recording, tmp_path, kind):
    bad = region_of(recording) + 4 * PAGE_SIZE
    db = corrupt_copy(recording, tmp_path, bad, kind)
    with rematerialize(db, 1) as proc:
        pid, server_pid = proc.pid, proc.server_pid
        assert process_vm_readv(pid, region_of(recording) + 100 * PAGE_SIZE, 8)  # others serve
        t0 = time.monotonic()
        with pytest.raises(OSError) as read:
            process_vm_readv(pid, bad, 8)  # never served: an error, not zeros, not a wait
        assert read.value.errno == errno.EFAULT and time.monotonic() - t0 < HANG_S
        for request in (proc.stats, proc.written_pages, proc.clear_written):
            with pytest.raises(RematerializeError) as exc:
                request()
            assert re.fullmatch(expected(bad, kind), str(exc.value)), str(exc.value)
        wait_for(lambda: not alive(pid), "the process's end", timeout=HANG_S)
    assert not alive(pid) and not alive(server_pid)


def test_a_corrupt_neighbour_in_the_fault_around_window_is_caught_too(recording, tmp_path):
    region = region_of(recording)
    db = corrupt_copy(recording, tmp_path, region + 6 * PAGE_SIZE, "other-bytes")
    with rematerialize(db, 1, fault_around_pages=16) as proc:
        process_vm_readv(proc.pid, region, 8)  # one page
        with pytest.raises(OSError):
            process_vm_readv(proc.pid, region + PAGE_SIZE, 8)  # sequential: its window has page 6
        with pytest.raises(
            RematerializeError, match=expected(region + 6 * PAGE_SIZE, "other-bytes")
        ):
            proc.stats()


def test_gdbservers_read_of_a_corrupt_page_fails_at_once(recording, tmp_path):
    """gdbserver reads through libttdmem.so (process_vm_readv, then /proc/PID/mem):
    the first touch of the corrupt page is its read, which gets EIO at once."""
    bad = region_of(recording) + 4 * PAGE_SIZE
    db = corrupt_copy(recording, tmp_path, bad, "wrong-digest")
    with rematerialize(db, 1) as proc:
        t0 = time.monotonic()
        assert read_mem_in_child(proc.pid, bad, proc.mem_preload) == f"errno {errno.EIO}"
        assert time.monotonic() - t0 < HANG_S
        with pytest.raises(RematerializeError, match=expected(bad, "wrong-digest")):
            proc.written_pages()


def test_a_corrupt_page_met_by_the_process_itself(recording, tmp_path):
    """The process runs on from tick 1 and writes to the corrupt page (remat_target
    clears region[2 * 4096]): it never runs on other bytes; it is killed, and the page
    server's last word is the error."""
    bad = region_of(recording) + 2 * PAGE_SIZE
    db = corrupt_copy(recording, tmp_path, bad, "bad-codec")
    with rematerialize(db, 1) as proc:
        os.kill(proc.pid, signal.SIGCONT)
        with pytest.raises(RematerializeError, match=expected(bad, "bad-codec")):
            proc.wait_exit(timeout=HANG_S)
        wait_for(lambda: not alive(proc.pid), "the process's end", timeout=HANG_S)
        assert b"global=" not in proc.drain_output()[0]  # it never got past the page
