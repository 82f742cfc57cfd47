"""The sweep's tick SPEC (gdb_plugin/tick_spec.py), its arguments (args.parse_sweep) and
its table (gdb_plugin/sweep.py), without GDB: what each accepts, and the one-line
message of each bad input."""

from __future__ import annotations

import pytest

from gdb_plugin import args, sweep, tick_spec
from gdb_plugin.args import SweepArgs

RECORDED = list(range(1, 51))
SPEC_HELP = "a SPEC is 3, 3-40, 3-, 1,5,9 or all"


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("all", RECORDED),
        ("3", [3]),
        ("3-40", list(range(3, 41))),
        ("45-", [45, 46, 47, 48, 49, 50]),
        ("1,5,9", [1, 5, 9]),
        ("9,1,5,5", [1, 5, 9]),  # in time order, each once
        ("1-3,2-4, 50", [1, 2, 3, 4, 50]),
        ("7-7", [7]),
    ],
)
def test_spec_selects(spec, expected):
    assert tick_spec.ticks(spec, RECORDED) == expected


def test_range_takes_only_recorded_ticks():
    assert tick_spec.ticks("2-9", [1, 3, 8, 12]) == [3, 8]
    assert tick_spec.ticks("2-", [1, 3, 8, 12]) == [3, 8, 12]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("0", "Invalid tick '0': ticks start at 1."),
        ("0-3", "Invalid tick '0-3': ticks start at 1."),
        ("5-3", "Invalid range '5-3': it starts after it ends."),
        ("x", f"Invalid tick 'x': a tick is a number; {SPEC_HELP}."),
        ("-3", f"Invalid tick '-3': a tick is a number; {SPEC_HELP}."),
        ("3--4", f"Invalid tick '3--4': a tick is a number; {SPEC_HELP}."),
        ("1,,2", f"Invalid ticks '1,,2': an empty item between commas; {SPEC_HELP}."),
        ("1,", f"Invalid ticks '1,': an empty item between commas; {SPEC_HELP}."),
        ("", f"Invalid ticks '': {SPEC_HELP}."),
        ("99", "No tick 99: valid ticks are 1 to 50."),
        ("1,51", "No tick 51: valid ticks are 1 to 50."),
        ("40-60", "No tick 60: valid ticks are 1 to 50."),
        ("60-", "No tick 60: valid ticks are 1 to 50."),
    ],
)
def test_bad_spec(spec, message):
    with pytest.raises(ValueError) as info:
        tick_spec.ticks(spec, RECORDED)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_range_without_a_recorded_tick():
    with pytest.raises(ValueError, match=r"^No tick in 4-7: valid ticks are 1 to 12\.$"):
        tick_spec.ticks("4-7", [1, 3, 8, 12])


def test_empty_recording():
    with pytest.raises(ValueError, match=r"^The recording has no snapshots\.$"):
        tick_spec.ticks("all", [])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("list_length(head)", SweepArgs("list_length(head)")),
        ('--ticks 3-  --changes f( "a  b" )', SweepArgs('f( "a  b" )', ticks="3-", changes=True)),
        ("--thread 42 --json g()", SweepArgs("g()", tid=42, json=True)),
        ("-- --changes", SweepArgs("--changes")),
        ("--progress --json f()", SweepArgs("f()", json=True, progress=True)),
    ],
)
def test_sweep_args(text, expected):
    assert args.parse_sweep(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", args.SWEEP_USAGE),
        ("--changes", args.SWEEP_USAGE),
        ("--ticks", f"Option --ticks needs a value. {args.SWEEP_USAGE}"),
        ("--ticks 1,,2 f()", f"Invalid ticks '1,,2': an empty item between commas; {SPEC_HELP}."),
        ("--thread x f()", f"Invalid thread 'x': a thread is a TID, a number. {args.SWEEP_USAGE}"),
        ("--plot f()", f"Unknown option '--plot'. {args.SWEEP_USAGE}"),
    ],
)
def test_sweep_bad_args(text, message):
    with pytest.raises(ValueError) as info:
        args.parse_sweep(text)
    assert str(info.value) == message


def _obj(tick, status="returned", value="", error=None, changed=0, signal=None):
    obj = sweep.failed_json(tick, "f()", error)
    obj.update(
        status=status,
        value=value,
        signal=signal,
        dirtied_pages=[{"changed": True}] * changed + [{"changed": False}],
    )
    return obj


def test_table_and_changes():
    results = {
        1: _obj(1, value="1", changed=2),
        2: _obj(2, value="1"),
        3: _obj(3, "signalled", error="The call received SIGSEGV.\nmore", signal="SIGSEGV"),
        4: _obj(4, value="\x1b[2J4", changed=1),
    }

    class Result:
        def __init__(self, obj):
            self.obj, self.warnings = obj, []

        def to_json(self):
            return self.obj

    rows = list(sweep.sweep(lambda t: Result(results[t]), [1, 2, 3, 4], "f()"))
    assert sweep.table(rows) == [
        "TICK  VALUE                                PAGES CHANGED",
        "1     1                                    2",
        "2     1                                    0",
        "3     crashed: The call received SIGSEGV.  0",
        "4     \\x1b[2J4                             1",
    ]
    assert sweep.summary(rows, 4, False) == "Swept 4 ticks: 3 returned, 1 crashed."
    changed = list(sweep.sweep(lambda t: Result(results[t]), [1, 2, 3, 4], "f()", True))
    assert [r.tick for r in changed] == [1, 3, 4]
    assert sweep.summary(changed, 4, True) == "Swept 4 ticks: the value changed at 3."
    assert sweep.table([]) == []


def test_ctrl_c_in_a_call_ends_the_sweep_after_its_row():
    """A call stopped by SIGINT that no timeout sent: the user's Ctrl-C reached it."""

    class Result:
        warnings: list = []

        def __init__(self, tick):
            self.tick = tick

        def to_json(self):
            if self.tick == 2:
                return _obj(
                    2, "signalled", error="The program being debugged was signaled", signal="SIGINT"
                )
            return _obj(self.tick, value="1")

    rows = []
    with pytest.raises(KeyboardInterrupt):
        for row in sweep.sweep(Result, [1, 2, 3], "f()"):
            rows.append(row)
    assert [r.tick for r in rows] == [1, 2]


def test_a_tick_that_cannot_be_called_is_a_row():
    from gdb_plugin.errors import SessionError

    def call(tick):
        raise SessionError("The page server did not start the process within 90 s.")

    (row,) = sweep.sweep(call, [7], "f()")
    assert (row.tick, row.status, row.json["status"]) == (7, "error", "error")
    assert row.cell() == "error: The page server did not start the process within 90 s."


@pytest.mark.parametrize(
    "value, number",
    [
        ("42", 42.0),
        ("-1.5", -1.5),
        ("0x10", 16.0),
        ("65 'A'", 65.0),
        ("(struct node *) 0x5555", None),
        ("{a = 1}", None),
        ("", None),
    ],
)
def test_numeric(value, number):
    assert sweep.numeric(value) == number
