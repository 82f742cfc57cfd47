"""The ELF files of a recorded process, kept in its recording (snapshotdb/recorded_files.py):
the executable, every library it maps, and their separate debug files where this machine
has them (/usr/lib/debug/.build-id/xx/yyyy.debug, e.g. libc6-dbg's). GDB reads symbols
from those when the caller's machine lacks the files or has other ones (a program
rebuilt after it was recorded): gdb_plugin/files.py.

    keeper = FileKeeper(engine)                   one per recorder
    notes = keeper.keep(mappings, opener)         after each snapshot: the files of
                                                  mappings not looked at yet

opener(mapping) names the file to read for a mapping, or None: for a live process
/proc/PID/map_files/START-END, the very file it maps even when its path now holds
another (live_opener; without the capability to open those, the path when it is still
the mapped inode); for a core, the local file when its build-id is the one the core's
memory holds (the core importer's). Files that are not ELF (locale archives, fonts)
are skipped; a file is kept once per (path, build-id) and its bytes once per database.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from .. import recorded_files
from ..elf import build_id
from ..models import Recording
from .writer import MappingInfo

ELF_MAGIC = b"\x7fELF"
DEBUG_BY_BUILD_ID = "/usr/lib/debug/.build-id"

Opener = Callable[[MappingInfo], "str | None"]


class FileKeeper:
    """Keeps the files of one recording's mappings, each looked at once per recorder."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.seen: set[tuple[str, int]] = set()  # (path, inode) looked at
        self._exe_path: str | None = None

    def keep(
        self, mappings: list[MappingInfo], opener: Opener, exe_mapped: str | None = None
    ) -> list[str]:
        """Keep the files of `mappings` not looked at yet; notes for the user (a file too
        large to keep, one that cannot be read). exe_mapped: the path the executable is
        mapped at when it is not the recording's executable path (a core imported with
        --exe): it is kept under the recording's."""
        todo = []
        for m in mappings:
            key = (m.path, m.inode)
            if m.path.startswith("/") and key not in self.seen:
                self.seen.add(key)
                todo.append(m)
        if not todo:
            return []
        notes: list[str] = []
        try:
            with self.engine.begin() as conn:
                if not recorded_files.has_files(conn):
                    return []  # a read-only or older store: nothing to keep into
                exe = self._exe(conn)
                for m in todo:
                    is_exe = m.path == (exe_mapped or exe)
                    self._keep_one(
                        conn,
                        m,
                        exe if is_exe else m.path,
                        opener(m),
                        "exe" if is_exe else "library",
                        notes,
                    )
        except OperationalError as exc:
            if "full" not in str(exc.orig):  # SQLITE_FULL: "database or disk is full"
                raise
            # the snapshot is whole; its files are tried again with the next one
            self.seen.difference_update((m.path, m.inode) for m in todo)
            return [
                f"warning: the disk is full: {len(todo)} mapped files were not kept in "
                "the recording (calls read the local ones)."
            ]
        return notes

    def _exe(self, conn) -> str | None:
        if self._exe_path is None:
            self._exe_path = conn.scalar(select(Recording.exe_path).order_by(Recording.id))
        return self._exe_path

    def _keep_one(
        self, conn, m: MappingInfo, path: str, source: str | None, role: str, notes: list[str]
    ) -> None:
        data = _read_elf(source, m.path, notes) if source else None
        if data is None:
            return
        found = build_id(source)
        recorded_files.store(conn, path, found, role, data)
        if found:
            self._keep_debug(conn, found, notes)

    def _keep_debug(self, conn, found: str, notes: list[str]) -> None:
        path = os.path.join(DEBUG_BY_BUILD_ID, found[:2], found[2:] + ".debug")
        if os.path.isfile(path) and build_id(path) == found:
            data = _read_elf(path, path, notes)
            if data is not None:
                recorded_files.store(conn, path, found, "debug", data)


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
