"""Read a recording's memory at a tick in bulk: the page map once, contents cached."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from snapshotdb import queries
from snapshotdb.models import PageContent
from snapshotdb.pages import PAGE_SIZE, ZERO_PAGE


class TickMemory:
    def __init__(self, session: Session, tick: int):
        self.session = session
        self.tick = tick
        self.map = queries.page_map(session, tick)
        self._cache: dict[int, bytes] = {}

    def page(self, rec_addr: int) -> bytes:
        cid = self.map.get(rec_addr)
        if cid is None:
            return ZERO_PAGE
        if cid not in self._cache:
            self._cache[cid] = queries.content(self.session, cid, where=f"{rec_addr:#x}")
        return self._cache[cid]

    def read(self, rec_addr: int, length: int) -> bytes:
        assert rec_addr % PAGE_SIZE == 0 and length % PAGE_SIZE == 0
        return b"".join(self.page(a) for a in range(rec_addr, rec_addr + length, PAGE_SIZE))

    def digests(self) -> dict[int, bytes]:
        """rec_addr -> sha256 of every page with content at this tick."""
        by_id = dict(self.session.execute(select(PageContent.id, PageContent.digest)).all())
        return {a: by_id[c] for a, c in self.map.items()}


# page_content as a recording made before page_digest has it: a UNIQUE digest constraint
OLD_PAGE_CONTENT = """
CREATE TABLE old_content (
    id INTEGER NOT NULL, digest BLOB NOT NULL, codec VARCHAR(8) NOT NULL,
    data BLOB NOT NULL, xxh3 BLOB,
    CONSTRAINT pk_page_content PRIMARY KEY (id),
    CONSTRAINT uq_page_content_digest UNIQUE (digest));
INSERT INTO old_content SELECT id, digest, codec, data, xxh3 FROM page_content;
DROP TABLE page_content;
ALTER TABLE old_content RENAME TO page_content;
"""


def to_old_form(db, *, keep_digests: bool = False) -> None:
    """Turn a recording's page_content into the form it had before page_digest (and drop
    page_digest unless keep_digests)."""
    import sqlite3

    drop = "" if keep_digests else "DROP TABLE page_digest;"
    conn = sqlite3.connect(db)
    conn.executescript(f"PRAGMA foreign_keys=OFF; BEGIN; {drop} {OLD_PAGE_CONTENT} COMMIT;")
    conn.close()


def digest_table_problems(db) -> list[str]:
    """What is wrong with an SQLite recording's page_digest: every page_content row must
    be found by its digest there, and every page_digest row name a content with that
    digest. [] when whole."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        unfound = conn.execute(
            "SELECT count(*) FROM page_content c LEFT JOIN page_digest d "
            "ON d.digest = c.digest WHERE d.digest IS NULL"
        ).fetchone()[0]
        wrong = conn.execute(
            "SELECT count(*) FROM page_digest d LEFT JOIN page_content c "
            "ON c.id = d.content_id WHERE c.digest IS NULL OR c.digest != d.digest"
        ).fetchone()[0]
        contents = conn.execute("SELECT count(*) FROM page_content").fetchone()[0]
    conn.close()
    problems = [f"{unfound} contents not in page_digest"] if unfound else []
    problems += [f"{wrong} page_digest rows naming another content"] if wrong else []
    return problems + ([] if contents else ["no contents"])


def global_value(session: Session, exe, name: str, tick: int, size: int = 8) -> int:
    """The little-endian value of the executable's global `name` at `tick` (a PIE's
    address: the .symtab value from the mapping of the executable's offset 0)."""
    from elftools.elf.elffile import ELFFile

    with open(exe, "rb") as f:
        offset = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]["st_value"]
    snap = queries.snapshot_at(session, tick)
    base = next(m.start for m in snap.mappings if m.offset == 0 and m.path == str(exe))
    return int.from_bytes(queries.read_memory(session, base + offset, size, tick), "little")
