"""Opening, creating and checking recording databases.

A recording is named by a path (an SQLite file) or by any SQLAlchemy URL.
`open_recording` checks what it opens and raises one narrow error per problem,
each with a one-line message; read-only opens cannot write at all.
"""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.pool import QueuePool
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import Session

from .errors import CannotCreate, NotARecording, RecordingNotFound, SchemaVersionMismatch
from .models import SCHEMA_VERSION, Base, Meta
from .paths import NOT_FOUND, path_problem

SQLITE_MAGIC = b"SQLite format 3\x00"
# Measured: 7 raw 4 KiB pages per database page; 16 KiB pages fit 3 (99 MB against ~81 MB
# for 64 MiB of random heap), lookups within 1 us.
SQLITE_PAGE_SIZE = 32768


def is_url(name: str) -> bool:
    return "://" in name


def _sqlite_engine(path: Path, readonly: bool) -> Engine:
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"

    def connect():
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        return conn

    # QueuePool, as SQLAlchemy gives a file URL: the "sqlite://" URL would get a
    # SingletonThreadPool, which closes other threads' connections once more than five
    # threads have used the engine, under a query running there (GDB crashed in
    # sqlite3_last_insert_rowid when a call's start-up thread read the recording).
    # One connection is kept between uses; others (a second thread's) are closed when
    # given back, so an open recording holds one descriptor on its file.
    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=1,
                           max_overflow=16)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        if readonly:
            cur.execute("PRAGMA query_only=ON")
        else:
            # Large database pages: a stored page (up to 4 KiB) then fits in one b-tree
            # cell instead of spilling into overflow pages, which doubled the file.
            # Takes effect only on a new, empty database.
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            # Rollback journal, not WAL: a WAL database makes even read-only openers
            # create -wal/-shm files beside the recording.
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def _check_sqlite_file(path: Path) -> None:
    problem = path_problem(path)
    if problem is not None:
        raise RecordingNotFound(f"No recording at '{path}': {problem}.")
    if path.is_dir():
        raise NotARecording(f"'{path}' is a directory, not a ttd recording.")
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise NotARecording(f"Cannot read '{path}': {exc.strerror}.") from None
    if head != SQLITE_MAGIC:
        raise NotARecording(f"'{path}' is not a ttd recording (not an SQLite database).")


def _check_schema(engine: Engine, name: str) -> None:
    try:
        tables = set(inspect(engine).get_table_names())
        if "meta" not in tables:
            raise NotARecording(
                f"'{name}' is an SQLite database but not a ttd recording (no 'meta' table)."
            )
        with Session(engine) as session:
            row = session.get(Meta, "schema_version")
    except (DatabaseError, OperationalError) as exc:
        raise NotARecording(f"'{name}' cannot be read as a ttd recording: {exc.orig}") from exc
    if row is None:
        raise NotARecording(f"'{name}' is not a ttd recording (no schema version).")
    if row.value != str(SCHEMA_VERSION):
        raise SchemaVersionMismatch(
            f"'{name}' is a ttd recording of schema version {row.value}; "
            f"this ttd reads version {SCHEMA_VERSION}."
        )


def open_engine(name: str | os.PathLike, *, readonly: bool = True, create: bool = False) -> Engine:
    """Open a recording and return its engine, checked.

    create=True makes a new, empty recording when the file does not exist
    (or the URL's database has no tables), and implies readonly=False.
    """
    name = os.fspath(name)
    if create:
        readonly = False
    if is_url(name):
        engine = create_engine(name)
        if create and "meta" not in inspect(engine).get_table_names():
            _initialize(engine)
    else:
        path = Path(name)
        problem = path_problem(path)
        if create and (problem == NOT_FOUND or (problem is None and path.stat().st_size == 0)):
            _create_file(path)
            engine = _sqlite_engine(path, readonly=False)
            _initialize(engine)
        else:
            _check_sqlite_file(path)
            engine = _sqlite_engine(path, readonly)
    _check_schema(engine, name)
    return engine


def _create_file(path: Path) -> None:
    """The empty file SQLite then fills: a directory that cannot take it is one line
    naming it, not SQLite's "unable to open database file"."""
    if not path.parent.exists():
        raise RecordingNotFound(f"Cannot create '{path}': directory does not exist.")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError as exc:
        raise CannotCreate(f"Cannot create '{path}': the directory '{path.parent}' does not "
                           f"take new files ({exc.strerror}).") from None


def _initialize(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))


@dataclass(eq=False)
class Recording:
    """One open recording: the handle every part of ttd passes down (the GDB plugin,
    rematerialization, the CLI), instead of each opening its own engine.

    name is an SQLite file's absolute path or a server URL as given; engine is
    checked (schema version) and read-only unless opened with readonly=False.
    """

    name: str
    engine: Engine
    readonly: bool = True

    @property
    def path(self) -> str | None:
        """The local SQLite file, or None for a recording on a server."""
        return None if is_url(self.name) else self.name

    def session(self) -> Session:
        return Session(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_recording(name: str | os.PathLike, *, readonly: bool = True,
                   create: bool = False) -> Recording:
    """Open (create=True: make when missing) and check a recording; see open_engine."""
    name = os.fspath(name)
    if not is_url(name):
        name = os.path.abspath(os.path.expanduser(name))
    engine = open_engine(name, readonly=readonly, create=create)
    return Recording(name, engine, readonly=readonly and not create)
