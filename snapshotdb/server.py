"""Many recordings in one PostgreSQL database.

    schema ttd                              shared by every recording of the database
      recordings (name, schema_name, state, created, source)      the list (`ttd list`)
      page_content (id, digest, codec, data)   pages, stored once per distinct content
      file_content (id, digest, size, codec, data)   ELF files, stored once likewise
    schema ttd_r1, ttd_r2, ...              one per recording: the SQLite file's other
      meta, recording, snapshot, thread,    tables, as models.py defines them; their
      mapping, page_version, recorded_file  content ids point into ttd's tables

A recording's connections run with search_path = its schema, then ttd: every query
of snapshotdb and of the page server (native/pageserver/store_pg.c) is the one it
runs on a SQLite file, unchanged. Read-only opens also set
default_transaction_read_only, so nothing they run can write.

state: "complete" (written by ttd record, ttd snapshot, ttd import-core: each snapshot
is one transaction, so it is whole at every moment) or "copying" (ttd copy has not
finished: not opened, listed as incomplete, finished by running the copy again).
Schema names come from a sequence, never from the recording's name: a name is data,
not SQL. DDL runs under an advisory lock, so two first writers do not collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, create_engine, func, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import AddConstraint, CreateIndex, CreateTable

from .location import Location

SHARED_SCHEMA = "ttd"
COMPLETE, COPYING = "complete", "copying"
SCHEMA_PREFIX = "ttd_r"
DDL_LOCK = 0x74746401  # pg_advisory_xact_lock key: "ttd" 1

_registry_md = MetaData(schema=SHARED_SCHEMA)
RECORDINGS = Table(
    "recordings",
    _registry_md,
    Column("name", String(63), primary_key=True),
    Column("schema_name", String(63), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("created", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("source", Text),  # what a copy came from (display form: no password)
)


@dataclass
class Entry:
    """One recording of the database, as the list holds it."""

    name: str
    schema_name: str
    state: str
    created: object = None
    source: str | None = None


def shared_tables():
    """The models' tables that every recording of a database shares."""
    from .models import FileContent, PageContent

    return [PageContent.__table__, FileContent.__table__]


def recording_tables():
    from .models import Base, PageDigest

    # page_digest is an SQLite recording's: here page_content's unique index finds a digest
    left_out = set(shared_tables()) | {PageDigest.__table__}
    return [t for t in Base.metadata.sorted_tables if t not in left_out]


def _options(loc: Location, schema_name: str | None, readonly: bool) -> str:
    """libpq's `options` for a session: the search path, read-only transactions; after
    whatever options the URL gave."""
    options = [] if schema_name is None else [f"-c search_path={schema_name},{SHARED_SCHEMA}"]
    if readonly:
        options.append("-c default_transaction_read_only=on")
    given = loc.url.query.get("options")
    return " ".join(([given] if given else []) + options)


def admin_engine(loc: Location, *, readonly: bool = False) -> Engine:
    """An engine for the list itself (no recording's schema), one connection per use."""
    return create_engine(
        loc.url,
        poolclass=NullPool,
        connect_args={"options": _options(loc, None, readonly), "application_name": "ttd"},
    )


def recording_engine(loc: Location, schema_name: str, *, readonly: bool) -> Engine:
    """The engine of one recording: its schema first on the search path, then the shared
    one; read-only sessions when readonly."""
    return create_engine(
        loc.url,
        pool_pre_ping=True,
        pool_size=1,
        max_overflow=16,
        connect_args={"options": _options(loc, schema_name, readonly), "application_name": "ttd"},
    )


def schema_of(engine: Engine) -> str:
    """The schema of the recording an engine from recording_engine() reads."""
    with engine.connect() as conn:
        return conn.scalar(text("SELECT current_schema()"))


def pageserver_uri(loc: Location, engine: Engine) -> str:
    """A libpq URI for native/ttd-pageserver: the recording's schema on the search path,
    read-only transactions, application_name ttd-pageserver. Holds the credentials the
    URL holds: never print it."""
    query = dict(loc.url.query)
    query.update(options=_options(loc, schema_of(engine), True), application_name="ttd-pageserver")
    base = loc.url.set(drivername="postgresql", query={})
    # libpq decodes %XX in a URI's values but not "+" (urlencode's space)
    params = [(k, x) for k, v in query.items() for x in (v if isinstance(v, tuple) else (v,))]
    return (
        base.render_as_string(hide_password=False)
        + "?"
        + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    )


