"""The page map a writer keeps: which stored content every page has at its latest tick.

    rec_addr >> 21 ──> block: array of 512 content ids (one per 4 KiB page), 0 = zero page

8 bytes a page in 2 MiB blocks, only where pages ever had content: 2 MiB of ids for a
1 GiB process (a dict of ints took 30 MiB). Lookups and updates are O(1); the pages with
content inside a range are found block by block, so a range never populated costs nothing.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator

PAGE_SHIFT = 12
BLOCK_SHIFT = 21
BLOCK_PAGES = 1 << (BLOCK_SHIFT - PAGE_SHIFT)
_EMPTY = array("q", bytes(8 * BLOCK_PAGES))


class PageMap:
    def __init__(self, items: Iterable[tuple[int, int]] = ()):
        self._blocks: dict[int, array] = {}
        for rec_addr, content_id in items:
            self.set(rec_addr, content_id)

    def get(self, rec_addr: int) -> int:
        """The content id of the page at rec_addr; 0 when it reads as zeros."""
        block = self._blocks.get(rec_addr >> BLOCK_SHIFT)
        return 0 if block is None else block[(rec_addr >> PAGE_SHIFT) & (BLOCK_PAGES - 1)]

    def set(self, rec_addr: int, content_id: int) -> None:
        key = rec_addr >> BLOCK_SHIFT
        block = self._blocks.get(key)
        if block is None:
            if not content_id:
                return
            block = self._blocks[key] = array("q", _EMPTY)
        block[(rec_addr >> PAGE_SHIFT) & (BLOCK_PAGES - 1)] = content_id

    def ids(self, start: int, end: int) -> array:
        """The content ids of the pages of [start, end) (page-aligned), in order."""
        out = array("q")
        for base, lo, hi in _pieces(start, end):
            block = self._blocks.get(base >> BLOCK_SHIFT)
            out.extend(block[lo:hi] if block is not None else _EMPTY[: hi - lo])
        return out

    def assign(self, start: int, ids: array) -> None:
        """Set the content ids of consecutive pages from `start` on."""
        end = start + (len(ids) << PAGE_SHIFT)
        done = 0
        for base, lo, hi in _pieces(start, end):
            key = base >> BLOCK_SHIFT
            part = ids[done : done + hi - lo]
            done += hi - lo
            block = self._blocks.get(key)
            if block is None:
                if part.count(0) == len(part):
                    continue
                block = self._blocks[key] = array("q", _EMPTY)
            block[lo:hi] = part

    def with_content(self, start: int, end: int) -> Iterator[int]:
        """Addresses in [start, end) of pages that have content, in order."""
        keys = sorted(
            k for k in self._blocks if start >> BLOCK_SHIFT <= k <= (end - 1) >> BLOCK_SHIFT
        )
        for key in keys:
            block = self._blocks[key]
            base = key << BLOCK_SHIFT
            lo = max(start, base)
            hi = min(end, base + (1 << BLOCK_SHIFT))
            first = (lo - base) >> PAGE_SHIFT
            for i in range(first, (hi - base) >> PAGE_SHIFT):
                if block[i]:
                    yield base + (i << PAGE_SHIFT)

    def items(self) -> Iterator[tuple[int, int]]:
        """(rec_addr, content id) of every page with content, in address order."""
        for key in sorted(self._blocks):
            base = key << BLOCK_SHIFT
            for i, content_id in enumerate(self._blocks[key]):
                if content_id:
                    yield base + (i << PAGE_SHIFT), content_id

    def __len__(self) -> int:
        return sum(BLOCK_PAGES - block.count(0) for block in self._blocks.values())


def _pieces(start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(block base address, first page index, end page index) of each block [start, end)
    touches."""
    base = start >> BLOCK_SHIFT << BLOCK_SHIFT
    while base < end:
        lo = max(start - base, 0) >> PAGE_SHIFT
        hi = (min(end, base + (1 << BLOCK_SHIFT)) - base) >> PAGE_SHIFT
        yield base, lo, hi
        base += 1 << BLOCK_SHIFT
