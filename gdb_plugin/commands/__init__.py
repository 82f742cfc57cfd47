"""Registration of every ttd GDB command, and what the commands share.

Each command lives in its own module here, named after it, with a `register(ctx)`
function; add the module to COMMAND_MODULES. Every command gets the one Context
(gdb_plugin/context.py) and works through it; no command module reaches into another.
"""
from __future__ import annotations

import contextlib
import importlib

import gdb

from gdb_plugin.context import Context
from gdb_plugin.errors import TtdError
from gdb_plugin.report import printable

COMMAND_MODULES = [
    "gdb_plugin.commands.ttd_prefix",
    "gdb_plugin.commands.call_at_time",
    "gdb_plugin.commands.info_dirtied_pages",
    "gdb_plugin.commands.ttd_goto",
    "gdb_plugin.commands.ttd_settings",
    "gdb_plugin.commands.ttd_sweep",
    "gdb_plugin.commands.before_quit",
]

_context: Context | None = None


def register_all() -> Context:
    """Register every command once, with one Context; GDB's exit ends its processes."""
    global _context
    if _context is None:
        ctx = Context()
        for name in COMMAND_MODULES:
            importlib.import_module(name).register(ctx)
        exiting = getattr(gdb.events, "gdb_exiting", None)  # GDB 12+
        if exiting is not None:
            exiting.connect(lambda _event: ctx.exiting())
        _context = ctx
    return _context


def context() -> Context:
    """The Context the commands share (for tests and benchmarks in GDB's Python)."""
    return register_all()


@contextlib.contextmanager
def user_errors():
    """Errors of the library (snapshotdb's RecordingError, the plugin's TtdError) become
    gdb.GdbError with their one-line message, without a traceback (control bytes of a
    path in it made visible: one line, whatever the path holds)."""
    from snapshotdb.errors import RecordingError

    try:
        yield
    except (RecordingError, TtdError) as exc:
        raise gdb.GdbError(printable(str(exc), keep="")) from None


def parsed(parse, arg: str):
    """parse(arg), a ValueError turned into gdb.GdbError (gdb_plugin/args.py)."""
    try:
        return parse(arg)
    except ValueError as exc:
        raise gdb.GdbError(str(exc)) from None
