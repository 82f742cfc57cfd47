"""The PostgreSQL server stopped in the middle of a call: the call ends with one clear
error naming the server, GDB's session goes on, and a call once the server is back
works. The cluster is this module's own (the session's stays up for the others)."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg
import pytest

from tests.e2e.harness import call, gdb_with_recording
from tests.team.calls import ttd_call
from tests.team.conftest import copy
from tests.team.pg_cluster import running_cluster
from ttd_cli.mi import GdbFailed

WAIT_LIMIT_S = 60


@pytest.fixture(scope="module")
def own(pg):  # pg: the server is there (or the session fails under CI=true)
    with running_cluster("ttd-pg-stop-") as cluster:
        cluster.create_database("bank")
        yield cluster


def wait_for_blocked_pageserver(cluster) -> None:
    """Until the page server's query waits on a lock (bounded)."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        if cluster.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
            "'ttd-pageserver' AND wait_event_type = 'Lock'"
        )[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"the page server never waited on the lock in {WAIT_LIMIT_S} s")


def call_into(gdb, outcome: dict) -> None:
    """call-at-time 4 balance_of(1): its error, whether GDB's (the page server stopped
    before the call began) or the call's (while it ran)."""
    try:
        result = call(gdb, 4, "balance_of(1)")
    except GdbFailed as exc:
        outcome["error"] = str(exc)
    else:
        outcome["error"] = result["error"]


def test_the_server_stopped_in_the_middle_of_a_call(own, bank_sqlite):
    url = own.url("bank", "bank")
    copy(bank_sqlite, url)
    schema = own.sql("SELECT schema_name FROM ttd.recordings", "bank")[0][0]
    with gdb_with_recording(url) as gdb:
        assert call(gdb, 3, "balance_of(1)")["value"] == "9900"
        # the page server's next query waits behind this lock until the server stops
        locker = psycopg.connect(host=str(own.dir), user="postgres", dbname="bank")
        locker.execute(f"LOCK TABLE {schema}.page_version IN ACCESS EXCLUSIVE MODE")
        outcome: dict = {}
        caller = threading.Thread(target=call_into, args=(gdb, outcome))
        caller.start()
        try:
            wait_for_blocked_pageserver(own)
        finally:
            own.stop("fast")
            caller.join(WAIT_LIMIT_S * 2)
            with contextlib.suppress(psycopg.Error):
                locker.close()
        assert not caller.is_alive()
        error = outcome["error"]
        # the page server's words when the call's process was new, the recording's when
        # the kept process was being moved there (then a new one is tried, and the
        # server is gone for it too): either way the server is named
        assert error.startswith(
            (
                f"cannot read the recording from the PostgreSQL server at {own.dir}:5432 "
                "(database bank): ",
                f"The PostgreSQL server of 'postgresql://postgres@/bank?host={own.dir}&"
                "recording=bank' cannot be reached: ",
            )
        ), error
        assert "\n" not in error.strip()
        assert gdb.cli("print 6 * 7").strip().endswith("= 42")  # the session goes on
        own.start()
        for tick, expr in ((4, "balance_of(1)"), (6, "total_cents()")):
            assert call(gdb, tick, expr)["value"] == ttd_call(bank_sqlite, tick, expr)["value"]


def test_a_page_reader_on_a_stopped_server_names_it(own, bank_sqlite):
    """The plugin's page reader uses the driver's own connection (no SQLAlchemy wrapping):
    a stopped server is still one line naming it, not the driver's exception."""
    from gdb_plugin.ticks import page_reader
    from snapshotdb.db import open_recording
    from snapshotdb.errors import ServerUnavailable

    url = own.url("bank", "reader")
    copy(bank_sqlite, url)
    with open_recording(url) as recording:
        with page_reader(recording, 3) as reader:
            assert len(reader.page(0x1000)) == 4096  # an unrecorded page reads as zeros
        recording.engine.dispose()  # no pooled connection left: the next one connects
        own.stop("fast")
        try:
            with pytest.raises(ServerUnavailable, match="cannot be reached"):
                with page_reader(recording, 3) as reader:
                    reader.page(0x1000)
        finally:
            own.start()
