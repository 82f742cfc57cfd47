"""The arguments of the ttd GDB commands, parsed without GDB (tests/unit/test_args.py).

Each parser takes the text GDB hands to invoke() and returns plain values, or raises
ValueError with the one-line message the command shows (as gdb.GdbError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gdb_plugin.settings import TRACKERS

CALL_USAGE = (
    "Usage: call-at-time [--thread TID] [--timeout S] [--tracker auto|wp-async|diff] "
    "[--allow-side-effects] [--json] TICK EXPR"
)
GOTO_USAGE = "Usage: ttd goto [--thread TID] TICK"
DIRTIED_USAGE = "Usage: info dirtied-pages [ADDRESS] [--all]"
OPEN_USAGE = "Usage: ttd open [--create] DB"
SWEEP_USAGE = (
    "Usage: ttd sweep [--ticks SPEC] [--changes] [--thread TID] [--json] [--progress] EXPR"
)
SNAPSHOT_REASONS = ("manual", "breakpoint", "signal", "exit")


def split_argv(text: str) -> list[str]:
    """Words as gdb.string_to_argv (libiberty's buildargv) splits them: blanks separate,
    'single' and "double" quotes group, a backslash takes the next character as is."""
    words: list[str] = []
    word: list[str] | None = None
    quote = ""
    escaped = False
    for char in text:
        if escaped:
            word.append(char)
            escaped = False
        elif char == "\\":
            word = [] if word is None else word
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
            else:
                word.append(char)
        elif char.isspace():
            if word is not None:
                words.append("".join(word))
                word = None
        else:
            word = [] if word is None else word
            if char in "'\"":
                quote = char
            else:
                word.append(char)
    if word is not None:
        words.append("".join(word))
    return words


@dataclass
class CallArgs:
    """call-at-time's arguments; None for an option not given (the `set ttd` setting holds)."""

    tick: int
    expr: str  # verbatim: GDB parses it
    tid: int | None = None
    timeout: float | None = None
    json: bool = False
    sandbox: bool | None = None  # False with --allow-side-effects
    tracker: str | None = None


def parse_call(arg: str) -> CallArgs:
    """Options, TICK and EXPR of call-at-time; EXPR is kept verbatim (quotes and all)."""
    opts: dict = {}
    rest = arg.strip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if word == "--json":
            opts["json"] = True
        elif word == "--allow-side-effects":
            opts["sandbox"] = False
        elif word in ("--thread", "--timeout", "--tracker"):
            value, _, rest = rest.partition(" ")
            rest = rest.lstrip()
            opts.update(_option_value(word, value))
        elif word == "--":
            break
        else:
            raise ValueError(f"Unknown option '{word}'. {CALL_USAGE}")
    tick_text, _, expr = rest.partition(" ")
    if not tick_text or not expr.strip():
        raise ValueError(CALL_USAGE)
    return CallArgs(tick=_tick(tick_text, CALL_USAGE), expr=expr.strip(), **opts)


@dataclass
class SweepArgs:
    """ttd sweep's arguments: SPEC as typed (gdb_plugin/tick_spec.py checks it)."""

    expr: str  # verbatim: GDB parses it
    ticks: str = "all"
    changes: bool = False
    tid: int | None = None
    json: bool = False
    progress: bool = False  # a line per tick, for front ends (ttd sweep on a terminal)


def parse_sweep(arg: str) -> SweepArgs:
    """Options and EXPR of ttd sweep; EXPR is kept verbatim. SPEC is checked here (its
    text), the ticks it names when the recording is known."""
    from gdb_plugin import tick_spec

    opts: dict = {}
    rest = arg.strip()
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        if word in ("--changes", "--json", "--progress"):
            opts[word[2:]] = True
        elif word in ("--ticks", "--thread"):
            value, _, rest = rest.partition(" ")
            rest = rest.lstrip()
            if not value:
                raise ValueError(f"Option {word} needs a value. {SWEEP_USAGE}")
            if word == "--thread":
                opts["tid"] = parse_thread(value, SWEEP_USAGE)
            else:
                tick_spec.parse(value)
                opts["ticks"] = value
        elif word == "--":
            break
        else:
            raise ValueError(f"Unknown option '{word}'. {SWEEP_USAGE}")
    if not rest.strip():
        raise ValueError(SWEEP_USAGE)
    return SweepArgs(expr=rest.strip(), **opts)


def _option_value(word: str, value: str) -> dict:
    """{"tid": ...}, {"timeout": ...} or {"tracker": ...}; ValueError when invalid."""
    if not value:
        raise ValueError(f"Option {word} needs a value. {CALL_USAGE}")
    if word == "--thread":
        return {"tid": parse_thread(value, CALL_USAGE)}
    if word == "--timeout":
        return {"timeout": parse_timeout(value, CALL_USAGE)}
    if value not in TRACKERS:
        raise ValueError(f"Invalid tracker '{value}': the trackers are {', '.join(TRACKERS)}.")
    return {"tracker": value}


def parse_thread(text: str, usage: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"Invalid thread '{text}': a thread is a TID, a number. {usage}") from None


TIMEOUT_RULE = "a timeout is a number of seconds greater than 0"
NO_LIMIT = '"unlimited" (or 0) for no limit'


def parse_timeout(text: str, usage: str) -> float:
    """Seconds: a finite number greater than 0 (nan, inf, 0 and negatives are refused)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"Invalid timeout '{text}': {TIMEOUT_RULE}. {usage}")
    return seconds


def parse_timeout_setting(text: str) -> float | None:
    """`set ttd timeout S`: seconds as parse_timeout, or None (no limit) for "unlimited"
    or 0, as GDB's own unlimited settings take them."""
    text = text.strip()
    if text in ("unlimited", "0"):
        return None
    try:
        return parse_timeout(text, "")
    except ValueError:
        raise ValueError(f"Invalid timeout '{text}': {TIMEOUT_RULE}, or {NO_LIMIT}.") from None


def _tick(text: str, usage: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"Invalid tick '{text}': a tick is a number. {usage}") from None


def parse_goto(arg: str) -> tuple[int, int | None]:
    """(tick, tid) of `ttd goto [--thread TID] TICK`."""
    words = split_argv(arg)
    tid = None
    if len(words) >= 2 and words[0] == "--thread":
        tid = parse_thread(words[1], GOTO_USAGE)
        words = words[2:]
    if len(words) != 1:
        raise ValueError(GOTO_USAGE)
    return _tick(words[0], GOTO_USAGE), tid


def parse_dirtied_pages(arg: str) -> tuple[str | None, bool]:
    """(ADDRESS expression or None, --all) of `info dirtied-pages`."""
    words = split_argv(arg)
    show_all = "--all" in words
    rest = [w for w in words if w != "--all"]
    for word in rest:
        if word.startswith("--"):
            raise ValueError(f"Unknown option '{word}'. {DIRTIED_USAGE}")
    return (" ".join(rest) or None), show_all


def parse_open(arg: str) -> tuple[str, bool]:
    """(DB, --create) of `ttd open [--create] DB`."""
    argv = split_argv(arg)
    create = bool(argv) and argv[0] == "--create"
    argv = argv[1:] if create else argv
    if len(argv) != 1:
        raise ValueError(OPEN_USAGE)
    return argv[0], create


def parse_snapshot(arg: str):
    """reason, signal, tracker, stop_tracking and note (an argparse.Namespace) of
    `ttd snapshot [--reason R] [--signal S] [--tracker auto|wp-async|scan]
    [--stop-tracking] [NOTE...]`."""
    import argparse  # here: sourcing the plugin does not pay for it

    class _SnapshotParser(argparse.ArgumentParser):
        def error(self, message):
            raise ValueError(f"ttd snapshot: {message}")

    parser = _SnapshotParser(prog="ttd snapshot", add_help=False)
    parser.add_argument("--reason", choices=SNAPSHOT_REASONS, default="manual")
    parser.add_argument("--signal", default=None)
    parser.add_argument("--tracker", choices=("auto", "wp-async", "scan"), default="auto")
    parser.add_argument("--stop-tracking", action="store_true")
    parser.add_argument("note", nargs="*")
    args = parser.parse_args(split_argv(arg))
    args.note = " ".join(args.note) or None
    return args
