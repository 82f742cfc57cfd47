"""Fixtures and helpers of the command-line tests: a recording of tests/cli/target.c made
by `ttd record`, and what a test needs to say that nothing was left or escaped."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require, run_ttd
from tests.e2e.procs import stat_fields


@pytest.fixture(scope="session")
def target_db(build_target, tmp_path_factory):
    """(recording, binary): ticks 1-3 at the hits of checkpoint (counter 1-3), 4 the exit."""
    require(shutil.which("gdb") is not None, "gdb is not installed")
    require(shutil.which("gdbserver") is not None, "gdbserver is not installed")
    binary = build_target("tests/cli/target.c")
    db = tmp_path_factory.mktemp("cli") / "target.db"
    done = run_ttd("record", "-o", str(db), "--break", "checkpoint", "--", str(binary), timeout=120)
    assert done.returncode == 0, done.stderr
    return db, binary


def timeline(db, cwd=None) -> list[dict]:
    """`ttd timeline DB --json`, checked."""
    done = run_ttd("timeline", str(db), "--json", cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (zombies included)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = stat_fields(int(entry))
            if fields is not None:
                parents[int(entry)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def one_line_error(done) -> str:
    """The one line a failed command printed on stderr (asserted to be one)."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@contextlib.contextmanager
def read_only_dir(path: Path):
    """`path` as the mount point of an empty read-only tmpfs (root writes anywhere a mode
    allows, so a read-only directory must be a read-only file system)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    require(mounted.returncode == 0, f"cannot mount a read-only tmpfs: {mounted.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def symlink_loop(directory: Path) -> Path:
    """A symlink that points at itself."""
    loop = directory / "loop"
    loop.symlink_to(loop)
    return loop
