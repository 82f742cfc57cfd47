"""Fixtures of the team-storage tests: a real PostgreSQL cluster for the session (under
CI=true a missing server fails, never skips), a database per test that wants one, and
recordings of examples/bank."""
from __future__ import annotations

import itertools

import pytest

from tests.conftest import require
from tests.team.pg_cluster import available, running_cluster

_numbers = itertools.count(1)


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
