"""The GDB plugin as the command line loads it: where it is, and the commands that load
it and open a recording, quoted so that any path reaches GDB as one argument."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .mi import MiGdb, argv_quote

PLUGIN = Path(__file__).resolve().parents[1] / "gdb_plugin" / "ttd.py"


def source_command() -> str:
    """`source PLUGIN` (GDB's source takes the rest of the line as the file name)."""
    return f"source {PLUGIN}"


def open_command(db: str, create: bool = False) -> str:
    """`ttd open [--create] DB` for any path or URL: DB is made absolute (a path) and
    quoted as one argument, whatever bytes it holds."""
    name = db if "://" in db else os.path.abspath(db)
    return f"ttd open {'--create ' if create else ''}{argv_quote(name)}"


@contextlib.contextmanager
def gdb_with_recording(db: str):
    """A fresh GDB in MI mode with the plugin loaded and the recording `db` open."""
    with MiGdb() as gdb:
        gdb.cli(source_command())
        gdb.cli(open_command(db))
        yield gdb
