"""`ttd gdb DB [--at TICK]`: an interactive gdb with the plugin loaded and DB open (and,
with --at, `ttd goto TICK`). This process becomes that gdb (exec)."""

from __future__ import annotations

import os
import shutil

from .errors import CliError
from .plugin import open_command, source_command


def run(args) -> int:
    from snapshotdb.db import open_recording

    open_recording(args.db).close()  # missing / not a recording: one line, before gdb
    gdb = shutil.which("gdb")
    if gdb is None:
        raise CliError("gdb is not installed: apt-get install gdb")
    # each -ex is one command, whatever it holds (a newline in DB is part of DB)
    argv = ["gdb", "-q", "-ex", source_command(), "-ex", open_command(args.db)]
    if args.at is not None:
        argv += ["-ex", f"ttd goto {args.at}"]
    os.execv(gdb, argv)
    return 0  # not reached
