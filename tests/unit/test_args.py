"""The ttd commands' argument parsers (gdb_plugin/args.py), without GDB: what each
accepts, and the one-line message of each bad input."""

from __future__ import annotations

import pytest

from gdb_plugin import args
from gdb_plugin.args import CallArgs


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2 list_length()", CallArgs(2, "list_length()")),
        ("0x10 f(1, 2)", CallArgs(16, "f(1, 2)")),
        ('--json 3  f( "a  b" )  ', CallArgs(3, 'f( "a  b" )', json=True)),
        ("--thread 42 --timeout 1.5 2 f()", CallArgs(2, "f()", tid=42, timeout=1.5)),
        (
            "--tracker diff --allow-side-effects 1 g()",
            CallArgs(1, "g()", tracker="diff", sandbox=False),
        ),
        ("-- 1 --json", CallArgs(1, "--json")),  # after --, all is TICK EXPR
        ("1 -x", CallArgs(1, "-x")),
    ],
    ids=[
        "plain",
        "hex-tick",
        "expr-verbatim",
        "thread-timeout",
        "tracker-side-effects",
        "double-dash",
        "expr-starting-with-dash",
    ],
)
def test_call_accepts(text, expected):
    assert args.parse_call(text) == expected


TIMEOUT_RULE = "a timeout is a number of seconds greater than 0."


@pytest.mark.parametrize(
    "text, message",
    [
        ("--timeout 0 1 f()", f"Invalid timeout '0': {TIMEOUT_RULE}"),
        ("--timeout -2 1 f()", f"Invalid timeout '-2': {TIMEOUT_RULE}"),
        ("--timeout nan 1 f()", f"Invalid timeout 'nan': {TIMEOUT_RULE}"),
        ("--timeout inf 1 f()", f"Invalid timeout 'inf': {TIMEOUT_RULE}"),
        ("--timeout -inf 1 f()", f"Invalid timeout '-inf': {TIMEOUT_RULE}"),
        ("--timeout soon 1 f()", f"Invalid timeout 'soon': {TIMEOUT_RULE}"),
        ("--timeout", "Option --timeout needs a value."),
        ("--thread x 1 f()", "Invalid thread 'x': a thread is a TID, a number."),
        ("--thread", "Option --thread needs a value."),
        (
            "--tracker soft-dirty 1 f()",
            "Invalid tracker 'soft-dirty': the trackers are auto, wp-async, diff.",
        ),
        ("--bogus 1 f()", "Unknown option '--bogus'."),
        ("--", "Usage: call-at-time "),
        ("", "Usage: call-at-time "),
        ("2", "Usage: call-at-time "),
        ("2   ", "Usage: call-at-time "),
        ("--json 2", "Usage: call-at-time "),
        ("two f()", "Invalid tick 'two': a tick is a number."),
    ],
    ids=[
        "timeout-0",
        "timeout-negative",
        "timeout-nan",
        "timeout-inf",
        "timeout-minus-inf",
        "timeout-word",
        "timeout-missing",
        "thread-x",
        "thread-missing",
        "tracker-unknown",
        "unknown-option",
        "double-dash-only",
        "empty",
        "no-expr",
        "no-expr-blanks",
        "no-expr-after-option",
        "tick-word",
    ],
)
def test_call_refuses(text, message):
    with pytest.raises(ValueError) as info:
        args.parse_call(text)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("10", 10.0),
        ("0.5", 0.5),
        (" 3 ", 3.0),
        ("unlimited", None),
        ("0", None),
    ],
)
def test_timeout_setting_accepts(text, expected):
    assert args.parse_timeout_setting(text) == expected


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "", "soon", "1e999"])
def test_timeout_setting_refuses(text):
    with pytest.raises(ValueError) as info:
        args.parse_timeout_setting(text)
    assert str(info.value) == (
        f"Invalid timeout '{text}': a timeout is a number of seconds "
        'greater than 0, or "unlimited" (or 0) for no limit.'
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3", (3, None)),
        ("--thread 77 2", (2, 77)),
        ("  0x2 ", (2, None)),
    ],
)
def test_goto_accepts(text, expected):
    assert args.parse_goto(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "Usage: ttd goto [--thread TID] TICK"),
        ("1 2", "Usage: ttd goto [--thread TID] TICK"),
        ("--thread x 2", "Invalid thread 'x': a thread is a TID, a number."),
        ("--thread 5", "Usage: ttd goto [--thread TID] TICK"),
        ("soon", "Invalid tick 'soon': a tick is a number."),
    ],
)
def test_goto_refuses(text, message):
    with pytest.raises(ValueError) as info:
        args.parse_goto(text)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", (None, False)),
        ("--all", (None, True)),
        ("&counter --all", ("&counter", True)),
        ("0x5555 + 8", ("0x5555 + 8", False)),
    ],
)
def test_dirtied_pages_accepts(text, expected):
    assert args.parse_dirtied_pages(text) == expected


def test_dirtied_pages_refuses_unknown_option():
    with pytest.raises(ValueError, match=r"^Unknown option '--bogus'\. Usage: info dirtied-pages"):
        args.parse_dirtied_pages("--bogus")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("/tmp/a.db", ("/tmp/a.db", False)),
        ("--create 'my rec.db'", ("my rec.db", True)),
    ],
)
def test_open_accepts(text, expected):
    assert args.parse_open(text) == expected


@pytest.mark.parametrize("text", ["", "a b", "--create"])
def test_open_refuses(text):
    with pytest.raises(ValueError, match=r"^Usage: ttd open \[--create\] DB$"):
        args.parse_open(text)


def test_snapshot_options_and_note():
    parsed = args.parse_snapshot("--reason breakpoint --signal SIGSEGV before the transfer")
    assert (parsed.reason, parsed.signal, parsed.note) == (
        "breakpoint",
        "SIGSEGV",
        "before the transfer",
    )
    assert args.parse_snapshot("").note is None
    with pytest.raises(ValueError, match=r"^ttd snapshot: argument --reason: invalid choice"):
        args.parse_snapshot("--reason later")


@pytest.mark.parametrize(
    "text, words",
    [
        ("a b  c", ["a", "b", "c"]),
        ("'a b' \"c d\"", ["a b", "c d"]),
        (r"a\ b c\\d", ["a b", "c\\d"]),
        ("x'y z'w", ["xy zw"]),
        ("''", [""]),
        (r"'a\'b'", ["a'b"]),
    ],
    ids=["blanks", "quotes", "backslashes", "quote-inside-word", "empty-quotes", "escaped-quote"],
)
def test_split_argv_as_gdb_string_to_argv(text, words):
    """Checked against GDB 13's gdb.string_to_argv on the same strings."""
    assert args.split_argv(text) == words


def test_split_argv_of_blanks_is_empty():
    assert args.split_argv("   ") == []  # gdb.string_to_argv gives [""]: no word is clearer
