"""Page contents stored once: the ids of a batch of pages' contents, inserting the new ones.

The writer keeps no table of digests in memory (a 1 GiB process has 262144 of them): the
unique index on page_content.digest is the table. On SQLite a batch is one
`INSERT OR IGNORE` executemany; when every row went in (the usual case: new contents),
their ids are the next ones in order (an INTEGER PRIMARY KEY takes max(id) + 1, read just
before: the native bulk path inserts in the same transaction) and nothing is looked up;
otherwise the batch's ids are read back by digest. Other databases look the digests up
first and insert what is missing.

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
        if "xxh3" in columns:
            return (
                "INSERT OR IGNORE INTO page_content (digest, codec, data, xxh3) VALUES (?, ?, ?, ?)"
            )
        return "INSERT OR IGNORE INTO page_content (digest, codec, data) VALUES (?, ?, ?)"

    def ids(self, rows: list[tuple[bytes, str, bytes, bytes]]) -> list[int]:
        """The ids of (digest, codec, data, check) rows with distinct digests, in order; rows
        whose digest is not stored yet are inserted."""
        if not rows:
            return []
        if self.sqlite:
            first = (self.conn.scalar(select(func.max(PageContent.id))) or 0) + 1
            if "xxh3" not in self._insert_sql:
                rows = [row[:3] for row in rows]
            cursor = self.conn.exec_driver_sql(self._insert_sql, rows)
            self.inserted += max(cursor.rowcount, 0)
            if cursor.rowcount == len(rows):
                return list(range(first, first + len(rows)))
            found = self._lookup([r[0] for r in rows])
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

    def _lookup(self, digests: list[bytes]) -> dict[bytes, int]:
        found: dict[bytes, int] = {}
        for i in range(0, len(digests), LOOKUP_BATCH):
            batch = digests[i : i + LOOKUP_BATCH]
            found.update(
                (bytes(d), i)
                for d, i in self.conn.execute(
                    select(_TABLE.c.digest, _TABLE.c.id).where(_TABLE.c.digest.in_(batch))
                )
            )
        return found
