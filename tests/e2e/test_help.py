"""Every registered ttd command has GDB-style help: a one-line summary, Usage:, details."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PLUGIN
from ttd_cli.mi import MiGdb

pytestmark = pytest.mark.timeout(60)

OURS = ["call-at-time", "info dirtied-pages", "ttd goto", "ttd sweep"]


def test_every_registered_command_has_help():
    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        text = gdb.cli(
            "python import gc, gdb, json; print('DOCS', json.dumps({type(o).__name__: "
            "type(o).__doc__ for o in gc.get_objects() if isinstance(o, gdb.Command) "
            "and type(o).__module__.startswith('gdb_plugin')}))"
        )
        docs = json.loads(text.split("DOCS ", 1)[1].splitlines()[0])
        assert len(docs) >= len(OURS)
        for name, doc in docs.items():
            assert doc, f"{name} has no help"
            summary = doc.splitlines()[0]
            assert summary.endswith(".") and summary[0].isupper(), f"{name}: {summary!r}"
            assert "Usage:" in doc, f"{name} has no Usage: line"
        for command in OURS:
            help_text = gdb.cli(f"help {command}")
            assert "Usage: " + command in help_text
            assert "Examples:" in help_text


def test_settings_have_help_and_show_their_values():
    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        listing = gdb.cli("help set ttd")
        for name in ("sandbox", "timeout", "tracker"):
            assert f"set ttd {name} -- " in listing
        assert "system calls that reach outside" in gdb.cli("help set ttd sandbox")
        assert "writes that leave a page's bytes" in gdb.cli("help set ttd tracker")
        lines = gdb.cli("show ttd").strip().splitlines()[-3:]
        assert lines == [
            "The ttd sandbox is on.",
            "Calls of the past are interrupted after 10 seconds.",
            "The ttd tracker is auto.",
        ]
