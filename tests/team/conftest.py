"""Fixtures of the team-storage tests: a real PostgreSQL cluster for the session (under
CI=true a missing server fails, never skips), a database per test that wants one, and
recordings of examples/bank: into a SQLite file, straight into PostgreSQL, and the
SQLite one copied there."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.conftest import require, run_ttd
from tests.e2e.harness import require_tools
from tests.team.pg_cluster import available, running_cluster

_numbers = itertools.count(1)
BANK_TICKS = range(1, 7)  # five transfers, then the exit


@pytest.fixture(scope="session")
def pg():
    """The session's PostgreSQL cluster (tests.team.pg_cluster.PgCluster)."""
    why = available()
    require(why is None, f"no PostgreSQL server: {why}")
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_database(pg):
    """The name of a new, empty database."""
    name = f"t{next(_numbers)}"
    pg.create_database(name)
    return name


@pytest.fixture
def pg_db(pg, pg_database):
    """The URL of a new, empty database (no recording named)."""
    return pg.url(pg_database)


def record_bank(binary, output: str) -> None:
    """ttd record of examples/bank at every transfer() (ticks 1-5) and its exit (6).

    Without PYTEST_CURRENT_TEST in the program's environment: pytest sets it to the
    running test's name, and the recordings compared here are made by session fixtures,
    by whichever test needs each first; names of other lengths put their stacks at other
    addresses, and a call's changed ranges below rsp at other offsets."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    done = run_ttd(
        "record", "-o", str(output), "--break", "transfer", "--", str(binary), timeout=180, env=env
    )
    assert done.returncode == 0, done.stderr


def copy(src, dst) -> str:
    """ttd copy SRC DST, checked; its summary line."""
    done = run_ttd("copy", str(src), str(dst), timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def schema(pg, database: str, name: str) -> str:
    """The schema that holds the recording `name` of `database`."""
    rows = pg.sql("SELECT schema_name FROM ttd.recordings WHERE name = %s", database, (name,))
    return rows[0][0]


@pytest.fixture(scope="session")
def bank_binary(build_target):
    require_tools()
    return build_target("examples/bank.c")


@pytest.fixture(scope="session")
def bank_sqlite(bank_binary, tmp_path_factory):
    db = tmp_path_factory.mktemp("bank") / "bank.db"
    record_bank(bank_binary, db)
    return db


@pytest.fixture(scope="session")
def bank_server(pg):
    """The database the bank recordings share on the session's cluster."""
    pg.create_database("bank")
    return "bank"


@pytest.fixture(scope="session")
def bank_pg(pg, bank_server, bank_binary):
    """examples/bank recorded straight into PostgreSQL: its URL."""
    url = pg.url(bank_server, "recorded")
    record_bank(bank_binary, url)
    return url


@pytest.fixture(scope="session")
def bank_pg_copy(pg, bank_server, bank_sqlite):
    """The SQLite recording of examples/bank copied into PostgreSQL: its URL."""
    url = pg.url(bank_server, "copied")
    copy(bank_sqlite, url)
    return url
