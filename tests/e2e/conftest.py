"""Fixtures of the end-to-end tests: a recording of tests/e2e/targets.c made by `ttd record`."""

from __future__ import annotations

import pytest

from tests.conftest import run_ttd
from tests.e2e.harness import gdb_with_recording, require_tools


@pytest.fixture(scope="session")
def targets_db(build_target, tmp_path_factory):
    """(recording path, binary): snapshots at the 3 hits of checkpoint, then the exit (tick 4)."""
    require_tools()
    binary = build_target("tests/e2e/targets.c", "-pthread")
    db = tmp_path_factory.mktemp("ttd-record") / "targets.db"
    done = run_ttd("record", "-o", str(db), "--break", "checkpoint", "--", str(binary), timeout=120)
    assert done.returncode == 0, done.stderr
    return db, binary


@pytest.fixture(scope="session")
def escape_recording(build_target, tmp_path_factory):
    """(recording path, binary) of tests/e2e/escape.c: ticks 1-3 at the hits of
    checkpoint (`step` 1-3), then the exit (tick 4)."""
    require_tools()
    binary = build_target("tests/e2e/escape.c")
    db = tmp_path_factory.mktemp("escape") / "escape.db"
    done = run_ttd("record", "-o", str(db), "--break", "checkpoint", "--", str(binary), timeout=120)
    assert done.returncode == 0, done.stderr
    return db, binary


@pytest.fixture
def plugin_gdb(targets_db):
    """A fresh GDB in MI mode with the plugin loaded and the recording open."""
    with gdb_with_recording(targets_db[0]) as gdb:
        yield gdb
