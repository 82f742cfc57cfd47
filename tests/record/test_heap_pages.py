"""A snapshot after the program wrote 10 pages of a 256 MiB heap stores exactly those
pages; the disk space allocated ahead of the first snapshot's writes is not kept past the
file's end."""

from __future__ import annotations

import os

from sqlalchemy import select

from snapshotdb.db import open_recording
from snapshotdb.models import PageVersion
from tests.record.memory import digest_table_problems
from tests.record.runs import record_checkpoints

PAGE = 4096
HEAP = 256 << 20


def test_ten_written_pages_of_a_256_mib_heap(build_target, tmp_path):
    done, db, _ = record_checkpoints(build_target, tmp_path, "tests/record/big_heap.c", timeout=300)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()  # heap 0x... pages N N N ...
    heap, written = int(words[1], 16), [int(w) for w in words[3:]]
    assert len(set(written)) == 10
    with open_recording(db) as recording, recording.session() as session:

        def versions(tick):
            return set(
                session.scalars(select(PageVersion.address).where(PageVersion.first_tick == tick))
            )

        first, second = versions(1), versions(2)
    in_heap = {a for a in second if heap <= a < heap + HEAP}
    assert in_heap == {heap + p * PAGE for p in written}
    assert len(second - in_heap) <= 8  # the stack and libc's pages the call touched
    assert len({a for a in first if heap <= a < heap + HEAP}) == HEAP // PAGE
    assert digest_table_problems(db) == []
    # native/capture/file_space.c allocated 16 MiB at a time past the end during the
    # first snapshot: what the file holds on disk is its size, rounded to a block
    st = os.stat(db)
    assert st.st_blocks * 512 < st.st_size + 65536, (st.st_size, st.st_blocks * 512)
