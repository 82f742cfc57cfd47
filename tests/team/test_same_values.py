"""examples/bank recorded straight into PostgreSQL, and its SQLite recording copied there:
`ttd call` and `call-at-time` give the values, statuses and dirtied pages of the SQLite
file, at every tick."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.harness import call, gdb_with_recording
from tests.team.calls import comparable, gdb_calls, ttd_call
from tests.team.conftest import BANK_TICKS

EXPRS = [
    "balance_of(1)",
    "total_cents()",
    "transfer(2, 1, 100)",
    "ledger.moved_cents",
    "*(int *)0",
    "((int (*)(void))0)()",
]
CALLS = [(tick, expr) for tick in BANK_TICKS for expr in EXPRS]


@pytest.fixture(scope="module")
def reference(bank_sqlite):
    """call-at-time of every (tick, expr) on the SQLite file."""
    results = gdb_calls(bank_sqlite, CALLS)
    assert [r["value"] for r in results[:2]] == ["10000", "13200"]  # before the transfers
    assert results[2]["status"] == "returned" and results[2]["dirtied_pages"]
    assert results[4]["status"] == "error"  # GDB reads address 0 itself
    assert results[5]["status"] == "signalled" and results[5]["signal"] == "SIGSEGV"
    return [comparable(r) for r in results]


@pytest.mark.parametrize(
    "which", ["bank_pg", "bank_pg_copy"], ids=["recorded-into-pg", "copied-to-pg"]
)
def test_call_at_time_as_on_the_file(reference, which, request):
    url = request.getfixturevalue(which)
    assert [comparable(r) for r in gdb_calls(url, CALLS)] == reference


@pytest.mark.parametrize(
    "which", ["bank_pg", "bank_pg_copy"], ids=["recorded-into-pg", "copied-to-pg"]
)
def test_ttd_call_as_on_the_file(bank_sqlite, which, request):
    url = request.getfixturevalue(which)
    for tick in BANK_TICKS:
        on_file = comparable(ttd_call(bank_sqlite, tick, "transfer(1, 3, 50)"))
        assert on_file["status"] == "returned" and on_file["pages"]
        assert comparable(ttd_call(url, tick, "transfer(1, 3, 50)")) == on_file


def test_four_gdb_sessions_at_once(reference, bank_pg):
    """Four GDBs call on one PostgreSQL recording at the same time, each in its own order
    of ticks: every result is the file's."""
    start = threading.Barrier(4, timeout=120)

    def session(shift: int) -> list[dict]:
        order = CALLS[shift * len(EXPRS) :] + CALLS[: shift * len(EXPRS)]
        with gdb_with_recording(bank_pg) as gdb:
            start.wait()
            results = [call(gdb, tick, expr) for tick, expr in order]
        return results[-shift * len(EXPRS) :] + results[: -shift * len(EXPRS)] if shift else results

    with ThreadPoolExecutor(4) as pool:
        sessions = list(pool.map(session, range(4)))
    for results in sessions:
        assert [comparable(r) for r in results] == reference
