"""`ttd import-core DB CORE [--exe PATH]`: a kernel or gcore core file as one more
snapshot of DB (created when missing). --exe names the executable on this machine when
it is not where the core says; it is compared and recorded by its real path."""

from __future__ import annotations

import os
import sys

from .errors import check_file


def run(args) -> int:
    from snapshotdb.capture.core import import_core
    from snapshotdb.db import open_recording
    from snapshotdb.elf import read_core

    core = read_core(args.core)
    exe = None if args.exe is None else executable(args.exe)
    with open_recording(args.db, create=True) as recording:
        result = import_core(recording.engine, core, exe=exe)
    for warning in result.warnings:
        print(f"ttd: warning: {warning}", file=sys.stderr)
    print(
        f"Imported '{args.core}' as tick {result.stats.tick}: "
        f"{result.stats.versions_written} pages."
    )
    return 0


def executable(path: str) -> str:
    """--exe as the real path of an existing file (relative paths and symlinks resolved,
    so that it compares equal to the same file named another way)."""
    check_file("Executable", path)
    return os.path.realpath(path)
