"""Recordings in a PostgreSQL database: made, found, listed, read-only, refused with one
line each (a real server: tests/team/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from snapshotdb import server
from snapshotdb.db import open_recording
from snapshotdb.errors import (
    IncompleteRecording,
    RecordingError,
    RecordingNotFound,
    ServerUnavailable,
)
from snapshotdb.location import BadLocation
from tests.team.pg_cluster import PASSWORD, PASSWORD_ROLE


def test_create_then_open_read_only(pg_db):
    url = pg_db + "&recording=bank"
    with open_recording(url, create=True) as rec:
        assert rec.name == url and rec.path is None
        with rec.engine.begin() as conn:
            conn.execute(text("INSERT INTO meta (key, value) VALUES ('note', 'writable')"))
    with open_recording(url) as rec, rec.engine.connect() as conn:
        assert conn.scalar(text("SELECT value FROM meta WHERE key = 'note'")) == "writable"
        with pytest.raises(DBAPIError, match="read-only transaction"):
            conn.execute(text("INSERT INTO meta (key, value) VALUES ('x', 'y')"))


def test_recordings_have_schemas_of_their_own(pg_db):
    for name in ("a", "b"):
        open_recording(f"{pg_db}&recording={name}", create=True).close()
    with server.admin_engine(open_recording(pg_db + "&recording=a").location).connect() as c:
        entries = server.entries(c)
    assert [(e.name, e.state) for e in entries] == [("a", "complete"), ("b", "complete")]
    assert len({e.schema_name for e in entries}) == 2


def test_a_missing_recording_names_those_there(pg_db):
    open_recording(pg_db + "&recording=bank", create=True).close()
    with pytest.raises(
        RecordingNotFound,
        match=r"^No recording 'nope' at '.*recording=nope': "
        r"the database holds bank\.$",
    ):
        open_recording(pg_db + "&recording=nope")


def test_an_empty_database_holds_none(pg_db):
    with pytest.raises(RecordingNotFound, match=r"the database holds none\.$"):
        open_recording(pg_db + "&recording=bank")


def test_a_url_without_a_recording_name(pg_db):
    with pytest.raises(BadLocation, match=r"names no recording: add \?recording=NAME"):
        open_recording(pg_db)


def test_an_incomplete_copy_is_not_opened(pg_db):
    url = pg_db + "&recording=half"
    rec = open_recording(url, create=True)
    with server.admin_engine(rec.location).begin() as conn:
        server.set_state(conn, "half", server.COPYING)
    rec.close()
    with pytest.raises(
        IncompleteRecording,
        match=r"^The recording 'half' in '.*' is incomplete: "
        r"a copy into it was interrupted\.",
    ):
        open_recording(url)


def test_no_server_there(tmp_path):
    url = f"postgresql://postgres@/ttd?host={tmp_path}&recording=bank"
    with pytest.raises(
        ServerUnavailable,
        match=r"^The PostgreSQL server of '.*recording=bank' "
        r"cannot be reached: .*No such file",
    ):
        open_recording(url)


def test_password_from_the_url_and_never_shown(pg, pg_database):
    database = pg_database
    pg.sql(f"GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE}", database=database)
    good = pg.url(database, "bank", user=PASSWORD_ROLE, password=PASSWORD)
    with open_recording(good, create=True) as rec:
        assert PASSWORD not in rec.name and ":***@" in rec.name
        assert PASSWORD in rec.pageserver_location  # what libpq gets, never printed
    bad = pg.url(database, "bank", user=PASSWORD_ROLE, password="wrong-" + PASSWORD)
    with pytest.raises(ServerUnavailable, match="password authentication failed") as info:
        open_recording(bad)
    assert PASSWORD not in str(info.value) and "wrong-" not in str(info.value)


def test_password_from_pgpassfile(pg, pg_database, tmp_path, monkeypatch):
    database = pg_database
    pg.sql(f"GRANT ALL ON SCHEMA public TO {PASSWORD_ROLE}", database=database)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:{database}:{PASSWORD_ROLE}:{PASSWORD}\n")
    passfile.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    with open_recording(pg.url(database, "bank", user=PASSWORD_ROLE), create=True) as rec:
        assert PASSWORD not in rec.name


def test_no_permission_is_one_line(pg, pg_database):
    database = pg_database
    open_recording(pg.url(database, "bank"), create=True).close()
    url = pg.url(database, "bank", user=PASSWORD_ROLE, password=PASSWORD)
    with pytest.raises(
        RecordingError,
        match=r"^Cannot open the recording at '.*': permission "
        r"denied for schema ttd\.$",
    ):
        open_recording(url)
