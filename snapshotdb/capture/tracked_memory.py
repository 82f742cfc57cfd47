"""The memory of a live process at a snapshot, as a change from the previous snapshot, found
with the kernel's write tracking (write_tracker.py) instead of reading everything.

Every mapping is one of three kinds (kind_of):

    tracked   private anonymous ([heap], [stack], anonymous, [anon:NAME], any perms):
              registered with the userfaultfd; at each snapshot only the pages written
              since the last one are read. Parts not registered yet (new since: mmap,
              brk growth, mremap's destination, munmap + mmap) are read whole, then
              registered; pages that became unpopulated (MADV_DONTNEED) read as zeros.
    rescan    shared, or a private file mapping that can be written: compared byte for
              byte at every snapshot (memory_scan.py), as a tracked mapping the kernel
              refuses to register (one another userfaultfd holds) is
    static    a private file mapping that cannot be written, or a kernel one ([vdso]):
              read when it is new, or its file changed on disk (inode, size, mtime)

and what went away since the last snapshot reads as zeros. delta() reads nothing but
what the kernel reported, what is new and the rescan mappings; big runs (everything at the
first snapshot, new mappings) are reads for the writer's bulk path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import chain

from .memory_scan import MemoryScan
from .proc import MemoryReader, is_anonymous, is_special
from .ranges import merged, subtract
from .write_tracker import WriteTracker
from .writer import MappingInfo, PageDelta

TRACKED, RESCAN, STATIC = "tracked", "rescan", "static"
BULK_MIN_BYTES = 1 << 20  # written pages read by the bulk path from this much on


def kind_of(m: MappingInfo) -> str:
    if m.perms[3] == "s":
        return RESCAN
    if is_anonymous(m):
        return TRACKED
    if "w" in m.perms and not is_special(m):
        return RESCAN
    return STATIC


class TrackedMemory:
    """Deltas of one process's memory between its snapshots. Each delta() is followed by
    commit() once the snapshot is written, or abort() when it was not."""

    def __init__(self, pid: int, tracker: WriteTracker):
        self.pid = pid
        self.tracker = tracker
        self.scan = MemoryScan()
        self.refused: set[tuple[int, int]] = set()  # anonymous ranges it cannot register
        self._mapped: list[tuple[int, int]] = []  # every mapping at the last snapshot
        self._static: dict[tuple[int, int], tuple] = {}  # identity of static mappings
        self._pending: tuple | None = None

    def delta(
        self,
        reader: MemoryReader,
        mappings: list[MappingInfo],
        *,
        full: bool,
        base_tick: int | None,
    ) -> PageDelta:
        """What changed since the last committed snapshot; full=True: a description of
        everything (the first snapshot, or after one that was not written). Either way
        the tracking is brought up to date: new parts registered, written pages
        write-protected again."""
        if full:
            self.abort()
        tracked = [m for m in mappings if kind_of(m) == TRACKED]
        rescan = [m for m in mappings if kind_of(m) == RESCAN]
        new = self._register_new(tracked)
        rescan += [m for m in tracked if (m.start, m.end) in self.refused]
        # Which pages are populated is read before the write-protecting scan: that scan
        # turns the empty entries of a page table into uffd-wp markers, which pagemap
        # shows as swapped out (populated) from then on.
        if full:
            reads = [r for m in mappings if m not in rescan for r in reader.mapping_runs(m)]
        else:
            reads = [r for start, end in new for r in reader.populated_runs(start, end)]
        written, unpopulated = self._scan_tracked(tracked, full)
        changed_static, static = self._static_changes(mappings)
        now = [(m.start, m.end) for m in mappings]
        self._pending = (now, static)
        kept: list[tuple[int, int]] = []
        if full:
            return PageDelta(
                self._rescan_chunks(reader, rescan, kept), None, kept, reads=reads, reader=reader
            )
        zero = (
            unpopulated
            + new
            + [(m.start, m.end) for m in changed_static + rescan]
            + subtract(merged(self._mapped), merged(now))
        )
        written = subtract(written, merged(new))
        reads += [r for m in changed_static for r in reader.mapping_runs(m)]
        if sum(end - start for start, end in written) >= BULK_MIN_BYTES:
            reads, written = reads + written, []
        chunks = chain(
            (c for start, end in written for c in reader.run_chunks(start, end)),
            self._rescan_chunks(reader, rescan, kept),
        )
        return PageDelta(chunks, zero, kept, base_tick, reads=sorted(reads), reader=reader)

    def _scan_tracked(self, tracked: list[MappingInfo], full: bool):
        """(pages written since the last scan, pages unpopulated) of the tracked mappings;
        the written ones are write-protected again. full: only that (a full description
        reads the populated pages from pagemap; a scan of 1 GiB costs some 8 ms)."""
        if not tracked:
            return [], []
        lo, hi = tracked[0].start, tracked[-1].end
        written = self.tracker.written(lo, hi)
        return written, [] if full else self.tracker.unpopulated(lo, hi)

    def _register_new(self, tracked: list[MappingInfo]) -> list[tuple[int, int]]:
        """Register the parts of tracked mappings not registered yet; return them all (those
        the kernel refuses included: they are read whole, as new ones are)."""
        new = []
        for m in tracked:
            for start, end in self.tracker.unregistered(m.start, m.end):
                new.append((start, end))
                if not self.tracker.register(start, end):
                    self.refused.add((m.start, m.end))
        return [r for r in new if not any(s <= r[0] < e for s, e in self.refused)]

    def _static_changes(self, mappings: list[MappingInfo]):
        """The static mappings that are new or whose file changed, and every static
        mapping's identity now."""
        static, changed = {}, []
        for m in mappings:
            if kind_of(m) != STATIC:
                continue
            key = (m.start, m.end)
            static[key] = (m.perms, m.offset, m.path, m.inode, self._file_state(m))
            if self._static.get(key) != static[key]:
                changed.append(m)
        return changed, static

    def _file_state(self, m: MappingInfo) -> tuple | None:
        if not m.inode:
            return None
        try:
            st = os.stat(f"/proc/{self.pid}/map_files/{m.start:x}-{m.end:x}")
        except OSError:
            return None
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def _rescan_chunks(
        self, reader: MemoryReader, rescan: list[MappingInfo], kept: list
    ) -> Iterator[tuple[int, bytes]]:
        """What changed in the rescan mappings since the scan last read them."""
        for m in rescan:
            yield from self.scan.changes(reader.mapping_chunks(m), kept)

    def commit(self) -> None:
        self._mapped, self._static = self._pending
        self.scan.commit()

    def abort(self) -> None:
        self.scan.abort()
        self._mapped, self._static = [], {}
