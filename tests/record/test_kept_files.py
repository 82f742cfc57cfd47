"""The ELF files a live snapshot keeps (snapshotdb/capture/elf_files.py), read on a thread
of their own beside the snapshot: the executable under the recording's path, each library,
libc's separate debug file (libc6-dbg), each byte for byte; the same when the thread
leaves most files to the end (AHEAD_BYTES); and a snapshot that fails leaves its files to
the next one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from snapshotdb import recorded_files
from snapshotdb.capture import (
    CaptureError,
    elf_files,
    ptrace_stopped,
    snapshot_live,
    writer_for_pid,
)
from snapshotdb.db import open_engine
from snapshotdb.models import RecordedFile


@pytest.fixture
def held(hold):
    return hold(1)


def kept(engine) -> dict[tuple[str, str], bytes]:
    """(role, path) -> the bytes of every file the recording keeps (read verifies them)."""
    with engine.connect() as conn:
        from sqlalchemy.orm import Session

        with Session(bind=conn) as session:
            rows = session.scalars(select(RecordedFile)).all()
            return {(r.role, r.path): recorded_files.read(session, r) for r in rows}


def libc_path(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as f:
        return next(line.split()[-1] for line in f if "/libc.so" in line)


def record_once(proc, tmp_path, name="rec.db"):
    engine = open_engine(tmp_path / name, create=True)
    recorder = writer_for_pid(engine, proc.pid)
    with ptrace_stopped(proc.pid):
        snapshot_live(recorder, proc.pid)
    return engine, recorder


def test_the_files_a_snapshot_keeps(held, tmp_path):
    proc, exe = held
    engine, recorder = record_once(proc, tmp_path)
    files = kept(engine)
    libc = libc_path(proc.pid)
    with open(exe, "rb") as f:
        assert files[("exe", str(exe))] == f.read()
    with open(libc, "rb") as f:
        assert files[("library", libc)] == f.read()
    debug = [path for role, path in files if role == "debug"]
    assert all(path.startswith(elf_files.DEBUG_BY_BUILD_ID) for path in debug)
    recorder.close()
    engine.dispose()


def test_files_left_to_the_end_are_the_same(held, tmp_path, monkeypatch):
    """The thread stops after the first file (AHEAD_BYTES): finish() reads the rest."""
    proc, _ = held
    engine, recorder = record_once(proc, tmp_path, "ahead.db")
    ahead = kept(engine)
    recorder.close()
    engine.dispose()
    monkeypatch.setattr(elf_files, "AHEAD_BYTES", 1)
    engine, recorder = record_once(proc, tmp_path, "one.db")
    assert kept(engine) == ahead and len(ahead) >= 3
    recorder.close()
    engine.dispose()


def test_a_failed_snapshot_leaves_its_files_to_the_next(held, tmp_path, monkeypatch):
    proc, _ = held
    engine = open_engine(tmp_path / "fail.db", create=True)
    recorder = writer_for_pid(engine, proc.pid)

    def fail(*args, **kwargs):
        raise CaptureError("the write failed")

    with ptrace_stopped(proc.pid):
        with monkeypatch.context() as patch:
            patch.setattr(recorder, "_write", fail)
            with pytest.raises(CaptureError, match="the write failed"):
                snapshot_live(recorder, proc.pid)
        assert kept(engine) == {}
        snapshot_live(recorder, proc.pid)
    assert ("library", libc_path(proc.pid)) in kept(engine)
    recorder.close()
    engine.dispose()


def test_files_the_recording_keeps_are_not_read_again(held, tmp_path, monkeypatch):
    """A second recorder of the same recording (a new session) reads no file it keeps
    already: nothing is packed, and the recording's files stay as they were."""
    proc, _ = held
    engine, recorder = record_once(proc, tmp_path)
    before = kept(engine)
    recorder.close()
    packed = []
    real = recorded_files.packed
    monkeypatch.setattr(recorded_files, "packed", lambda data: packed.append(1) or real(data))
    again = writer_for_pid(engine, proc.pid)
    with ptrace_stopped(proc.pid):
        snapshot_live(again, proc.pid)
    assert packed == [] and kept(engine) == before
    again.close()
    engine.dispose()
