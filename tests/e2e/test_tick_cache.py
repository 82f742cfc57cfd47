"""TickCache: what a sweep reads ahead (plan) is what each tick reads alone. Ticks of
tests/native/move_target.c: a mapping added and removed, the break moved, a thread ended."""

from __future__ import annotations

import pytest

from gdb_plugin.ticks import TickCache, read_tick_info
from snapshotdb.db import open_recording
from snapshotdb.errors import SnapshotNotFound, ThreadNotFound
from tests.e2e.harness import require_tools
from tests.native.move_tracer import record_steps


@pytest.fixture(scope="module")
def moves_db(build_target, tmp_path_factory):
    require_tools()
    binary = build_target("tests/native/move_target.c", "-pthread", "-mavx2")
    db = tmp_path_factory.mktemp("tick-cache") / "move.db"
    record_steps(binary, db)
    return db


FIELDS = ("tick", "tid", "exe_path", "build_id", "regions", "rsp", "fs_base", "libraries")


def _plain(info) -> dict:
    return {name: getattr(info, name) for name in FIELDS}


def _rows(info) -> tuple:
    """The rows a move's layout is made of, by name (read ahead, they carry more)."""
    snap, maps, threads = info.rows
    m_cols = ("start", "end", "perms", "offset", "path")
    t_cols = ("tid", "name", "gpregs", "fpregs", "xstate")
    return (
        {k: v for k, v in snap._mapping.items() if k != "tick"},
        [tuple(getattr(m, c) for c in m_cols) for m in maps],
        [tuple(getattr(t, c) for c in t_cols) for t in threads],
    )


def test_planned_ticks_read_ahead_equal_ticks_read_alone(moves_db):
    with open_recording(moves_db) as recording:
        ticks = [5, 1, 3, 2, 4]  # any order: a sweep's
        alone = {t: read_tick_info(recording, t, None) for t in ticks}
        cache = TickCache(recording)
        cache.READ_AHEAD = 3  # more than one read ahead
        cache.plan(ticks)
        for tick in ticks:
            info = cache.get(tick, None)
            assert _plain(info) == _plain(alone[tick])
            assert _rows(info) == _rows(alone[tick])
        assert len({len(alone[t].regions) for t in ticks}) > 1  # the map differs: it counts


def test_planned_errors_are_each_ticks_own(targets_db):
    with open_recording(targets_db[0]) as recording:
        cache = TickCache(recording)
        cache.plan([1, 99, 2])
        assert cache.get(1, None).tick == 1
        with pytest.raises(SnapshotNotFound, match="No tick 99: valid ticks are 1 to 4"):
            cache.get(99, None)
        with pytest.raises(ThreadNotFound, match="No thread 1 at tick 2: threads are "):
            cache.get(2, 1)
        assert cache.get(2, None).tick == 2
