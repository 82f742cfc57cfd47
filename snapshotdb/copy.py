"""Copying a recording between stores: a SQLite file and a PostgreSQL database, either way
(and file to file, database to database).

    source (read-only)                         destination
    ──────────────────                         ───────────
    page_content, file_content rows    ──▶     looked up by digest: what is there already
      that the recording uses                  (another recording's pages, an earlier try
                                               of this copy) is shared, not sent again;
                                               the rest inserted in batches, each its own
                                               transaction (progress, resume); on a
                                               server two batches at once, on two
                                               connections (copy_dest.STREAMS)
    recording, snapshot, thread,       ──▶     one last transaction: every other row, the
      mapping, page_version,                   content ids mapped to the destination's,
      recorded_file                            and the state "complete"

Until that last transaction commits, the destination is marked incomplete (a server's
list says "copying"; a file's meta holds copy_state), and nothing opens it as a
recording. Running the same copy again resumes: the contents already sent are found by
digest, the rest is sent, the last transaction is made afresh. A destination that is a
complete recording, or an incomplete copy of something else, is refused.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, inspect, select

from .copy_dest import Destination, open_destination
from .db import Recording, open_recording
from .errors import RecordingError
from .models import FileContent, Mapping, PageContent, PageVersion, RecordedFile, Snapshot, Thread
from .models import Recording as RecordingRow

BATCH_BYTES = 8 << 20  # stored bytes per batch of contents: one transaction each
# Testing knobs: contents per batch (many batches from a small recording), and a copy
# that kills itself (SIGKILL) once that many batches are committed, as a crash would.
BATCH_ROWS = int(os.environ.get("TTD_COPY_BATCH_ROWS", "4096"))
KILL_AFTER = int(os.environ.get("TTD_COPY_KILL_AFTER_BATCHES", "0"))
SMALL_TABLES = (RecordingRow, Snapshot, Thread, Mapping)  # copied as they are, ids kept
CONTENT_TABLES = (PageContent, FileContent)


@dataclass
class Progress:
    """Where a copy is: stored bytes of the contents it sends (done of total)."""

    done_bytes: int = 0
    total_bytes: int = 0
    done_rows: int = 0
    total_rows: int = 0


@dataclass
class CopyResult:
    source: str
    destination: str
    snapshots: int
    pages: int  # distinct page contents the recording uses
    pages_sent: int  # of those, sent now (the others were there)
    files: int
    bytes_sent: int  # stored bytes of the contents sent
    resumed: bool
    seconds: float


class CopyFailed(RecordingError):
    pass


def copy_recording(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    progress: Callable[[Progress], None] | None = None,
) -> CopyResult:
    """Copy the recording `src` to `dst` (a new file or a new recording name, or an
    unfinished copy of the same source: resumed). Raises RecordingError (one line)."""
    t0 = time.perf_counter()
    with open_recording(src) as source:
        token = _identity(source)
        dest = open_destination(dst, token)
        try:
            if dest.location.display == source.name:
                raise CopyFailed(f"'{source.name}' is the source and the destination.")
            result = _copy(source, dest, progress or (lambda _p: None))
        finally:
            dest.close()
    result.seconds = time.perf_counter() - t0
    return result


def _identity(source: Recording) -> str:
    """What names the source for a resume: where it is, when it was made, its ticks."""
    with source.session() as session:
        created = session.scalar(select(RecordingRow.created).order_by(RecordingRow.id))
        lo, hi = session.execute(select(func.min(Snapshot.tick), func.max(Snapshot.tick))).one()
    return f"{source.name} (made {created}, ticks {lo}-{hi})"


def _copy(source: Recording, dest: Destination, progress) -> CopyResult:
    tables = set(inspect(source.engine).get_table_names())
    has_files = "recorded_file" in tables and "file_content" in tables
    users = {PageContent: PageVersion, FileContent: RecordedFile}
    maps, sent, sent_bytes, total = {}, 0, 0, 0
    plans = []
    for table in CONTENT_TABLES:
        if table is FileContent and not has_files:
            maps[table] = {}
            continue
        refs = _referenced(source, table, users[table])
        there = dest.lookup(table.__tablename__, [digest for _, digest, _ in refs])
        maps[table] = {src_id: there[digest] for src_id, digest, _ in refs if digest in there}
        missing = [(src_id, size) for src_id, digest, size in refs if digest not in there]
        plans.append((table, missing))
        total += sum(size for _, size in missing)
    state = Progress(total_bytes=total, total_rows=sum(len(m) for _, m in plans))
    progress(state)
    jobs = [(table, batch) for table, missing in plans for batch in _batches(missing)]
    for table, src_ids, new_ids, size in _sent(source, dest, jobs):
        maps[table].update(zip(src_ids, new_ids, strict=True))
        state.done_rows += len(src_ids)
        state.done_bytes += size
        sent += len(src_ids) if table is PageContent else 0
        sent_bytes += size
        progress(state)
    snapshots = _finish(source, dest, maps, has_files)
    return CopyResult(
        source.name,
        dest.location.display,
        snapshots,
        len(maps[PageContent]),
        sent,
        len(maps[FileContent]),
        sent_bytes,
        dest.resumed,
        0.0,
    )


def _referenced(source: Recording, table, user) -> list[tuple[int, bytes, int]]:
    """(id, digest, stored bytes) of every content of `table` the recording uses."""
    used = select(user.content_id).where(user.content_id.is_not(None)).distinct()
    with source.engine.connect() as conn:
        rows = conn.execute(
            select(table.id, table.digest, func.length(table.data))
            .where(table.id.in_(used))
            .order_by(table.id)
        )
        return [(i, bytes(d), n) for i, d, n in rows]


def _batches(missing: list[tuple[int, int]]) -> Iterable[list[tuple[int, int]]]:
    """The missing contents in batches of at most BATCH_ROWS rows and about BATCH_BYTES."""
    batch, size = [], 0
    for item in missing:
        batch.append(item)
        size += item[1]
        if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _sent(source: Recording, dest: Destination, jobs: list) -> Iterator[tuple]:
    """Send the batches `jobs` ((table, [(id, size)])) on dest.streams connections at once,
    each batch read, sent and committed by one of them while the others do the same (the
    server's work of one overlaps the next one's reading and sending). Yields (table,
    source ids, destination ids, stored bytes) per batch, in order."""
    batches = 0
    with ThreadPoolExecutor(max_workers=dest.streams, thread_name_prefix="ttd-copy") as pool:
        pending: deque[Future] = deque()
        try:
            for job in jobs:
                pending.append(pool.submit(_send, source, dest, *job))
                while len(pending) > dest.streams:  # one queued per stream, not more
                    yield pending.popleft().result()
                    batches += 1
                    _maybe_killed(batches)
            while pending:
                yield pending.popleft().result()
                batches += 1
                _maybe_killed(batches)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _send(source: Recording, dest: Destination, table, batch: list[tuple[int, int]]) -> tuple:
    """One batch of contents read from the source and committed at the destination."""
    rows = _content_rows(source, table, [src_id for src_id, _ in batch])
    new_ids = dest.insert_contents(table.__tablename__, [r[1:] for r in rows])
    return table, [r[0] for r in rows], new_ids, sum(size for _, size in batch)


def _maybe_killed(batches: int) -> None:
    """The testing knob: a crash once KILL_AFTER batches are committed."""
    if KILL_AFTER and batches >= KILL_AFTER:
        os.kill(os.getpid(), signal.SIGKILL)


def _content_rows(source: Recording, table, ids: list[int]) -> list[tuple]:
    """(id, digest, codec, data[, size]) of the contents `ids`, in that order."""
    columns = [table.id, table.digest, table.codec, table.data]
    if table is FileContent:
        columns.append(table.size)
    found = {}
    with source.engine.connect() as conn:
        for i in range(0, len(ids), 500):
            for row in conn.execute(select(*columns).where(table.id.in_(ids[i : i + 500]))):
                found[row[0]] = tuple(row)
    return [found[i] for i in ids]


def _finish(source: Recording, dest: Destination, maps: dict, has_files: bool) -> int:
    """Every other row, content ids mapped, and the state complete: one transaction.
    Returns the number of snapshots."""
    pages, files = maps[PageContent], maps[FileContent]
    with source.engine.connect() as src, dest.begin_final() as conn:
        for table in (RecordedFile, PageVersion, *reversed(SMALL_TABLES)):
            conn.execute(delete(table))  # an interrupted earlier try left nothing; be sure
        snapshots = 0
        for model in SMALL_TABLES:
            rows = [dict(r._mapping) for r in src.execute(select(model.__table__))]
            if rows:
                conn.execute(insert(model.__table__), rows)
            snapshots += len(rows) if model is Snapshot else 0
        versions = src.execute(
            select(PageVersion.address, PageVersion.first_tick, PageVersion.content_id)
        )
        dest.insert_versions(
            conn, ((a, t, None if c is None else pages[c]) for a, t, c in versions)
        )
        if has_files:
            rows = [
                {"path": p, "build_id": b, "role": r, "content_id": files[c]}
                for p, b, r, c in src.execute(
                    select(
                        RecordedFile.path,
                        RecordedFile.build_id,
                        RecordedFile.role,
                        RecordedFile.content_id,
                    )
                )
            ]
            if rows:
                conn.execute(insert(RecordedFile.__table__), rows)
        dest.mark_complete(conn)
    return snapshots
