"""The ELF files of a recorded process, kept in its recording (snapshotdb/recorded_files.py):
the executable, every library it maps, and their separate debug files where this machine
has them (/usr/lib/debug/.build-id/xx/yyyy.debug, e.g. libc6-dbg's). GDB reads symbols
from those when the caller's machine lacks the files or has other ones (a program
rebuilt after it was recorded): gdb_plugin/files.py.

    keeper = FileKeeper(engine)                   one per recorder
    notes = keeper.keep(mappings, opener)         after each snapshot: the files of
                                                  mappings not looked at yet
    keeper.start(mappings, opener)                the same in two steps: the files read,
    ... the snapshot ...                          hashed and compressed on a thread of
    notes = keeper.finish()                       their own while the snapshot is written
                                                  (a first snapshot of python3 spent two
                                                  thirds of its time on its files), then
                                                  stored

opener(mapping) names the file to read for a mapping, or None: for a live process
/proc/PID/map_files/START-END, the very file it maps even when its path now holds
another (live_opener; without the capability to open those, the path when it is still
the mapped inode); for a core, the local file when its build-id is the one the core's
memory holds (the core importer's). Files that are not ELF (locale archives, fonts)
are skipped; a file is kept once per (path, build-id) and its bytes once per database.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from .. import recorded_files
from ..elf import build_id
from ..models import RecordedFile, Recording
from .writer import MappingInfo

ELF_MAGIC = b"\x7fELF"
DEBUG_BY_BUILD_ID = "/usr/lib/debug/.build-id"
# Packed file bytes the reading thread holds at most before it leaves the rest to finish()
AHEAD_BYTES = 64 << 20

Opener = Callable[[MappingInfo], "str | None"]


@dataclass
class _Read:
    """A mapping's file as the recording names it, with its separate debug file: packed,
    or None where the recording has it already (nothing was read then)."""

    path: str
    role: str  # 'exe' | 'library'
    build_id: str | None
    content: recorded_files.Packed | None
    debug: tuple[str, recorded_files.Packed | None] | None


@dataclass
class _Reading:
    """The files of one start(): what the thread read (in order), and where it stopped."""

    todo: list[MappingInfo]
    opener: Opener
    exe: str | None  # the recording's executable path: the executable is kept under it
    mapped_as: str | None  # the path the executable is mapped at
    kept: set[tuple[str, str | None, str]]  # (path, build_id, role) recorded already
    done: list[_Read | None] = field(default_factory=list)  # None: nothing to keep
    notes: list[str] = field(default_factory=list)
    error: BaseException | None = None
    stop: bool = False
    thread: threading.Thread | None = None

    def name(self, m: MappingInfo) -> tuple[str, str]:
        """(path, role) the recording keeps the file of mapping m under."""
        if self.exe is not None and m.path == self.mapped_as:
            return self.exe, "exe"
        return m.path, "library"


class FileKeeper:
    """Keeps the files of one recording's mappings, each looked at once per recorder."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.seen: set[tuple[str, int]] = set()  # (path, inode) looked at
        self._exe_path: str | None = None
        self._reading: _Reading | None = None

    def keep(
        self, mappings: list[MappingInfo], opener: Opener, exe_mapped: str | None = None
    ) -> list[str]:
        """Keep the files of `mappings` not looked at yet; notes for the user (a file too
        large to keep, one that cannot be read). exe_mapped: the path the executable is
        mapped at when it is not the recording's executable path (a core imported with
        --exe): it is kept under the recording's."""
        self.start(mappings, opener, exe_mapped, thread=False)
        return self.finish()

    def start(
        self,
        mappings: list[MappingInfo],
        opener: Opener,
        exe_mapped: str | None = None,
        *,
        thread: bool = True,
    ) -> None:
        """Begin keep(): read, hash and compress the files on a thread of its own (up to
        AHEAD_BYTES of them); finish() stores them. The mappings' process stays stopped
        meanwhile (a live process's files are read through /proc/PID/map_files)."""
        self.abandon()
        todo = []
        for m in mappings:
            key = (m.path, m.inode)
            if m.path.startswith("/") and key not in self.seen:
                self.seen.add(key)
                todo.append(m)
        has_files, exe, kept = self._recorded() if todo else (False, None, set())
        if not has_files:
            todo = []  # a read-only or older store: nothing to keep into
        self._reading = _Reading(todo, opener, exe, exe_mapped or exe, kept)
        if todo and thread:
            self._reading.thread = threading.Thread(
                target=_read_all, args=(self._reading,), name="ttd-files", daemon=True
            )
            self._reading.thread.start()

    def _recorded(self) -> tuple[bool, str | None, set[tuple[str, str | None, str]]]:
        """Whether the recording keeps files at all (a recorded_file table), its executable
        path and the files it keeps; read before the snapshot is written."""
        with self.engine.connect() as conn:
            if not recorded_files.has_files(conn):
                return False, None, set()
            kept = conn.execute(select(RecordedFile.path, RecordedFile.build_id, RecordedFile.role))
            return True, self._exe(conn), {tuple(row) for row in kept}

    def abandon(self) -> None:
        """Drop what start() began (its files are looked at again next time)."""
        reading, self._reading = self._reading, None
        if reading is not None:
            reading.stop = True
            if reading.thread is not None:
                reading.thread.join()
            self.seen.difference_update((m.path, m.inode) for m in reading.todo)

    def finish(self) -> list[str]:
        """Store the files start() began with; notes for the user."""
        reading, self._reading = self._reading, None
        if reading is None or not reading.todo:
            return []
        if reading.thread is not None:
            reading.thread.join()
        if reading.error is not None:
            raise reading.error
        try:
            with self.engine.begin() as conn:
                rest = (_read_one(m, reading) for m in reading.todo[len(reading.done) :])
                for read in chain(reading.done, rest):  # the rest read one at a time
                    if read is not None:
                        _store(conn, read)
        except OperationalError as exc:
            if "full" not in str(exc.orig):  # SQLITE_FULL: "database or disk is full"
                raise
            # the snapshot is whole; its files are tried again with the next one
            self.seen.difference_update((m.path, m.inode) for m in reading.todo)
            return [
                f"warning: the disk is full: {len(reading.todo)} mapped files were not "
                "kept in the recording (calls read the local ones)."
            ]
        return reading.notes

    def _exe(self, conn) -> str | None:
        if self._exe_path is None:
            self._exe_path = conn.scalar(select(Recording.exe_path).order_by(Recording.id))
        return self._exe_path


