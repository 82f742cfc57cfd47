"""call-at-time on a second real Debian program: the python3.11 interpreter, stopped at
three hits of PyObject_Repr (the GIL held), against GDB's own live call at the same hits.
Garbage collection and running code touch many pages: every one must match."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import require
from tests.e2e.harness import (
    Call,
    assert_calls_leave_user_untouched,
    assert_matches_live,
    record_with_live_reference,
    require_tools,
    user_state,
)

pytestmark = pytest.mark.timeout(300)

SCRIPT = "a = repr([1]); b = repr({2: 'two'}); c = repr((3,))"
CALLS = [
    Call("(char *)Py_GetVersion()"),
    Call("(int)Py_IsInitialized()"),
    Call("(long)PyLong_AsLong(((void *(*)(long))PyLong_FromLong)(12345))"),  # allocates
    Call("(long)PyGC_Collect()"),  # walks and touches the heap
    Call('(int)PyRun_SimpleString("q = sum(range(100))")'),  # compiles and runs code
]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    require_tools()
    python = shutil.which("python3.11", path="/usr/bin")
    require(python is not None, "Debian's python3.11 is not installed")
    db = tmp_path_factory.mktemp("python") / "python3.db"
    rec = record_with_live_reference(db, [python, "-S", "-c", SCRIPT], "PyObject_Repr", 3, CALLS)
    rec.before = user_state(rec.gdb)
    yield rec
    rec.gdb.close()


@pytest.mark.parametrize(
    "hit, call",
    [(h, c) for h in range(3) for c in CALLS],
    ids=[f"tick{h + 1}-{c.expr}" for h in range(3) for c in CALLS],
)
def test_python3_matches_live_call(recorded, hit, call):
    assert_matches_live(recorded, recorded.ticks[hit], call)


def test_python3_user_inferior_untouched(recorded):
    """Calls at every tick leave the user's interpreter stopped in PyObject_Repr as it
    was, with the user's breakpoint and settings."""
    assert_calls_leave_user_untouched(recorded, ["(long)PyGC_Collect()", "(int)Py_IsInitialized()"])
