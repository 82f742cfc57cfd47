"""Page contents stored once: the ids of a batch of pages' contents, inserting the new ones.

The writer keeps no table of digests in memory (a 1 GiB process has 262144 of them): the
database is the table. On SQLite, page_digest finds a content by its digest (models.py);
a batch is one lookup there, then one executemany of the new contents, with the next ids
in order (an INTEGER PRIMARY KEY takes max(id) + 1, read just before: the native bulk
path inserts in the same transaction), and one of their digests. On PostgreSQL, the
shared page_content's unique index finds them; the digests are looked up first and what
is missing inserted.

Each row carries the page's check (pages.check_of), stored in page_content.xxh3 where the
table has that column: an SQLite recording made by this ttd (one made before it is
appended to without; the PostgreSQL store's page server reads sha256 alone).
"""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from ..models import PageContent

LOOKUP_BATCH = 500  # digests per "IN (...)", well under SQLite's variable limit
_TABLE = PageContent.__table__


class ContentStore:
    """Resolves digests to page_content ids on one connection, inside its transaction."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.inserted = 0
        self._insert_sql = self._sqlite_insert() if self.sqlite else ""

    def _sqlite_insert(self) -> str:
        columns = {row[1] for row in self.conn.exec_driver_sql("PRAGMA table_info(page_content)")}
        names = ["id", "digest", "codec", "data"] + (["xxh3"] if "xxh3" in columns else [])
        marks = ", ".join("?" * len(names))
        # OR IGNORE: a recording made before page_digest has a UNIQUE digest constraint,
        # and its page_digest misses what an older ttd stored after it was added
        return f"INSERT OR IGNORE INTO page_content ({', '.join(names)}) VALUES ({marks})"

    def ids(self, rows: list[tuple[bytes, str, bytes, bytes]]) -> list[int]:
        """The ids of (digest, codec, data, check) rows with distinct digests, in order; rows
        whose digest is not stored yet are inserted."""
        if not rows:
            return []
        if self.sqlite:
            found = self._lookup_sqlite([r[0] for r in rows])
            missing = [r for r in rows if r[0] not in found]
            if missing:
                found.update(self._insert_sqlite(missing))
            return [found[r[0]] for r in rows]
        found = self._lookup([r[0] for r in rows])
        missing = [r for r in rows if r[0] not in found]
        if missing:
            self.conn.execute(
                insert(PageContent),
                [{"digest": d, "codec": c, "data": data} for d, c, data, _ in missing],
            )
            self.inserted += len(missing)
            found.update(self._lookup([r[0] for r in missing]))
        return [found[r[0]] for r in rows]

    def _insert_sqlite(self, rows: list[tuple]) -> dict[bytes, int]:
        """Insert rows page_digest does not know, with the next ids; add their digests."""
        first = (self.conn.scalar(select(func.max(PageContent.id))) or 0) + 1
        width = 5 if "xxh3" in self._insert_sql else 4
        numbered = [(first + i, *row)[:width] for i, row in enumerate(rows)]
        cursor = self.conn.exec_driver_sql(self._insert_sql, numbered)
        if cursor.rowcount == len(rows):
            ids = {row[1]: row[0] for row in numbered}
        else:  # stored already, by a writer that did not keep page_digest
            ids = self._lookup([r[0] for r in rows])
        self.inserted += max(cursor.rowcount, 0)
        self.conn.exec_driver_sql(
            "INSERT INTO page_digest (digest, content_id) VALUES (?, ?)", list(ids.items())
        )
        return ids

    def _lookup_sqlite(self, digests: list[bytes]) -> dict[bytes, int]:
        def fetch(batch):
            marks = ",".join("?" * len(batch))
            return self.conn.exec_driver_sql(
                f"SELECT digest, content_id FROM page_digest WHERE digest IN ({marks})",
                tuple(batch),
            )

        return _found(digests, fetch)

    def _lookup(self, digests: list[bytes]) -> dict[bytes, int]:
        """By page_content.digest: PostgreSQL's unique index (or an old recording's)."""
        return _found(
            digests,
            lambda batch: self.conn.execute(
                select(_TABLE.c.digest, _TABLE.c.id).where(_TABLE.c.digest.in_(batch))
            ),
        )


def _found(digests: list[bytes], fetch) -> dict[bytes, int]:
    """{digest: id} of the digests fetch(batch) finds, LOOKUP_BATCH digests a query."""
    found: dict[bytes, int] = {}
    for i in range(0, len(digests), LOOKUP_BATCH):
        found.update((bytes(d), n) for d, n in fetch(digests[i : i + LOOKUP_BATCH]))
    return found
