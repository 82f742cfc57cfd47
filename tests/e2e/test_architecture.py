"""Addresses are 64-bit whatever GDB loaded (issue 8, item 12): with no program of the
user's, GDB's default architecture is i386 and cut typed addresses to 32 bits; `ttd open`
sets the recording's architecture, `ttd close` puts "auto" back, and a user's own
program keeps its architecture."""

from __future__ import annotations

import pytest

from tests.conftest import PLUGIN
from tests.e2e.harness import call, gdb_with_recording

pytestmark = pytest.mark.timeout(120)


def _architecture(gdb) -> str:
    return gdb.cli("show architecture").strip().splitlines()[-1]


def test_no_program_loaded_gets_the_recordings_architecture(targets_db):
    db, _ = targets_db
    from ttd_cli.mi import MiGdb

    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        assert _architecture(gdb) == 'The target architecture is set to "auto" (currently "i386").'
        gdb.cli(f"ttd open {db}")
        assert _architecture(gdb) == 'The target architecture is set to "i386:x86-64".'
        got = call(gdb, 2, "bump_all(1)")
        counter_b = next(p for p in got["dirtied_pages"] if p["symbol"] == "counter_b")
        page = int(counter_b["address"], 16)
        assert page > 1 << 32
        text = gdb.cli(f"info dirtied-pages {page + 0x1C0:#x}")
        assert f"Page {page:#x} (data, [anon]) holds counter_b" in text.splitlines()
        gdb.cli("ttd close")
        assert _architecture(gdb) == 'The target architecture is set to "auto" (currently "i386").'


def test_users_program_keeps_its_architecture(targets_db):
    db, binary = targets_db
    from ttd_cli.mi import MiGdb

    with MiGdb() as gdb:
        gdb.cli(f"file {binary}")
        gdb.cli(f"source {PLUGIN}")
        before = _architecture(gdb)
        gdb.cli(f"ttd open {db}")
        assert _architecture(gdb) == before
        gdb.cli("ttd close")
        assert _architecture(gdb) == before


def test_users_choice_is_kept(targets_db):
    with gdb_with_recording(targets_db[0]) as gdb:  # opened under the default, auto
        gdb.cli("ttd close")
        gdb.cli("set architecture i386")
        gdb.cli(f"ttd open {targets_db[0]}")
        assert _architecture(gdb) == 'The target architecture is set to "i386".'
        gdb.cli("ttd close")
        assert _architecture(gdb) == 'The target architecture is set to "i386".'
