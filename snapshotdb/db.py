"""Opening, creating and checking recording databases.

A recording is named by a path (an SQLite file) or a URL (location.py): sqlite:///PATH,
or postgresql://...?recording=NAME for one of the recordings of a PostgreSQL database
(server.py). `open_recording` checks what it opens and raises one narrow error per
problem, each with a one-line message that never shows a password; read-only opens
cannot write at all (SQLite: query_only; PostgreSQL: read-only transactions).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, InterfaceError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from . import location
from .errors import (
    CannotCreate,
    IncompleteRecording,
    NotARecording,
    RecordingError,
    RecordingNotFound,
    SchemaVersionMismatch,
    ServerUnavailable,
)
from .location import Location, is_url  # noqa: F401 (is_url: snapshotdb.db's, as before)
from .models import SCHEMA_VERSION, Base, Meta
from .paths import NOT_FOUND, path_problem

SQLITE_MAGIC = b"SQLite format 3\x00"
# Measured: 7 raw 4 KiB pages per database page; 16 KiB pages fit 3 (99 MB against ~81 MB
# for 64 MiB of random heap), lookups within 1 us.
SQLITE_PAGE_SIZE = 32768


def _file_uri(path: Path) -> str:
    """An SQLite file URI of `path`, every character that URIs give a meaning ('?', '#',
    '%') percent-encoded: unquoted, '/tmp/a?b.db' opened (and created) '/tmp/a'."""
    return "file:" + quote(str(path))


def _sqlite_engine(path: Path, readonly: bool) -> Engine:
    uri = _file_uri(path) + ("?mode=ro" if readonly else "")

    def connect():
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        return conn

    # QueuePool, as SQLAlchemy gives a file URL: the "sqlite://" URL would get a
    # SingletonThreadPool, which closes other threads' connections once more than five
    # threads have used the engine, under a query running there (GDB crashed in
    # sqlite3_last_insert_rowid when a call's start-up thread read the recording).
    # One connection is kept between uses; others (a second thread's) are closed when
    # given back, so an open recording holds one descriptor on its file.
    engine = create_engine(
        "sqlite://", creator=connect, poolclass=QueuePool, pool_size=1, max_overflow=16
    )

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


def _roll_back_unfinished_write(path: Path) -> None:
    """A writer killed during a transaction (a recorder killed by SIGKILL or the OOM
    killer during a snapshot) leaves the rollback journal of that transaction, which
    only a read-write connection may play back: a read-only one fails ("attempt to write
    a readonly database"). Play it back as any read-write opener would: the snapshots
    committed stay as they were, the unfinished one goes. A live writer's journal is
    left alone (SQLite sees its lock). Best effort: when it cannot be done (no write
    access), the read-only open says why (_check_schema)."""
    try:
        if os.stat(f"{path}-journal").st_size == 0:
            return
    except OSError:
        return
    try:
        conn = sqlite3.connect(_file_uri(path) + "?mode=rw", uri=True, timeout=5)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        pass


def _check_schema(engine: Engine, name: str) -> None:
    try:
        tables = set(inspect(engine).get_table_names())
        if "meta" not in tables:
            kind = "an SQLite database" if engine.dialect.name == "sqlite" else "a database"
            raise NotARecording(f"'{name}' is {kind} but not a ttd recording (no 'meta' table).")
        with Session(engine) as session:
            row = session.get(Meta, "schema_version")
            copying = session.get(Meta, "copy_state")
    except (DatabaseError, OperationalError) as exc:
        if "readonly database" in str(exc.orig):
            raise NotARecording(
                f"'{name}' holds a snapshot whose recorder was killed before it ended: "
                "ttd needs write access to it once, to roll that snapshot back."
            ) from exc
        raise NotARecording(f"'{name}' cannot be read as a ttd recording: {exc.orig}") from exc
    if row is None:
        raise NotARecording(f"'{name}' is not a ttd recording (no schema version).")
    if copying is not None:
        raise IncompleteRecording(
            f"'{name}' is incomplete: a copy into it was interrupted. "
            "Run the same ttd copy again to finish it."
        )
    if row.value != str(SCHEMA_VERSION):
        raise SchemaVersionMismatch(
            f"'{name}' is a ttd recording of schema version {row.value}; "
            f"this ttd reads version {SCHEMA_VERSION}."
        )


def open_engine(
    name: str | os.PathLike | Location, *, readonly: bool = True, create: bool = False
) -> Engine:
    """Open a recording and return its engine, checked.

    create=True makes a new, empty recording when the file does not exist (or the
    server database has no recording of that name), and implies readonly=False.
    """
    return _open(_location(name), readonly=readonly and not create, create=create)


def _location(name: str | os.PathLike | Location) -> Location:
    return name if isinstance(name, Location) else location.parse(name)


def _open(loc: Location, *, readonly: bool, create: bool) -> Engine:
    if loc.is_server:
        engine = _open_server(loc, readonly=readonly, create=create)
    else:
        path = Path(loc.path)
        problem = path_problem(path)
        if create and (problem == NOT_FOUND or (problem is None and path.stat().st_size == 0)):
            _create_file(path)
            engine = _sqlite_engine(path, readonly=False)
            _initialize(engine)
        else:
            _check_sqlite_file(path)
            if readonly:
                _roll_back_unfinished_write(path)
            engine = _sqlite_engine(path, readonly)
    _check_schema(engine, loc.display)
    if not readonly and not loc.is_server:
        Base.metadata.create_all(engine)  # tables a recording of an older ttd lacks
        _fill_page_digest(engine)
    return engine


def _fill_page_digest(engine: Engine) -> None:
    """A recording made before page_digest, opened to be written: the digests of its
    contents, once (its UNIQUE digest constraint gives them in order). Writers find a
    content by page_digest alone."""
    with engine.begin() as conn:
        if (
            conn.exec_driver_sql("SELECT 1 FROM page_digest LIMIT 1").first() is not None
            or conn.exec_driver_sql("SELECT 1 FROM page_content LIMIT 1").first() is None
        ):
            return  # nothing to fill: no write, no wait for another writer's lock
        conn.exec_driver_sql(
            "INSERT OR IGNORE INTO page_digest (digest, content_id) "
            "SELECT digest, id FROM page_content ORDER BY digest"
        )


def _open_server(loc: Location, *, readonly: bool, create: bool) -> Engine:
    """The engine of the recording `loc` names in its server database (made when missing
    and create); one line for every way that fails."""
    from . import server

    if loc.recording is None:
        raise location.BadLocation(_no_name_message(loc))
    admin = server.admin_engine(loc, readonly=readonly)
    try:
        with _server_errors(loc), admin.begin() as conn:
            if create:
                server.ensure_shared(conn)
            entry = server.find(conn, loc.recording)
            if entry is None and create:
                entry = server.create(conn, loc.recording, server.COMPLETE)
            if entry is None:
                raise RecordingNotFound(_not_found_message(conn, loc))
            if entry.state != server.COMPLETE:
                raise IncompleteRecording(
                    f"The recording '{loc.recording}' in '{loc.display}' is incomplete: a copy "
                    "into it was interrupted. Run the same ttd copy again to finish it."
                )
            if not readonly:
                server.add_missing_tables(conn, entry.schema_name)
    finally:
        admin.dispose()
    engine = server.recording_engine(loc, entry.schema_name, readonly=readonly)
    _translate_server_errors(engine, loc)
    return engine


def _no_name_message(loc: Location) -> str:
    return (
        f"'{loc.display}' names no recording: add ?recording=NAME to the URL "
        "(ttd list URL shows the recordings there)."
    )


def _not_found_message(conn, loc: Location) -> str:
    from . import server

    names = [e.name for e in server.entries(conn)]
    where = loc.with_recording(loc.recording).display
    if not names:
        return f"No recording '{loc.recording}' at '{where}': the database holds none."
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"No recording '{loc.recording}' at '{where}': the database holds {shown}."


def server_unavailable(loc: Location, exc: BaseException) -> ServerUnavailable:
    """The error for a server that cannot be reached or went away: the URL (no password)
    and the driver's first line."""
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    why = location.mask(lines[0] if lines else type(orig).__name__)
    why = why.removeprefix("connection failed: ").replace("FATAL:  ", "")
    return ServerUnavailable(
        f"The PostgreSQL server of '{loc.display}' cannot be reached: {why.rstrip('.')}."
    )


@contextmanager
def _server_errors(loc: Location):
    """A connection that fails or breaks becomes ServerUnavailable, one line; any other
    refusal (no permission) a RecordingError, one line."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise server_unavailable(loc, exc) from None
    except DatabaseError as exc:
        lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
        raise RecordingError(
            f"Cannot open the recording at '{loc.display}': {location.mask(lines[0]).rstrip('.')}."
        ) from None


def _translate_server_errors(engine: Engine, loc: Location) -> None:
    """Every use of the engine: a lost or refused connection is ServerUnavailable (one
    line naming the server) instead of the driver's traceback."""

    @event.listens_for(engine, "handle_error")
    def _lost(ctx):
        if ctx.is_pre_ping:  # a pooled connection the server dropped: the pool reconnects
            return
        if ctx.is_disconnect or isinstance(ctx.original_exception, _driver_connection_errors()):
            raise server_unavailable(loc, ctx.original_exception) from None


def _driver_connection_errors() -> tuple:
    import psycopg

    return (psycopg.OperationalError, psycopg.InterfaceError)


def _create_file(path: Path) -> None:
    """The empty file SQLite then fills: a directory that cannot take it is one line
    naming it, not SQLite's "unable to open database file"."""
    if not path.parent.exists():
        raise RecordingNotFound(f"Cannot create '{path}': directory does not exist.")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError as exc:
        raise CannotCreate(
            f"Cannot create '{path}': the directory '{path.parent}' does not "
            f"take new files ({exc.strerror})."
        ) from None


def _initialize(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))


