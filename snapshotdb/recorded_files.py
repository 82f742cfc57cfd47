"""The files a recording keeps: the ELF files its process mapped and their separate debug
files (models.py: recorded_file -> file_content), stored and read back verified.

    store(conn, path, build_id, role, data)   a file's bytes, stored once per content
                                              (sha256), named in this recording
    listed(session)                           [RecordedFile] (none when the recording
                                              was made before recordings kept files)
    read(session, row)                        the file's bytes, checked against their
                                              sha256 (CorruptPage-like error otherwise)

Contents are one zstd frame of the whole file (level 1: a recording's first snapshot
pays for its files, 6 MB of libc and its debug file in about 10 ms), or the bytes as
they are when that is not smaller.
"""

from __future__ import annotations

import hashlib

import zstandard
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import RecordingError
from .models import FileContent, RecordedFile

ZSTD_LEVEL = 1
MAX_FILE_BYTES = 256 << 20  # a file larger than this is not kept (a note says so)
ROLES = ("exe", "library", "debug")


class CorruptFile(RecordingError):
    """A recorded file whose bytes do not match their digest."""


def has_files(engine_or_conn) -> bool:
    """Does the recording have the tables (made by a ttd that keeps files)?"""
    return inspect(engine_or_conn).has_table("recorded_file")


def store(conn: Connection, path: str, build_id: str | None, role: str, data: bytes) -> bool:
    """Keep `data` as the file at `path` (role exe, library or debug) in this recording,
    inside the caller's transaction; False when it was kept already."""
    there = conn.execute(
        select(RecordedFile.id).where(
            RecordedFile.path == path, RecordedFile.build_id == build_id, RecordedFile.role == role
        )
    ).first()
    if there is not None:
        return False
    content_id = _content_id(conn, data)
    conn.execute(
        RecordedFile.__table__.insert(),
        [{"path": path, "build_id": build_id, "role": role, "content_id": content_id}],
    )
    return True


def _content_id(conn: Connection, data: bytes) -> int:
    """The file_content row of these bytes, inserted when missing (another recorder of
    the same database may insert it meanwhile: then it is found)."""
    digest = hashlib.sha256(data).digest()
    query = select(FileContent.id).where(FileContent.digest == digest)
    content_id = conn.scalar(query)
    if content_id is not None:
        return content_id
    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    codec, stored = ("zstd", packed) if len(packed) < len(data) else ("raw", data)
    try:
        with conn.begin_nested():
            return conn.execute(
                FileContent.__table__.insert().returning(FileContent.id),
                [{"digest": digest, "size": len(data), "codec": codec, "data": stored}],
            ).scalar_one()
    except IntegrityError:
        return conn.scalar(query)


def listed(session: Session) -> list[RecordedFile]:
    if not has_files(session.connection()):
        return []
    return list(session.scalars(select(RecordedFile).order_by(RecordedFile.id)))


def read(session: Session, row: RecordedFile) -> bytes:
    content = session.get(FileContent, row.content_id)
    if content is None:
        raise CorruptFile(f"Corrupt recording: the recorded file {row.path} has no content.")
    try:
        data = (
            zstandard.ZstdDecompressor().decompress(content.data, max_output_size=content.size)
            if content.codec == "zstd"
            else bytes(content.data)
        )
    except zstandard.ZstdError as exc:
        raise CorruptFile(
            f"Corrupt recording: the recorded file {row.path} does not decompress ({exc})."
        ) from None
    if len(data) != content.size or hashlib.sha256(data).digest() != content.digest:
        raise CorruptFile(
            f"Corrupt recording: the recorded file {row.path} does not match its hash."
        )
    return data
