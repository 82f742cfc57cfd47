"""What is wrong with a path that was named but cannot be used, in the words the
messages use: `os.path.exists` says False for a symlink loop as for a missing file,
and "file not found" would send the user looking for the wrong thing."""

from __future__ import annotations

import errno
import os

NOT_FOUND = "file not found"


def path_problem(path: str | os.PathLike) -> str | None:
    """None when `path` leads to something; else a clause for after a colon:
    "file not found", "it is a symlink loop", "it cannot be reached (Permission denied)"."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return NOT_FOUND
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "it is a symlink loop"
        return f"it cannot be reached ({exc.strerror})"
    return None
