"""The files a recording keeps: the ELF files its process mapped and their separate debug
files (models.py: recorded_file -> file_content), stored and read back verified.

    packed(data)                              a file's bytes made ready to store: their
                                              sha256 and stored form (no database: a
                                              thread of its own may make them)
    store(conn, path, build_id, role, packed) stored once per content (sha256), named
                                              in this recording
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
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Packed:
    """A file's bytes as file_content stores them."""

    digest: bytes  # sha256 of the file's bytes
    size: int
    codec: str  # 'zstd' | 'raw'
    stored: bytes


def packed(data: bytes) -> Packed:
    """Hashing and compressing release the GIL: files are packed beside other work."""
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data)
    codec, stored = ("zstd", compressed) if len(compressed) < len(data) else ("raw", data)
    return Packed(hashlib.sha256(data).digest(), len(data), codec, stored)


def store(conn: Connection, path: str, build_id: str | None, role: str, content: Packed) -> bool:
    """Keep `content` as the file at `path` (role exe, library or debug) in this recording,
    inside the caller's transaction; False when it was kept already."""
    there = conn.execute(
        select(RecordedFile.id).where(
            RecordedFile.path == path, RecordedFile.build_id == build_id, RecordedFile.role == role
        )
    ).first()
    if there is not None:
        return False
    content_id = _content_id(conn, content)
    conn.execute(
        RecordedFile.__table__.insert(),
        [{"path": path, "build_id": build_id, "role": role, "content_id": content_id}],
    )
    return True


def _content_id(conn: Connection, content: Packed) -> int:
    """The file_content row of these bytes, inserted when missing (another recorder of
    the same database may insert it meanwhile: then it is found)."""
    query = select(FileContent.id).where(FileContent.digest == content.digest)
    content_id = conn.scalar(query)
    if content_id is not None:
        return content_id
    row = {"digest": content.digest, "size": content.size, "codec": content.codec}
    try:
        with conn.begin_nested():
            return conn.execute(
                FileContent.__table__.insert().returning(FileContent.id),
                [{**row, "data": content.stored}],
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
