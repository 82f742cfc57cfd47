"""Where ttd copy writes (copy.py): a new SQLite file or a new recording in a PostgreSQL
database, marked incomplete until the copy's last transaction.

    Destination.lookup(table, digests)      -> {digest: id} of the contents there already
    Destination.insert_contents(table, rows) -> the ids of new (digest, codec, data[, size])
                                               rows, committed (one transaction a batch)
    with Destination.begin_final() as conn:  the last transaction: insert_versions(conn,
                                               rows), mark_complete(conn)

A file is incomplete while its meta holds copy_state = "copying" (open_recording refuses
it); a server recording while its entry's state is "copying" (server.py). Contents go in
with COPY ... BINARY on a server (ids taken from the table's sequence first, so the
versions can name them in the same run); executemany on a file.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from . import db, location, server
from .errors import CannotCreate, RecordingError
from .location import Location
from .models import Meta

COPY_STATE, COPY_SOURCE = "copy_state", "copy_source"  # a file's meta keys while copying
LOOKUP_BATCH = 500  # digests per IN (...) on SQLite
PG_LOOKUP_BATCH = 20000  # digests per = ANY(...) on a server
RETRIES = 3  # batches redone when another copy stored some of their contents meanwhile
# Batches sent at once into a server, each on a connection of its own: the server's
# ingest (TOAST, WAL, indexes: its side costs most) of one overlaps the reading and
# sending of the next, and two backends use two cores. A 1 GiB copy, server defaults,
# 2 cores, median of 3: 1 stream 7.8 s, 2 streams 6.2 s, 3 streams 7.5 s.
STREAMS = int(os.environ.get("TTD_COPY_STREAMS", "2"))


class Destination:
    """A destination being filled; see the module docstring."""

    location: Location
    engine: Engine
    resumed: bool = False
    streams: int = 1  # batches of contents sent at once (insert_contents from threads)

    def lookup(self, table: str, digests: list[bytes]) -> dict[bytes, int]:
        raise NotImplementedError

    def insert_contents(self, table: str, rows: list[tuple]) -> list[int]:
        raise NotImplementedError

    @contextmanager
    def begin_final(self):
        with self.engine.begin() as conn:
            yield conn

    def insert_versions(self, conn, rows) -> None:
        raise NotImplementedError

    def mark_complete(self, conn) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.engine.dispose()


def open_destination(name: str | os.PathLike, token: str) -> Destination:
    """The destination `name`, new or an unfinished copy of the source `token` names."""
    loc = location.parse(name)
    return _ServerDestination(loc, token) if loc.is_server else _FileDestination(loc, token)


def _columns(rows: list[tuple]) -> tuple[str, ...]:
    """The content columns of rows (digest, codec, data), with size for a file's."""
    return ("digest", "codec", "data") + (("size",) if rows and len(rows[0]) == 4 else ())


class _FileDestination(Destination):
    def __init__(self, loc: Location, token: str):
        self.location = loc
        if os.path.lexists(loc.path):
            self.engine = db._sqlite_engine(loc.path, readonly=False)
            self.resumed = True
            self._check_resumable(token)
        else:
            self.engine = db.open_engine(loc, create=True)
            with self.engine.begin() as conn:
                conn.execute(
                    insert(Meta),
                    [{"key": COPY_STATE, "value": "copying"}, {"key": COPY_SOURCE, "value": token}],
                )

    def _check_resumable(self, token: str) -> None:
        try:
            with self.engine.connect() as conn:
                meta = dict(conn.execute(select(Meta.key, Meta.value)).all())
        except Exception:  # not a recording at all: still refused as "exists"
            meta = {}
        if meta.get(COPY_STATE) != "copying":
            self.engine.dispose()
            raise CannotCreate(
                f"'{self.location.display}' exists already; ttd copy writes a new recording."
            )
        if meta.get(COPY_SOURCE) != token:
            self.engine.dispose()
            raise CannotCreate(
                f"'{self.location.display}' is an unfinished copy of "
                f"{meta.get(COPY_SOURCE)}; remove it to copy something else "
                "there."
            )

    def lookup(self, table: str, digests: list[bytes]) -> dict[bytes, int]:
        # page_content's digests are in page_digest (models.py); file_content's in itself
        source, id_column = (
            ("page_digest", "content_id") if table == "page_content" else (table, "id")
        )
        found: dict[bytes, int] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(digests), LOOKUP_BATCH):
                batch = digests[i : i + LOOKUP_BATCH]
                marks = ",".join("?" * len(batch))
                found.update(
                    (bytes(d), n)
                    for d, n in conn.exec_driver_sql(
                        f"SELECT digest, {id_column} FROM {source} WHERE digest IN ({marks})",
                        tuple(batch),
                    )
                )
        return found

    def insert_contents(self, table: str, rows: list[tuple]) -> list[int]:
        columns = _columns(rows)
        with self.engine.begin() as conn:
            first = (conn.exec_driver_sql(f"SELECT max(id) FROM {table}").scalar() or 0) + 1
            ids = list(range(first, first + len(rows)))
            marks = ",".join("?" * (len(columns) + 1))
            conn.exec_driver_sql(
                f"INSERT INTO {table} (id, {', '.join(columns)}) VALUES ({marks})",
                [(i, *row) for i, row in zip(ids, rows, strict=True)],
            )
            if table == "page_content":
                conn.exec_driver_sql(
                    "INSERT INTO page_digest (digest, content_id) VALUES (?, ?)",
                    [(row[0], i) for i, row in zip(ids, rows, strict=True)],
                )
        return ids

    def insert_versions(self, conn, rows) -> None:
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) >= 65536:
                self._versions(conn, batch)
                batch = []
        self._versions(conn, batch)

    @staticmethod
    def _versions(conn, batch: list[tuple]) -> None:
        if batch:
            conn.exec_driver_sql(
                "INSERT INTO page_version (address, first_tick, content_id) VALUES (?, ?, ?)", batch
            )

    def mark_complete(self, conn) -> None:
        conn.execute(delete(Meta).where(Meta.key == COPY_STATE))


