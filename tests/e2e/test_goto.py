"""`ttd goto TICK`: the recorded process as an inferior to explore with GDB's own commands."""

from __future__ import annotations

import pytest

from tests.e2e.harness import end_sessions, value_line
from tests.e2e.procs import living_children_names
from ttd_cli.mi import GdbFailed

pytestmark = pytest.mark.timeout(120)


def test_goto_explore_and_come_back(plugin_gdb):
    gdb = plugin_gdb
    text = gdb.cli("ttd goto 2")
    assert "Tick 2: process" in text
    bt = gdb.cli("bt")
    assert "checkpoint (step=2)" in bt and "main ()" in bt
    assert gdb.cli("print head->value").strip().endswith("= 20")
    assert gdb.cli("print counter_b").strip().endswith("= 6")  # 2 * (1 + 2)
    gdb.cli("frame 1")
    assert "step = 2" in gdb.cli("info locals")
    assert gdb.cli("call list_length()").strip().endswith("= 2")
    assert gdb.cli("x/dw &counter_c").split()[-1] == "16"  # 7 + 3 * (1 + 2)

    gdb.cli("ttd goto 3")
    gdb.cli("frame 1")
    assert "step = 3" in gdb.cli("info locals")
    assert gdb.cli("call list_length()").strip().endswith("= 3")
    inferiors = gdb.cli("info inferiors")
    assert len([line for line in inferiors.splitlines() if "process" in line]) == 1

    assert end_sessions(gdb, "close_goto") == "True"
    rows = _inferior_rows(gdb)
    assert len(rows) == 1 and rows[0].lstrip().startswith("* 1")


def test_goto_bad_tick(plugin_gdb):
    with pytest.raises(GdbFailed, match=r"^No tick 99: valid ticks are 1 to 4\.$"):
        plugin_gdb.cli("ttd goto 99")


def test_goto_needs_a_tick(plugin_gdb):
    with pytest.raises(GdbFailed, match=r"^Usage: ttd goto \[--thread TID\] TICK$"):
        plugin_gdb.cli("ttd goto")


def test_no_recording_open():
    from tests.conftest import PLUGIN
    from ttd_cli.mi import MiGdb

    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        for command in ("call-at-time 1 f()", "ttd goto 1"):
            with pytest.raises(GdbFailed, match=r'^No recording is open\. Use "ttd open DB"\.$'):
                gdb.cli(command)
        with pytest.raises(GdbFailed, match=r"^No call-at-time yet\.$"):
            gdb.cli("info dirtied-pages")


def _inferior_rows(gdb) -> list[str]:
    """The rows of `info inferiors`, without its header."""
    return [
        line for line in gdb.cli("info inferiors").splitlines() if line.strip()[:1] in "*123456789"
    ]


def _settings(gdb) -> list[str]:
    return [
        gdb.cli(f"show {name}").splitlines()[-1]
        for name in ("sysroot", "confirm", "unwindonsignal", "suppress-cli-notifications")
    ]


def test_call_at_time_while_at_a_goto_tick(plugin_gdb):
    gdb = plugin_gdb
    before = _settings(gdb)
    gdb.cli("ttd goto 2")
    assert value_line(gdb.cli("call-at-time 3 list_length()")) == "3"
    # back in the goto inferior, at tick 2, as it was
    assert "checkpoint (step=2)" in gdb.cli("bt 1")
    assert gdb.cli("print list_length()").strip().endswith("= 2")
    end_sessions(gdb, "close_goto")
    assert "process" not in gdb.cli("info inferiors")
    assert _settings(gdb) == before


def test_ttd_close_ends_the_goto_inferior(plugin_gdb):
    gdb = plugin_gdb
    gdb.cli("ttd goto 1")
    assert "process" in gdb.cli("info inferiors")
    gdb.cli("ttd close")
    rows = _inferior_rows(gdb)
    assert len(rows) == 1 and rows[0].lstrip().startswith("* 1") and "process" not in rows[0]


def test_goto_other_thread(plugin_gdb):
    gdb = plugin_gdb
    gdb.cli("ttd goto 2")
    tid = int(gdb.cli("print worker_tid").strip().split("= ")[-1])
    gdb.cli(f"ttd goto --thread {tid} 2")
    assert gdb.cli("print tls_counter").strip().endswith("= 100")
    assert "worker" in gdb.cli("bt")


def test_no_process_left_behind(plugin_gdb):
    gdb = plugin_gdb
    gdb_pid = gdb.pid
    assert living_children_names(gdb_pid) == []
    gdb.cli("ttd goto 2")
    gdb.cli("call-at-time 1 list_length()")  # kept for repeated calls, beside the goto one
    assert living_children_names(gdb_pid) == [
        "gdbserver",
        "gdbserver",
        "ttd-pageserver",
        "ttd-pageserver",
    ]
    gdb.cli("ttd close")
    assert living_children_names(gdb_pid) == []