@dataclass(eq=False)
class Recording:
    """One open recording: the handle every part of ttd passes down (the GDB plugin,
    rematerialization, the CLI), instead of each opening its own engine.

    name is what messages show: an SQLite file's absolute path, or a server URL with its
    password masked; location is where it is (open_recording(location) opens it again,
    credentials included). engine is checked (schema version) and read-only unless
    opened with readonly=False.
    """

    name: str
    engine: Engine
    readonly: bool = True
    location: Location | None = field(default=None, repr=False)
    _pageserver_uri: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.location is None:
            self.location = location.parse(self.name)

    @property
    def path(self) -> str | None:
        """The local SQLite file, or None for a recording on a server."""
        return self.location.path

    @property
    def pageserver_location(self) -> str:
        """What native/ttd-pageserver opens (store_open): the SQLite file, or a libpq
        connection URI (credentials included: never print it) whose sessions read this
        recording's schema and cannot write."""
        if not self.location.is_server:
            return self.location.path
        if self._pageserver_uri is None:
            from . import server

            self._pageserver_uri = server.pageserver_uri(self.location, self.engine)
        return self._pageserver_uri

    def session(self) -> Session:
        return Session(self.engine)

    @contextmanager
    def server_errors(self):
        """For the driver's own connections (engine.raw_connection(): SQLAlchemy neither
        wraps their errors nor calls handle_error): a lost or refused connection to the
        server is ServerUnavailable, one line naming it. Nothing to do for a file."""
        if not self.location.is_server:
            yield
            return
        try:
            yield
        except (OperationalError, InterfaceError, *_driver_connection_errors()) as exc:
            raise server_unavailable(self.location, exc) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_recording(
    name: str | os.PathLike | Location, *, readonly: bool = True, create: bool = False
) -> Recording:
    """Open (create=True: make when missing) and check a recording; see open_engine."""
    loc = _location(name)
    engine = open_engine(loc, readonly=readonly, create=create)
    return Recording(loc.display, engine, readonly=readonly and not create, location=loc)


def check_new(name: str | os.PathLike | Location) -> Location:
    """The Location of a recording about to be made on a server: BadLocation when the URL
    names none, CannotCreate when that recording exists already (a file's checks are
    its maker's: the file must not exist)."""
    loc = _location(name)
    if not loc.is_server:
        return loc
    if loc.recording is None:
        raise location.BadLocation(_no_name_message(loc))
    from . import server

    admin = server.admin_engine(loc, readonly=True)
    try:
        with _server_errors(loc), admin.connect() as conn:
            there = server.find(conn, loc.recording)
    finally:
        admin.dispose()
    if there is not None:
        raise CannotCreate(
            f"The recording '{loc.recording}' exists already at '{loc.display}'; name a new one."
        )
    return loc
