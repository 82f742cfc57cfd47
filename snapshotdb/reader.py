"""Fast page reads for hot loops (reports, benchmarks, tests that read whole layouts).

queries.page_at builds a SQLAlchemy statement per call; PageReader compiles the
lookup once and runs it on one DBAPI cursor, which is what "page at (A, T)"
costs when it matters. Same SQL as the C page server (docs/internals.md).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from .pages import ZERO_PAGE, decode

PAGE_AT_SQL = text(
    "SELECT c.codec, c.data, c.digest FROM page_version v "
    "LEFT JOIN page_content c ON c.id = v.content_id "
    "WHERE v.address = :address AND v.first_tick <= :tick "
    "ORDER BY v.first_tick DESC LIMIT 1"
)


class PageReader:
    """Reads verified pages at one tick. Use as a context manager, or call close()."""

    def __init__(self, engine: Engine, tick: int):
        self.tick = tick
        # A DBAPI cursor and the statement compiled once for this dialect: SQLAlchemy's
        # per-execute overhead was half of a lookup's time.
        self._raw = engine.raw_connection()
        self._cursor = self._raw.cursor()
        compiled = PAGE_AT_SQL.compile(dialect=engine.dialect)
        self._sql = str(compiled)
        self._positional = compiled.positional
        self._order = compiled.positiontup or []

    def page(self, rec_addr: int) -> bytes:
        params = {"address": rec_addr, "tick": self.tick}
        if self._positional:
            params = tuple(params[name] for name in self._order)
        self._cursor.execute(self._sql, params)
        row = self._cursor.fetchone()
        if row is None or row[0] is None:
            return ZERO_PAGE
        codec, data, digest = row
        return decode(codec, data, digest, where=f"tick {self.tick}, address {rec_addr:#x}")

    def read(self, rec_addr: int, length: int) -> bytes:
        out = bytearray()
        page = rec_addr & ~0xFFF
        while page < rec_addr + length:
            out += self.page(page)
            page += 0x1000
        skip = rec_addr & 0xFFF
        return bytes(out[skip : skip + length])

    def close(self) -> None:
        self._cursor.close()
        self._raw.close()

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