class _ServerDestination(Destination):
    streams = STREAMS

    def __init__(self, loc: Location, token: str):
        self.location = loc
        self._sequences: dict[str, str] = {}
        if loc.recording is None:
            raise location.BadLocation(db._no_name_message(loc))
        admin = server.admin_engine(loc)
        try:
            with db._server_errors(loc), admin.begin() as conn:
                server.ensure_shared(conn)
                entry = server.find(conn, loc.recording)
                if entry is None:
                    entry = server.create(conn, loc.recording, server.COPYING, source=token)
                else:
                    self._check_resumable(entry, token)
                    self.resumed = True
        finally:
            admin.dispose()
        self.engine = server.recording_engine(loc, entry.schema_name, readonly=False)
        db._translate_server_errors(self.engine, loc)

    def _check_resumable(self, entry: server.Entry, token: str) -> None:
        where = self.location.display
        if entry.state != server.COPYING:
            raise CannotCreate(
                f"The recording '{entry.name}' exists already at '{where}'; name a new one."
            )
        if entry.source != token:
            raise CannotCreate(
                f"The recording '{entry.name}' at '{where}' is an unfinished "
                f"copy of {entry.source}; name a new one."
            )

    def _raw(self):
        return self.engine.raw_connection()

    def lookup(self, table: str, digests: list[bytes]) -> dict[bytes, int]:
        found: dict[bytes, int] = {}
        raw = self._raw()
        try:
            with raw.cursor() as cur:
                for i in range(0, len(digests), PG_LOOKUP_BATCH):
                    cur.execute(  # %b: the digests in binary, not as hex text to parse
                        f"SELECT digest, id FROM {table} WHERE digest = ANY(%b)",
                        (digests[i : i + PG_LOOKUP_BATCH],),
                    )
                    found.update((bytes(d), n) for d, n in cur.fetchall())
            raw.commit()
        finally:
            raw.close()
        return found

    def insert_contents(self, table: str, rows: list[tuple]) -> list[int]:
        """COPY the rows in with ids from the table's sequence; a batch some of whose
        contents another writer stored meanwhile (unique digest) is redone for the rest.
        Rows go in digest order: two copies of the same pages then wait for each other's
        digests in one order, never in a cycle (a deadlock aborts one; redone likewise)."""
        import psycopg

        ids: dict[bytes, int] = {}
        for _ in range(RETRIES):
            todo = sorted(r for r in rows if r[0] not in ids)
            try:
                ids.update(self._copy_in(table, todo))
                return [ids[r[0]] for r in rows]
            except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
                ids.update(self.lookup(table, [r[0] for r in todo]))
        raise RecordingError(
            f"Cannot store contents into '{self.location.display}': other "
            "writers keep storing the same ones; try again."
        )

    def _copy_in(self, table: str, rows: list[tuple]) -> dict[bytes, int]:
        if not rows:
            return {}
        columns = _columns(rows)
        types = ["int4", "bytea", "text", "bytea"] + (["int8"] if "size" in columns else [])
        raw = self._raw()
        try:
            with raw.cursor() as cur:
                cur.execute(
                    "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                    (self._sequence(cur, table), len(rows)),
                )
                new = [n for (n,) in cur.fetchall()]
                with cur.copy(
                    f"COPY {table} (id, {', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(types)
                    for n, row in zip(new, rows, strict=True):
                        copy.write_row((n, *row))
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
        return {row[0]: n for n, row in zip(new, rows, strict=True)}

    def _sequence(self, cur, table: str) -> str:
        """The sequence of table's ids, looked up once (per row it cost the server more
        than the nextval itself)."""
        if table not in self._sequences:
            cur.execute(
                "SELECT pg_get_serial_sequence(%s, 'id')", (f"{server.SHARED_SCHEMA}.{table}",)
            )
            self._sequences[table] = cur.fetchone()[0]
        return self._sequences[table]

    def insert_versions(self, conn, rows) -> None:
        cur = conn.connection.dbapi_connection.cursor()
        with cur.copy(
            "COPY page_version (address, first_tick, content_id) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int4", "int4"])
            for row in rows:
                copy.write_row(row)

    def mark_complete(self, conn) -> None:
        server.add_content_key(conn)
        server.set_state(conn, self.location.recording, server.COMPLETE)
