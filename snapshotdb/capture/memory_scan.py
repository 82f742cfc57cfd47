"""Finding changed pages by reading everything and comparing (today's way, and the way for
memory the kernel cannot track: shared mappings, private file mappings that can be
written).

MemoryScan keeps the bytes of every chunk it compared last time (as much memory as it
scans) and passes on only what differs:

    chunk equal to last time     -> not passed; its range is `kept` (unchanged)
    chunk of the same size       -> only the pages that differ; the others are `kept`
    chunk new                    -> passed whole

The bytes of this snapshot replace last snapshot's on commit(); abort() (the snapshot was
not written) forgets everything, so that the next comparison starts afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..pages import PAGE_SIZE


class MemoryScan:
    def __init__(self):
        self._bytes: dict[int, bytes] = {}  # chunk start -> its bytes at the last snapshot
        self._next: dict[int, bytes] = {}
        self._count()

    def _count(self) -> None:
        """Counters of the snapshot being taken (reset when it is committed or not)."""
        self.chunks_skipped = 0  # equal to last time
        self.bytes_compared = 0  # read and compared
        self.bytes_passed = 0  # ... and passed on as changed

    def changes(
        self, chunks: Iterable[tuple[int, bytes]], kept: list[tuple[int, int]]
    ) -> Iterator[tuple[int, bytes]]:
        """The parts of `chunks` that differ from last time; appends to `kept` the ranges
        that do not, as it goes (complete once the iterator is exhausted)."""
        for rec_addr, data in chunks:
            self.bytes_compared += len(data)
            self._next[rec_addr] = data
            prev = self._bytes.get(rec_addr)
            if prev == data:
                self._next[rec_addr] = prev
                kept.append((rec_addr, rec_addr + len(data)))
                self.chunks_skipped += 1
            elif prev is not None and len(prev) == len(data):
                for piece in _changed_pages(rec_addr, prev, data, kept):
                    self.bytes_passed += len(piece[1])
                    yield piece
            else:
                self.bytes_passed += len(data)
                yield rec_addr, data

    def commit(self) -> None:
        self._bytes, self._next = self._next, {}
        self._count()

    def abort(self) -> None:
        self._bytes, self._next = {}, {}
        self._count()


def _changed_pages(
    rec_addr: int, prev: bytes, data: bytes, kept: list[tuple[int, int]]
) -> Iterator[tuple[int, bytes]]:
    """Runs of pages of `data` that differ from `prev`; the others go to `kept`."""
    view, old = memoryview(data), memoryview(prev)
    run_start = None
    for off in range(0, len(data) + PAGE_SIZE, PAGE_SIZE):
        differs = off < len(data) and view[off : off + PAGE_SIZE] != old[off : off + PAGE_SIZE]
        if differs and run_start is None:
            run_start = off
        elif not differs and run_start is not None:
            yield rec_addr + run_start, data[run_start:off]
            run_start = None
        if not differs and off < len(data):
            kept.append((rec_addr + off, rec_addr + off + PAGE_SIZE))
