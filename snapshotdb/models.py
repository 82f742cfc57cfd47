"""The recording database.

One database holds one recording: the state of one process at many ticks.

    recording 1──* snapshot (tick 1, 2, 3, ... in time order)
                     ├──* thread   (tid, gpregs = struct user_regs_struct,
                     │              fpregs = struct user_fpregs_struct, xstate = XSAVE area)
                     └──* mapping  (start, end, perms, offset, path)

    page_version (address, first_tick) ──> page_content (digest, codec, data)
                                             ^
    page_digest (digest) ────────────────────┘  (SQLite: each content found by its digest)

    recorded_file (path, build_id, role) ──> file_content (digest, size, codec, data)

Pages are content-addressed and versioned, not owned by snapshots:

    address A   tick 1        tick 2      tick 3         tick 7
                v1 ─────────────────────> v2 ──────────> NULL (zero / gone)
                (content c5)              (content c9)

"Page A at tick T" is the page_version of A with the largest first_tick <= T;
its content_id NULL, or no version at all, means the page reads as zeros.
A snapshot writes a version only for the pages that differ from the previous
snapshot, so it costs the pages that changed. Identical contents (zero pages
are never stored, but a libc page mapped twice is) share one page_content row.

The recording keeps the ELF files its process mapped (role "exe", "library") and their
separate debug files ("debug", when the machine had them), each stored once per
distinct content (zstd frames of the file, digest = sha256 of the file): GDB reads
symbols from them where the local file is missing or another (gdb_plugin/files.py).
These two tables came after schema version 1 without changing it: an older ttd ignores
them, and a recording without them has no recorded files (writers add them).

page_digest came after schema version 1 as well. A recording made before it has a UNIQUE
constraint on page_content.digest instead; a writer adds the table and fills it from
page_content when it opens such a recording (db.py). An older ttd that writes to a newer
recording does not keep page_digest: a content it stored may be stored again, which is
never wrong (a page names one row holding its bytes, whichever).

On a PostgreSQL server a database holds many recordings (snapshotdb/server.py):
page_content and file_content are shared by all of them, the other tables are one
schema per recording.

The C page server (native/pageserver/store_*.c) reads page_version and page_content
directly with libsqlite3: keep these two tables' names, columns and encoding stable
(codec 'zstd' = one zstd frame of the 4096 bytes, 'raw' = the bytes; digest =
sha256 of the uncompressed bytes).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import blob, page_digest, rec_addr

SCHEMA_VERSION = 1

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _repr(obj, *fields) -> str:
    inner = ", ".join(f"{f}={getattr(obj, f)!r}" for f in fields)
    return f"{type(obj).__name__}({inner})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Key/value facts about the database itself (schema_version)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str]

    def __repr__(self) -> str:
        return _repr(self, "key", "value")


class Recording(Base):
    __tablename__ = "recording"
    id: Mapped[int] = mapped_column(primary_key=True)
    exe_path: Mapped[str]
    build_id: Mapped[str | None]
    cmdline: Mapped[str]  # JSON list of argv
    arch: Mapped[str] = mapped_column(String(32), default="x86_64")
    page_size: Mapped[int] = mapped_column(default=4096)
    created: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    snapshots: Mapped[list[Snapshot]] = relationship(
        back_populates="recording", order_by="Snapshot.tick", lazy="raise"
    )

    def __repr__(self) -> str:
        return _repr(self, "id", "exe_path", "build_id")


class Snapshot(Base):
    __tablename__ = "snapshot"
    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recording.id"))
    tick: Mapped[int] = mapped_column(unique=True)
    reason: Mapped[str] = mapped_column(String(16))  # breakpoint|signal|exit|manual|core
    stop_tid: Mapped[int]
    pc: Mapped[rec_addr]
    function: Mapped[str | None]
    file: Mapped[str | None]
    line: Mapped[int | None]
    signal: Mapped[str | None]  # e.g. SIGSEGV, for reason == signal
    note: Mapped[str | None]
    created: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    auxv: Mapped[blob]
    # mm fields, as /proc/PID/stat gives them (and PR_SET_MM_MAP takes them)
    start_code: Mapped[rec_addr]
    end_code: Mapped[rec_addr]
    start_data: Mapped[rec_addr]
    end_data: Mapped[rec_addr]
    start_brk: Mapped[rec_addr]
    brk: Mapped[rec_addr]
    start_stack: Mapped[rec_addr]
    arg_start: Mapped[rec_addr]
    arg_end: Mapped[rec_addr]
    env_start: Mapped[rec_addr]
    env_end: Mapped[rec_addr]

    recording: Mapped[Recording] = relationship(back_populates="snapshots")
    threads: Mapped[list[Thread]] = relationship(
        back_populates="snapshot", order_by="Thread.id", lazy="selectin"
    )
    mappings: Mapped[list[Mapping]] = relationship(
        back_populates="snapshot", order_by="Mapping.start", lazy="selectin"
    )

    def __repr__(self) -> str:
        return _repr(self, "tick", "reason", "function", "line")


class Thread(Base):
    __tablename__ = "thread"
    __table_args__ = (UniqueConstraint("snapshot_id", "tid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshot.id"), index=True)
    tid: Mapped[int]
    name: Mapped[str | None]
    gpregs: Mapped[blob]  # struct user_regs_struct (216 bytes), fs_base/gs_base included
    fpregs: Mapped[blob]  # struct user_fpregs_struct (512 bytes, FXSAVE layout)
    xstate: Mapped[bytes | None] = mapped_column()  # NT_X86_XSTATE: full XSAVE area

    snapshot: Mapped[Snapshot] = relationship(back_populates="threads")

    def __repr__(self) -> str:
        return _repr(self, "tid", "name")


class Mapping(Base):
    __tablename__ = "mapping"
    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshot.id"), index=True)
    start: Mapped[rec_addr]
    end: Mapped[rec_addr]
    perms: Mapped[str] = mapped_column(String(4))  # "r-xp", as /proc/PID/maps
    offset: Mapped[rec_addr]
    path: Mapped[str]  # "" for anonymous; "[heap]", "[stack]", "[vdso]", "[vvar]", ...

    snapshot: Mapped[Snapshot] = relationship(back_populates="mappings")

    def __repr__(self) -> str:
        return f"Mapping({self.start:#x}-{self.end:#x} {self.perms} {self.path!r})"


class PageContent(Base):
    __tablename__ = "page_content"
    # On PostgreSQL, where recordings share page_content, a unique index finds a content by
    # its digest; an SQLite recording has page_digest instead (a recording made before it
    # has this as a UNIQUE constraint, and gets page_digest when it is written to)
    __table_args__ = (
        Index("uq_page_content_digest", "digest", unique=True).ddl_if(dialect="postgresql"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))  # sha256 of the 4096 bytes
    codec: Mapped[str] = mapped_column(String(8))  # 'zstd' | 'raw'
    data: Mapped[blob]
    # pages.check_of: what the C page server checks a page against in place of sha256;
    # NULL, or no column in a recording made before it: sha256 alone. Deferred: never
    # loaded by the ORM (such a recording has no column to load)
    xxh3: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)

    def __repr__(self) -> str:
        return _repr(self, "id", "codec")


class PageDigest(Base):
    """An SQLite recording's page_content row of each digest, in digest order (a table of
    its own, not an index of page_content: native/capture/store.c appends the digests of
    a whole snapshot in order, where an index took them one by one in sha256's random
    order, which cost a first snapshot half of its storing time). Not on PostgreSQL."""

    __tablename__ = "page_digest"
    __table_args__ = {"sqlite_with_rowid": False}
    digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    content_id: Mapped[int] = mapped_column(ForeignKey("page_content.id"))

    def __repr__(self) -> str:
        return f"PageDigest({self.digest.hex()[:16]} -> {self.content_id})"


class PageVersion(Base):
    __tablename__ = "page_version"
    __table_args__ = (
        UniqueConstraint("address", "first_tick"),
        Index("ix_page_version_first_tick", "first_tick"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[rec_addr]
    first_tick: Mapped[int]
    content_id: Mapped[int | None] = mapped_column(ForeignKey("page_content.id"))

    def __repr__(self) -> str:
        return f"PageVersion({self.address:#x} @{self.first_tick} -> {self.content_id})"


class FileContent(Base):
    """An ELF file's bytes, stored once per distinct content."""

    __tablename__ = "file_content"
    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[page_digest]  # sha256 of the file's bytes
    size: Mapped[int] = mapped_column(BigInteger)  # bytes of the file
    codec: Mapped[str] = mapped_column(String(8))  # 'zstd' (frames) | 'raw'
    data: Mapped[blob]

    def __repr__(self) -> str:
        return _repr(self, "id", "size", "codec")


class RecordedFile(Base):
    """A file of the recorded process: what was mapped at `path` (or, role "debug", the
    separate debug file of the ELF file with that build-id)."""

    __tablename__ = "recorded_file"
    __table_args__ = (UniqueConstraint("path", "build_id", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str]
    build_id: Mapped[str | None] = mapped_column(String(128))  # hex, as the note holds it
    role: Mapped[str] = mapped_column(String(8))  # 'exe' | 'library' | 'debug'
    content_id: Mapped[int] = mapped_column(ForeignKey("file_content.id"))

    def __repr__(self) -> str:
        return _repr(self, "path", "build_id", "role")
