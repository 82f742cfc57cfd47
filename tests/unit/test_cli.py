"""The `ttd` command line: help for every subcommand, and recording errors as one line."""

from __future__ import annotations

import pytest

from tests.conftest import run_ttd

SUBCOMMANDS = ["record", "import-core", "timeline", "call", "sweep", "gdb", "copy", "list"]


def test_top_level_help_lists_every_subcommand():
    result = run_ttd("--help", timeout=60)
    assert result.returncode == 0
    listed = [
        line.split()[0]
        for line in result.stdout.splitlines()
        if line.startswith("    ") and not line.startswith("     ")
    ]
    assert listed == SUBCOMMANDS  # one line each, in this order, under COMMAND


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help(name):
    result = run_ttd(name, "--help", timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: ttd {name}")


def test_timeline_of_missing_recording(tmp_path):
    result = run_ttd("timeline", str(tmp_path / "missing.db"), timeout=60)
    assert result.returncode == 2
    assert result.stderr == f"ttd: No recording at '{tmp_path / 'missing.db'}': file not found.\n"


def test_timeline_of_text_file(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a recording\n")
    result = run_ttd("timeline", str(bogus), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"ttd: '{bogus}' is not a ttd recording (not an SQLite database)."
    )
