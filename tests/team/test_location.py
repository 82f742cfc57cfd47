"""Names of recordings: paths and URLs taken apart, passwords never shown (no server)."""

from __future__ import annotations

import os

import pytest

from snapshotdb.location import BadLocation, mask, parse


@pytest.mark.parametrize(
    "name, kind, display, recording",
    [
        ("/tmp/bank.db", "sqlite", "/tmp/bank.db", None),
        ("sqlite:////tmp/bank.db", "sqlite", "/tmp/bank.db", None),
        (
            "postgresql:///ttd?host=/run/ttd-pg&recording=bank",
            "postgresql",
            "postgresql:///ttd?host=/run/ttd-pg&recording=bank",
            "bank",
        ),
        (
            "postgres://alice@db.example:5433/ttd?recording=r-1.x",
            "postgresql",
            "postgresql://alice@db.example:5433/ttd?recording=r-1.x",
            "r-1.x",
        ),
        (
            "postgresql+psycopg://alice:pw@db/ttd?recording=a",
            "postgresql",
            "postgresql://alice:***@db/ttd?recording=a",
            "a",
        ),
        (
            "postgresql://alice@db/ttd?password=hunter2&recording=a",
            "postgresql",
            "postgresql://alice@db/ttd?password=***&recording=a",
            "a",
        ),
        ("postgresql://db/ttd", "postgresql", "postgresql://db/ttd", None),
    ],
    ids=[
        "path",
        "sqlite-url",
        "socket",
        "postgres-scheme",
        "password",
        "password-param",
        "no-recording",
    ],
)
def test_parse(name, kind, display, recording):
    loc = parse(name)
    assert (loc.kind, loc.display, loc.recording) == (kind, display, recording)


def test_relative_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse("r.db").path == os.path.join(tmp_path, "r.db")


def test_recording_is_not_sent_to_the_server():
    loc = parse("postgresql://alice:pw@db/ttd?sslmode=disable&recording=bank")
    assert loc.url.drivername == "postgresql+psycopg"
    assert dict(loc.url.query) == {"sslmode": "disable"}
    assert loc.libpq_uri() == "postgresql://alice:pw@db/ttd?sslmode=disable"


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "mysql://db/ttd?recording=a",
            r"^ttd keeps recordings in SQLite files and PostgreSQL databases, not 'mysql'",
        ),
        ("postgresql://db/ttd?recording=a%20b", r"^Invalid recording name 'a b': use 1 to 63"),
        ("postgresql://db/ttd?recording=-x", r"^Invalid recording name '-x'"),
        ("postgresql://db/ttd?recording=a&recording=b", r"names more than one recording\.$"),
        ("sqlite://", r"names no file"),
    ],
    ids=["other-database", "space", "leading-dash", "two-names", "sqlite-memory"],
)
def test_bad_names(name, message):
    with pytest.raises(BadLocation, match=message):
        parse(name)


def test_a_password_in_an_unparsable_url_is_not_shown():
    with pytest.raises(BadLocation) as info:
        parse("postgresql://alice:hunter2@db:notaport/ttd")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://alice:hunter2@db/ttd",
        "host=db password=hunter2 user=alice",
        "postgresql://db/ttd?password=hunter2&x=1",
    ],
)
def test_mask(text):
    assert "hunter2" not in mask(text)
