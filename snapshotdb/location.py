"""Where a recording is: a name as the user gives it, taken apart.

    /tmp/bank.db, ~/r.db, sqlite:////tmp/bank.db     an SQLite file (the URL form too)
    postgresql:///ttd?host=/run/ttd-pg&recording=bank    one recording in a PostgreSQL
    postgresql://alice:pw@db.example/ttd?recording=bank  database, named by ttd's own
                                                         query parameter `recording`

`recording=NAME` is ttd's, taken out before connecting; every other part of the URL is
the driver's and libpq's (host, port, sslmode, ...). The plain `postgresql://` (and
`postgres://`) scheme is served by the driver ttd ships (psycopg 3). Credentials come
from the URL, PGPASSFILE or libpq's environment; a Location never shows a password:
`display` masks it (user:***@, password=***), and every message uses `display`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from .errors import RecordingError

# ttd's query parameter that names one recording in a server database
RECORDING_PARAM = "recording"
# What a recording may be called: it is shown in lists and typed in URLs.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
PG_DRIVER = "postgresql+psycopg"
_PG_SCHEMES = {"postgresql", "postgres", "postgresql+psycopg"}
_SECRET_PARAMS = ("password",)


class BadLocation(RecordingError):
    """A name that cannot be a recording's place (unknown scheme, bad recording name)."""


@dataclass(frozen=True)
class Location:
    """A recording's place. kind "sqlite": path is the file; kind "postgresql": url is
    the SQLAlchemy URL to connect with (driver set, `recording` taken out) and
    recording the name in that database (None when the URL names none)."""

    kind: str
    display: str  # for messages: the path, or the URL with its password masked
    path: str | None = None
    url: object = field(default=None, repr=False, compare=False)  # sqlalchemy URL
    recording: str | None = None

    @property
    def is_server(self) -> bool:
        return self.kind != "sqlite"

    def libpq_uri(self) -> str:
        """The URL as libpq takes it (the page server's connection): postgresql://...,
        password included, `recording` left out. Never print it."""
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def with_recording(self, name: str) -> Location:
        """The same database, another recording."""
        check_name(name)
        return Location(self.kind, _display(self.url, name), url=self.url, recording=name)


def is_url(name: str) -> bool:
    return "://" in name


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise BadLocation(
            f"Invalid recording name {name!r}: use 1 to 63 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return name


def parse(name: str | os.PathLike) -> Location:
    """The Location of a path or URL; BadLocation (one line) for what cannot be one."""
    name = os.fspath(name)
    if not is_url(name):
        path = os.path.abspath(os.path.expanduser(name))
        return Location("sqlite", path, path=path)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(name)
    except (ArgumentError, ValueError):
        raise BadLocation(
            f"'{_mask_text(name)}' is not a URL ttd can read: use a path or "
            "postgresql://[USER@]HOST/DATABASE?recording=NAME."
        ) from None
    scheme = url.drivername
    if scheme.split("+")[0] == "sqlite":
        if not url.database:
            raise BadLocation(f"'{name}' names no file: use sqlite:////absolute/path.db.")
        return parse(url.database)
    if scheme not in _PG_SCHEMES:
        raise BadLocation(
            f"ttd keeps recordings in SQLite files and PostgreSQL databases, not "
            f"'{scheme}' ('{_display(url, None)}')."
        )
    recording = url.query.get(RECORDING_PARAM)
    if isinstance(recording, tuple):
        raise BadLocation(f"'{_display(url, None)}' names more than one recording.")
    if recording is not None:
        check_name(recording)
    url = url.set(drivername=PG_DRIVER).difference_update_query([RECORDING_PARAM])
    return Location("postgresql", _display(url, recording), url=url, recording=recording)


def _display(url, recording: str | None) -> str:
    """The URL for messages: postgresql://, the password masked (user part and query),
    `recording` last."""
    query = {k: ("***" if k in _SECRET_PARAMS else v) for k, v in url.query.items()}
    if recording is not None:
        query[RECORDING_PARAM] = recording
    shown = url.set(drivername="postgresql", query=query).render_as_string(hide_password=True)
    base, sep, rest = shown.partition("?")
    return base + sep + unquote(rest)  # host=/run/ttd-pg, not host=%2Frun%2Fttd-pg


_USERINFO_RE = re.compile(r"(://[^:/@?#]*:)[^@/?#]*@")
_QUERY_SECRET_RE = re.compile(r"((?:^|[?&;\s])password=)[^&\s]*", re.I)


def _mask_text(text: str) -> str:
    """A URL-ish text with anything after "user:" in the user part, and password=... in
    the query, masked: for text that could not be parsed as a URL."""
    return _QUERY_SECRET_RE.sub(r"\1***", _USERINFO_RE.sub(r"\1***@", text))


def mask(text: str) -> str:
    """Any message with passwords masked as _display does: for errors that come from the
    driver or libpq, which may quote what they were given."""
    return _mask_text(text)