def _read_all(reading: _Reading) -> None:
    """The thread of start(): the files in order, until AHEAD_BYTES are held."""
    held = 0
    try:
        for m in reading.todo:
            if reading.stop or held >= AHEAD_BYTES:
                return
            read = _read_one(m, reading)
            reading.done.append(read)
            if read is not None:
                held += sum(
                    len(p.stored) for p in (read.content, read.debug and read.debug[1]) if p
                )
    except BaseException as exc:  # raised again by finish()
        reading.error = exc


def _read_one(m: MappingInfo, reading: _Reading) -> _Read | None:
    """The file a mapping maps and its debug file, packed unless the recording keeps them
    already; None when there is nothing to keep (not ELF, too large, unreadable: then a
    note)."""
    source = reading.opener(m)
    if not source:
        return None
    found = build_id(source)
    path, role = reading.name(m)
    content = None
    if (path, found, role) not in reading.kept:
        data = _read_elf(source, m.path, reading.notes)
        if data is None:
            return None
        content = recorded_files.packed(data)
    return _Read(path, role, found, content, _debug_file(found, reading))


def _debug_file(found: str | None, reading: _Reading):
    """(path, packed or None where kept already) of the separate debug file of build-id
    `found` on this machine, or None."""
    if not found:
        return None
    path = os.path.join(DEBUG_BY_BUILD_ID, found[:2], found[2:] + ".debug")
    if not (os.path.isfile(path) and build_id(path) == found):
        return None
    if (path, found, "debug") in reading.kept:
        return path, None
    data = _read_elf(path, path, reading.notes)
    return None if data is None else (path, recorded_files.packed(data))


def _store(conn, read: _Read) -> None:
    if read.content is not None:
        recorded_files.store(conn, read.path, read.build_id, read.role, read.content)
    if read.debug is not None and read.debug[1] is not None:
        recorded_files.store(conn, read.debug[0], read.build_id, "debug", read.debug[1])


def _read_elf(source: str, path: str, notes: list[str]) -> bytes | None:
    """The bytes of the ELF file at `source` (None when it is not ELF, too large, or
    cannot be read: then a note)."""
    try:
        with open(source, "rb") as f:
            if f.read(4) != ELF_MAGIC:
                return None
            size = os.fstat(f.fileno()).st_size
            if size > recorded_files.MAX_FILE_BYTES:
                notes.append(
                    f"{path} is larger than "
                    f"{recorded_files.MAX_FILE_BYTES >> 20} MiB: not kept in the "
                    "recording"
                )
                return None
            f.seek(0)
            return f.read()
    except OSError as exc:
        notes.append(f"cannot keep {path} in the recording ({exc.strerror})")
        return None


def live_opener(pid: int) -> Opener:
    """The file a live process maps: /proc/PID/map_files (needs CAP_SYS_ADMIN), else the
    path while it still is the mapped inode."""

    def opener(m: MappingInfo) -> str | None:
        mapped = f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}"
        try:
            os.close(os.open(mapped, os.O_RDONLY))
            return mapped
        except OSError:
            pass
        try:
            return m.path if os.stat(m.path).st_ino == m.inode else None
        except OSError:
            return None

    return opener
