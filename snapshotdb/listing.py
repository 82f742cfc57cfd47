"""The recordings a store holds (`ttd list`): every recording of a PostgreSQL database,
or the one of a SQLite file, each as a plain dict:

    {"name", "state" ("complete" | "copying"), "snapshots", "ticks" ([first, last] or
     None), "program" (the recorded executable), "made" (ISO time), "url" (what opens
     it, password masked), "source" (what a copy came from, or None)}

A copy that has not finished is listed as "copying", never as complete: its rows come
in the copy's last transaction, so it shows no snapshots either.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import text

from . import db, location, server
from .errors import IncompleteRecording
from .location import Location

_SCHEMA_RE = re.compile(rf"{server.SCHEMA_PREFIX}\d+")


def list_recordings(name: str | os.PathLike) -> list[dict]:
    loc = location.parse(name)
    return _server_list(loc) if loc.is_server else _file_list(loc)


def _file_list(loc: Location) -> list[dict]:
    from .copy_dest import COPY_SOURCE

    path = Path(loc.path)
    db._check_sqlite_file(path)  # one line for a file that is missing or not SQLite
    engine = db._sqlite_engine(path, readonly=True)
    try:
        try:
            db._check_schema(engine, loc.display)
            state = server.COMPLETE
        except IncompleteRecording:
            state = server.COPYING
        with engine.connect() as conn:
            source = conn.scalar(text("SELECT value FROM meta WHERE key = :k"), {"k": COPY_SOURCE})
            row = _summary(conn, "")
    finally:
        engine.dispose()
    return [dict(name=path.name, state=state, url=loc.display, source=source, **row)]


def _server_list(loc: Location) -> list[dict]:
    admin = server.admin_engine(loc, readonly=True)
    try:
        with db._server_errors(loc), admin.connect() as conn:
            rows = []
            for entry in server.entries(conn):
                if not _SCHEMA_RE.fullmatch(entry.schema_name):
                    continue  # not one of ours: never interpolated into SQL
                summary = _summary(conn, entry.schema_name + ".")
                rows.append(
                    dict(
                        name=entry.name,
                        state=entry.state,
                        url=loc.with_recording(entry.name).display,
                        source=entry.source,
                        **summary,
                    )
                )
            return rows
    finally:
        admin.dispose()


def _summary(conn, prefix: str) -> dict:
    """Snapshots, ticks, program and time of the recording whose tables are at prefix."""
    count, lo, hi = conn.execute(
        text(f"SELECT count(*), min(tick), max(tick) FROM {prefix}snapshot")
    ).one()
    rec = conn.execute(
        text(f"SELECT exe_path, created FROM {prefix}recording ORDER BY id LIMIT 1")
    ).first()
    made = None if rec is None or rec[1] is None else str(rec[1])[:19]  # YYYY-MM-DD HH:MM:SS
    return {
        "snapshots": count,
        "ticks": None if lo is None else [lo, hi],
        "program": None if rec is None else rec[0],
        "made": made,
    }
