"""call-at-time on a real Debian program nobody here wrote: the sqlite3 shell, stopped at
three hits of sqlite3_step, against GDB's own live call at the same hits."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import require
from tests.e2e.harness import (
    Call,
    assert_calls_leave_user_untouched,
    assert_matches_live,
    call_json,
    record_with_live_reference,
    require_tools,
    user_state,
)

pytestmark = pytest.mark.timeout(300)

SQL = (
    "create table account(id integer primary key, owner text, balance integer);"
    "insert into account(owner, balance) values ('ada', 100), ('bob', 50);"
    "update account set balance = balance - 30 where owner = 'ada';"
    "select owner, balance from account order by id;"
)
CALLS = [
    Call("(int)sqlite3_libversion_number()"),
    Call("(char *)sqlite3_libversion()"),
    Call("(char *)sqlite3_sql($rdi)"),  # the statement being stepped at the tick
    Call("(long long)sqlite3_memory_used()"),
    Call("(long long)sqlite3_memory_highwater(1)"),  # reads and resets library state
    Call('(int)sqlite3_complete("select 1;")'),  # GDB puts the string in the inferior
    Call("(int)sqlite3_stmt_readonly($rdi) * 10 + (int)sqlite3_stmt_busy($rdi)"),
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    require_tools()
    sqlite3 = shutil.which("sqlite3")
    require(sqlite3 is not None, "the sqlite3 shell is not installed (apt-get install sqlite3)")
    db = tmp_path_factory.mktemp("sqlite") / "sqlite3.db"
    rec = record_with_live_reference(db, [sqlite3, ":memory:", SQL], "sqlite3_step", 3, CALLS)
    rec.before = user_state(rec.gdb)
    yield rec
    rec.gdb.close()


@pytest.mark.parametrize(
    "hit, call",
    [(h, c) for h in range(3) for c in CALLS],
    ids=[f"tick{h + 1}-{c.expr}" for h in range(3) for c in CALLS],
)
def test_sqlite3_matches_live_call(recorded, hit, call):
    assert_matches_live(recorded, recorded.ticks[hit], call)


def test_statements_differ_between_ticks(recorded):
    sql = [call_json(recorded.gdb, t, "(char *)sqlite3_sql($rdi)")["value"] for t in recorded.ticks]
    # the shell steps statements of its own too (sqlite3_sql gives 0x0 for those)
    assert any("create table account" in value for value in sql)
    assert len(set(sql)) > 1


def test_sqlite3_user_inferior_untouched(recorded):
    """Calls at every tick (the process kept, then replaced) leave the user's inferior
    stopped in sqlite3_step as it was, with the user's breakpoint and settings."""
    assert_calls_leave_user_untouched(
        recorded, ["(long long)sqlite3_memory_highwater(1)", '(int)sqlite3_complete("x")']
    )
