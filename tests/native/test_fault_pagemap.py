"""The fault path's page map (issue 12), without a process: fault_driver.c runs the
page server's own store, page map, verifier and pager_set_tick() on a real recording
with pages that change, vanish, come back and come late across four ticks, and every
answer is checked against the recording as Python reads it."""

from __future__ import annotations

import shutil

import pytest

from snapshotdb.pages import PAGE_SIZE
from tests.native.fault_driver import (
    NPAGES,
    REC,
    TICKS,
    at,
    damage,
    expected_lines,
    module_fixtures,
    run_driver,
)

pytestmark = pytest.mark.timeout(120)

driver, ticks_db, no_cache = module_fixtures()


def differing(tick_a: int, tick_b: int) -> list[str]:
    """The pages whose content differs, as merged ranges."""
    a, b = at(tick_a), at(tick_b)
    ranges: list[list[int]] = []
    for k in (k for k in range(NPAGES) if a.get(k) != b.get(k)):
        if ranges and ranges[-1][1] == k:
            ranges[-1][1] = k + 1
        else:
            ranges.append([k, k + 1])
    return [f"differ {REC + lo * PAGE_SIZE:#x}-{REC + hi * PAGE_SIZE:#x}" for lo, hi in ranges]


def run(driver, db, *args) -> list[str]:
    return run_driver(driver, db, *args)


@pytest.mark.parametrize("tick", TICKS)
@pytest.mark.parametrize("way", ["map", "ranged"])
def test_every_page_at_every_tick(driver, ticks_db, tick, way):
    assert run(driver, ticks_db, "fetch", tick, hex(REC), NPAGES, way) == expected_lines(tick)


@pytest.mark.parametrize("tick", TICKS)
def test_a_window_shared_with_the_helper(driver, ticks_db, tick):
    assert run(driver, ticks_db, "window", tick, hex(REC), NPAGES) == expected_lines(tick)


@pytest.mark.parametrize("tick", TICKS)
def test_pages_prepared_ahead(driver, ticks_db, tick):
    assert run(driver, ticks_db, "ahead", tick, hex(REC), NPAGES) == expected_lines(tick)


@pytest.mark.parametrize(("tick_a", "tick_b"), [(1, 2), (1, 3), (3, 1), (2, 4), (4, 1), (2, 2)])
def test_moving_between_ticks_lists_what_differs(driver, ticks_db, tick_a, tick_b):
    """pager_set_tick(): the pages whose content differs (a page that changed and
    changed back is not among them), then the pages at the new tick."""
    lines = run(driver, ticks_db, "move", tick_a, tick_b, hex(REC), NPAGES)
    assert lines == differing(tick_a, tick_b) + expected_lines(tick_b)
    assert (tick_a, tick_b) != (1, 3) or not any(
        line.startswith(f"differ {REC:#x}") for line in lines
    )


def corrupt(db, tmp_path, name: str):
    """A copy of db whose content `name` has other bytes under the same digest."""
    bad = tmp_path / "corrupt.db"
    shutil.copy(db, bad)
    damage(bad, name)
    return bad


@pytest.mark.parametrize("mode", ["ahead", "window", "fetch"])
def test_a_corrupt_page_is_named_when_it_is_needed(driver, ticks_db, tmp_path, mode):
    """Page 5 at tick 1 (F0) is corrupt: the pages before it are served, prepared
    ahead or not; the page itself is the error, with the page server's words."""
    bad = corrupt(ticks_db, tmp_path, "F0")
    lines = run(driver, bad, mode, 1, hex(REC), NPAGES, *(["map"] if mode == "fetch" else []))
    message = (
        f"ERROR page {REC + 5 * PAGE_SIZE:#x} at tick 1 is corrupt "
        "(its sha256 does not match the recorded digest)"
    )
    if mode == "window":
        assert lines == [message]
    else:
        assert lines[:5] == expected_lines(1)[:5]
        assert lines[5] == f"{REC + 5 * PAGE_SIZE:#x} {message}" and len(lines) == 6
    # the other ticks do not have F0: untouched by the damage
    assert run(
        driver, bad, mode, 2, hex(REC), NPAGES, *(["map"] if mode == "fetch" else [])
    ) == expected_lines(2)
