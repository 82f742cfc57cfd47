"""The command line's own errors. main() prints str(exc) after "ttd: " and exits 2, as it
does for snapshotdb's RecordingError; each message is one line that names the problem."""

from __future__ import annotations

import os


class CliError(Exception):
    """A mistake in what the user asked for, or a tool the command needs that failed."""


def check_file(label: str, name: str, path: str | None = None) -> None:
    """CliError unless `path` (by default `name`, as the user gave it) is a file:
    "Program 'x' not found.", "Program 'x': it is a symlink loop.", "... is not a file."."""
    from snapshotdb.paths import NOT_FOUND, path_problem

    problem = path_problem(path or name)
    if problem == NOT_FOUND:
        raise CliError(f"{label} '{name}' not found.")
    if problem is not None:
        raise CliError(f"{label} '{name}': {problem}.")
    if not os.path.isfile(path or name):
        raise CliError(f"{label} '{name}' is not a file.")
