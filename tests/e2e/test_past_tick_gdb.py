"""At a past tick, GDB behaves as GDB: after `ttd goto 3` on examples/bank.c's recording,
next, step, up, down, frame, finish and continue print what they print on the live
program stopped at the same place (GDB's CLI, as a user types them), the user's own
settings hold during the goto and after it, and a breakpoint of the user's brings no
warning into any call."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import PLUGIN, run_ttd
from tests.e2e.harness import require_tools

pytestmark = pytest.mark.timeout(300)

MARK = "@@ttd-test "
# what a user types at a stop; each prints the new stop or frame
EXPLORE = ["next", "next", "step", "up", "down", "frame", "finish", "next"]


@pytest.fixture(scope="module")
def bank(build_target, tmp_path_factory):
    """(binary, recording): examples/bank.c recorded at its 5 transfers (ticks 1-5)."""
    require_tools()
    binary = build_target("examples/bank.c")
    db = tmp_path_factory.mktemp("bank") / "bank.db"
    done = run_ttd(
        "record", "-o", str(db), "--break", "transfer", "--", str(binary), "5", timeout=120
    )
    assert done.returncode == 0, done.stderr
    return binary, db


def gdb_cli(setup: list[str], commands: list[str]) -> list[str]:
    """GDB's CLI (batch, no MI) running `setup` then each command; what each command
    printed, in order."""
    argv = ["gdb", "-nx", "-batch", "-ex", "set pagination off"]
    for command in setup:
        argv += ["-ex", command]
    for command in commands:
        argv += ["-ex", f"echo {MARK}\\n", "-ex", command]
    argv += ["-ex", f"echo {MARK}\\n"]
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL
    )
    text = done.stdout + done.stderr
    parts = text.split(MARK + "\n")
    assert len(parts) == len(commands) + 2, text
    return parts[1:-1]


def _live_setup(binary) -> list[str]:
    """The live program stopped where tick 3 was recorded: the 3rd call of transfer."""
    return [f"file {binary}", "break transfer", "run 5 > /dev/null", "continue", "continue"]


def _goto_setup(db) -> list[str]:
    return [f"source {PLUGIN}", f"ttd open {db}", "ttd goto 3"]


def test_exploring_prints_as_on_the_live_program(bank):
    binary, db = bank
    live = gdb_cli(_live_setup(binary), EXPLORE)
    past = gdb_cli(_goto_setup(db), EXPLORE)
    assert "bank.c:69" in live[3 + 1] and "main (" in live[3]  # down, up: the frames
    assert "Value returned is $1 = 0" in live[6]
    assert past == live


def test_continue_stops_at_the_next_breakpoint_as_live(bank):
    binary, db = bank
    (live,) = gdb_cli(_live_setup(binary), ["continue"])
    (past,) = gdb_cli(_goto_setup(db) + ["break transfer"], ["continue"])
    where = "transfer (from=1, to=2, cents=400) at "
    assert where in live, live
    # the stop and the source line as live; GDB names the inferior's thread ("Thread 2.1
    # hit Breakpoint 1.1, ") when there are two inferiors, the user's and this one
    assert [_from(line, where) for line in past.splitlines()[-2:]] == [
        _from(line, where) for line in live.splitlines()[-2:]
    ], past


def _from(line: str, where: str) -> str:
    return line[line.index(where) :] if where in line else line


@pytest.mark.parametrize("users", ["off", "on"])
def test_users_settings_hold_during_and_after_the_goto(bank, users):
    _, db = bank
    shown = gdb_cli(
        [
            f"set suppress-cli-notifications {users}",
            "set confirm on",
            f"source {PLUGIN}",
            f"ttd open {db}",
        ],
        [
            "ttd goto 2",
            "show suppress-cli-notifications",
            "show confirm",
            "ttd goto 4",
            "show suppress-cli-notifications",
            "ttd close",
            "show suppress-cli-notifications",
            "show confirm",
        ],
    )
    for i in (1, 4, 6):
        assert shown[i].strip() == f"Suppression of printing CLI notifications is {users}."
    for i in (2, 7):
        assert shown[i].strip() == "Whether to confirm potentially dangerous operations is on."


def test_a_users_breakpoint_brings_no_warning(bank):
    binary, db = bank
    printed = gdb_cli(
        _live_setup(binary) + [f"source {PLUGIN}", f"ttd open {db}"],
        [
            "call-at-time 3 balance_of(1)",
            "call-at-time 2 balance_of(1)",
            "call-at-time 2 total_cents()",
            "next",
            "ttd goto 4",
            "next",
            "call-at-time 5 balance_of(2)",
            "frame",
            "ttd close",
            "next",
            "info breakpoints",
        ],
    )
    text = "".join(printed)
    assert "warning" not in text.lower(), text
    assert printed[0].splitlines()[0] == "$1 = 9900"
    assert printed[3].startswith("66\t")  # the user's program, stepped
    assert printed[9].startswith("68\t")
