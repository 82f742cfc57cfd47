"""Which files GDB reads symbols from for a call: the local ones when they are the recorded
ones (same build-id), else the copies the recording keeps (snapshotdb/recorded_files.py),
written into the call session's directory (removed with it), each with a one-line note.

    exe = choose(info, inferior, warnings)      from CallSession._check_files

    executable   local file with the recorded build-id   -> its path, as before
                 missing, or another build-id (rebuilt)  -> the recorded copy, at
                                                            DIR/files/<recorded path>
    library      missing locally                         -> the recorded copy in
                                                            DIR/lib (solib-search-path)
                 another build-id                        -> a warning (GDB reads the
                                                            local file through sysroot)
    debug file   of the executable or a library, kept    -> DIR/debug/.build-id/xx/y.debug
                 by the recording, missing here             (debug-file-directory)

A recording made before recordings kept files has none: then the warnings are the
build-id checks of gdb_plugin/symbolize.py, as before. The GDB settings go to the
temporary inferior (TempInferior.symbol_settings), which applies them while it
attaches and puts the user's back.
"""

from __future__ import annotations

import os
import weakref

import gdb

from gdb_plugin import symbolize

_recorded: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # recording -> Files
_local_ids: dict[tuple[str, int, int], str | None] = {}
LOCAL_DEBUG = "/usr/lib/debug/.build-id"


class Files:
    """The files one recording keeps: rows by path (exe, library), debug rows by build-id."""

    def __init__(self, recording) -> None:
        from snapshotdb import recorded_files

        self.recording = recording
        with recording.session() as session:
            rows = recorded_files.listed(session)
            session.expunge_all()
        self.by_path = {(r.path, r.role): r for r in rows if r.role != "debug"}
        self.debug = {r.build_id: r for r in rows if r.role == "debug"}
        self.any = bool(rows)

    def write(self, row, dest: str) -> str:
        """The recorded bytes of `row` at `dest` (made read-only); dest."""
        from snapshotdb import recorded_files

        with self.recording.session() as session:
            data = recorded_files.read(session, row)
        os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o500)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return dest


def files_of(recording) -> Files:
    if recording not in _recorded:
        _recorded[recording] = Files(recording)
    return _recorded[recording]


def local_build_id(path: str) -> str | None:
    """The build-id of the local file at path (None: missing, not ELF, none), cached by
    (path, inode, mtime)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_ino, st.st_mtime_ns)
    if key not in _local_ids:
        from snapshotdb.elf import build_id

        _local_ids[key] = build_id(path)
    return _local_ids[key]


def choose(info, inferior, warnings: list[str]) -> str | None:
    """The executable GDB loads for the call at `info` (None: no symbols); the GDB
    settings for recorded libraries and debug files go to inferior.symbol_settings;
    a note per file taken from the recording, a warning per file that differs."""
    recorded = files_of(info.recording)
    if not recorded.any:
        return _unrecorded(info, warnings)
    workdir = inferior.log_dir
    exe, build_ids = _executable(info, recorded, workdir, warnings), [info.build_id]
    lib_dir = os.path.join(workdir, "lib")
    for _base, path in info.libraries:
        row = recorded.by_path.get((path, "library"))
        if row is None:
            continue
        build_ids.append(row.build_id)
        local = local_build_id(path)
        if not os.path.exists(path):
            recorded.write(row, os.path.join(lib_dir, os.path.basename(path)))
            warnings.append(f"warning: {path} is missing: symbols from the recorded copy.")
        elif local is not None and row.build_id and local != row.build_id:
            warnings.append(
                f"warning: {path} has build-id {local}, the recording "
                f"{row.build_id}: symbols may be wrong; memory is the recorded one."
            )
    settings = []
    if os.path.isdir(lib_dir):
        settings.append(("solib-search-path", lib_dir))
    if _debug_files(recorded, build_ids, os.path.join(workdir, "debug")):
        current = gdb.parameter("debug-file-directory") or ""
        settings.append(
            (
                "debug-file-directory",
                ":".join(filter(None, (current, os.path.join(workdir, "debug")))),
            )
        )
    inferior.symbol_settings = settings
    return exe


def _executable(info, recorded: Files, workdir: str, warnings: list[str]) -> str | None:
    path = info.exe_path
    row = recorded.by_path.get((path, "exe"))
    local = local_build_id(path)
    if row is None or (local is not None and local == row.build_id):
        if local is not None and info.build_id and local != info.build_id:
            warnings.append(
                f"warning: {path} has build-id {local}, the recording "
                f"{info.build_id}: symbols may be wrong; memory is the recorded one."
            )
        return _unrecorded_exe(info, warnings)
    copy = recorded.write(row, os.path.join(workdir, "files", path.lstrip("/")))
    if not os.path.exists(path):
        warnings.append(f"warning: {path} is missing: symbols from the recorded copy.")
    else:
        warnings.append(
            f"warning: {path} has build-id {local or 'none'}, the recording "
            f"{row.build_id}: symbols from the recorded copy."
        )
    return copy


def _debug_files(recorded: Files, build_ids, debug_dir: str) -> bool:
    """The recorded debug files of these build-ids that this machine lacks, written under
    debug_dir as GDB looks for them; whether there was any."""
    wrote = False
    for found in filter(None, build_ids):
        row = recorded.debug.get(found)
        name = os.path.join(found[:2], found[2:] + ".debug")
        if row is None or local_build_id(os.path.join(LOCAL_DEBUG, name)) == found:
            continue
        recorded.write(row, os.path.join(debug_dir, ".build-id", name))
        wrote = True
    return wrote


def _unrecorded_exe(info, warnings: list[str]) -> str | None:
    """The local executable (None when missing: a warning), as without recorded files."""
    if not os.path.exists(info.exe_path):
        warnings.append(
            f"warning: {info.exe_path} is missing: no symbols for the executable, "
            "memory is the recorded one."
        )
        return None
    return info.exe_path


def _unrecorded(info, warnings: list[str]) -> str | None:
    """A recording without files: the local executable, the build-id checks."""
    exe = _unrecorded_exe(info, warnings)
    if exe is not None:
        if info.file_warnings is None:
            info.file_warnings = symbolize.build_id_warnings(info)
        warnings.extend(info.file_warnings)
    return exe
