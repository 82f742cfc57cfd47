"""The recording open in this GDB session, shared by every ttd command.

`ttd open DB` sets it, `ttd close` clears it; other command modules call
`current_recording()`. Queries use the read-only engine; only `ttd snapshot`
asks for the writer, which opens the database read-write on first use.
Importable without GDB (the error is then a RecordingError).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from snapshotdb.db import open_engine
from snapshotdb.errors import RecordingError, RecordingNotFound

NO_RECORDING = 'No recording is open. Use "ttd open DB".'


class NoRecordingOpen(RecordingError):
    pass


@dataclass
class OpenRecording:
    path: str
    engine: Engine  # read-only
    _rw_engine: Engine | None = None
    _writers: dict = field(default_factory=dict)  # pid -> SnapshotWriter

    def writer(self, pid: int):
        """The snapshot writer for live process `pid` (one per process, kept for speed)."""
        from snapshotdb.capture import writer_for_pid
        if self._rw_engine is None:
            self._rw_engine = open_engine(self.path, readonly=False)
        if pid not in self._writers:
            self._writers.clear()  # a new process: drop the old one's page cache
            self._writers[pid] = writer_for_pid(self._rw_engine, pid)
        return self._writers[pid]

    def dispose(self) -> None:
        self._writers.clear()
        self.engine.dispose()
        if self._rw_engine is not None:
            self._rw_engine.dispose()


_current: OpenRecording | None = None


def open_recording(path: str, create: bool = False) -> tuple[OpenRecording, bool]:
    """Open the recording at `path` (with `create`, make it when missing); return it
    and whether it is new. A missing file without `create` is an error: calls on a
    mistyped name must not quietly open an empty recording."""
    global _current
    is_url = "://" in path
    path = path if is_url else os.path.abspath(os.path.expanduser(path))
    created = create and not is_url and not os.path.exists(path)
    if not create and not is_url and not os.path.exists(path):
        raise RecordingNotFound(f"No recording at '{path}': file not found. "
                                'Use "ttd open --create DB" to start a new one.')
    if created or (create and is_url):  # a URL's database gets its tables when it has none
        open_engine(path, create=True).dispose()
    recording = OpenRecording(path, open_engine(path, readonly=True))
    close_recording()
    _current = recording
    return recording, created


def close_recording() -> bool:
    """Close the open recording; return False when none was open."""
    global _current
    if _current is None:
        return False
    _current.dispose()
    _current = None
    return True


def current_recording() -> OpenRecording:
    """The open recording; raises gdb.GdbError (inside GDB) when there is none."""
    if _current is not None:
        return _current
    try:
        import gdb
    except ImportError:
        raise NoRecordingOpen(NO_RECORDING) from None
    raise gdb.GdbError(NO_RECORDING)