def has_registry(conn: Connection) -> bool:
    return conn.scalar(text("SELECT to_regclass('ttd.recordings') IS NOT NULL"))


def find(conn: Connection, name: str) -> Entry | None:
    if not has_registry(conn):
        return None
    row = conn.execute(RECORDINGS.select().where(RECORDINGS.c.name == name)).first()
    return None if row is None else Entry(**row._mapping)


def entries(conn: Connection) -> list[Entry]:
    if not has_registry(conn):
        return []
    rows = conn.execute(RECORDINGS.select().order_by(RECORDINGS.c.name))
    return [Entry(**row._mapping) for row in rows]


def _ddl_lock(conn: Connection) -> None:
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DDL_LOCK})


def ensure_shared(conn: Connection) -> None:
    """The shared schema, the list and the shared tables, made when missing (inside the
    caller's transaction, under the DDL lock)."""
    _ddl_lock(conn)
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA}"))
    conn.execute(text(f"CREATE SEQUENCE IF NOT EXISTS {SHARED_SCHEMA}.schema_seq"))
    _registry_md.create_all(conn)
    conn.execute(text(f"SET LOCAL search_path = {SHARED_SCHEMA}"))
    from .models import Base

    Base.metadata.create_all(conn, tables=shared_tables())
    for table in shared_tables():  # zstd frames already: no pglz attempt, stored aside
        conn.execute(
            text(f"ALTER TABLE {SHARED_SCHEMA}.{table.name} ALTER COLUMN data SET STORAGE EXTERNAL")
        )


def create(conn: Connection, name: str, state: str, source: str | None = None) -> Entry:
    """A new recording's entry and its schema with empty tables (the caller's
    transaction: all or nothing)."""
    from .models import Base

    ensure_shared(conn)
    number = conn.scalar(text(f"SELECT nextval('{SHARED_SCHEMA}.schema_seq')"))
    schema_name = f"{SCHEMA_PREFIX}{number}"
    conn.execute(text(f"CREATE SCHEMA {schema_name}"))
    conn.execute(text(f"SET LOCAL search_path = {schema_name}, {SHARED_SCHEMA}"))
    if state == COPYING:  # page_version's foreign key comes with the copy's last rows
        _create_without_content_key(conn)
    else:
        Base.metadata.create_all(conn, tables=recording_tables())
    from .models import SCHEMA_VERSION, Meta

    conn.execute(Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    conn.execute(
        RECORDINGS.insert().values(name=name, schema_name=schema_name, state=state, source=source)
    )
    conn.execute(text(f"SET LOCAL search_path = {SHARED_SCHEMA}"))
    return find(conn, name)


def _create_without_content_key(conn: Connection) -> None:
    """The recording's tables, page_version without its foreign key to page_content:
    checked row by row, the key cost a copy's last transaction more than the rows
    themselves (0.8 s of 1.3 s for the 262144 versions of a 1 GiB recording)."""
    from .models import Base, PageVersion

    versions = PageVersion.__table__
    Base.metadata.create_all(conn, tables=[t for t in recording_tables() if t is not versions])
    conn.execute(CreateTable(versions, include_foreign_key_constraints=[]))
    for index in versions.indexes:
        conn.execute(CreateIndex(index))


def add_content_key(conn: Connection) -> None:
    """page_version's foreign key to page_content, when the recording's tables lack it
    (made by _create_without_content_key): checked in one query over the rows. Holds a
    lock that pauses writers of page_content (not readers) until the transaction ends:
    run it last."""
    from .models import PageVersion

    key = next(iter(PageVersion.__table__.foreign_key_constraints))
    there = conn.scalar(
        text(
            "SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = 'page_version'::regclass AND conname = :name"
        ),
        {"name": key.name},
    )
    if not there:
        conn.execute(AddConstraint(key))


def set_state(conn: Connection, name: str, state: str) -> None:
    conn.execute(RECORDINGS.update().where(RECORDINGS.c.name == name).values(state=state))


def add_missing_tables(conn: Connection, schema_name: str) -> None:
    """Tables of models.py a recording's schema lacks (made by an older ttd), added."""
    from .models import Base

    _ddl_lock(conn)
    conn.execute(text(f"SET LOCAL search_path = {schema_name}, {SHARED_SCHEMA}"))
    Base.metadata.create_all(conn, tables=recording_tables())
