"""The fault path's page map (issue 12), without a process: fault_driver.c runs the
page server's own store, page map, verifier and pager_set_tick() on a real recording
with pages that change, vanish, come back and come late across four ticks, and every
answer is checked against the recording as Python reads it."""
from __future__ import annotations

import hashlib
import shutil
import sqlite3

import pytest

from snapshotdb.db import open_engine
from snapshotdb.pages import PAGE_SIZE, encode
from tests.native.fault_driver import build_driver, run_driver

pytestmark = pytest.mark.timeout(120)

REC = 0x200000000000
NPAGES = 8
TICKS = (1, 2, 3, 4)

# tick -> {page index: content name, or None: recorded as zeros}; a name is the same
# bytes wherever it appears (one content row: "A0" at tick 3 is tick 1's row again)
SCHEDULE = {
    1: {0: "A0", 1: "B0", 3: "D0", 5: "F0", 6: "G0", 7: "H0"},
    2: {0: "A1", 4: "E0", 5: "F1"},
    3: {0: "A0", 1: None, 5: "F2"},
    4: {2: "C0", 5: "F1", 7: None},
}


def content(name: str) -> bytes:
    return (name.encode() * (PAGE_SIZE // len(name) + 1))[:PAGE_SIZE - 8] + bytes(8)


def at(tick: int) -> dict[int, str | None]:
    """Each page's content at tick (None: zeros)."""
    pages: dict[int, str | None] = {}
    for t in TICKS:
        if t <= tick:
            pages.update(SCHEDULE[t])
    return pages


def expected_lines(tick: int) -> list[str]:
    pages = at(tick)
    lines = []
    for k in range(NPAGES):
        name = pages.get(k)
        digest = hashlib.sha256(content(name)).hexdigest() if name else "zero"
        lines.append(f"{REC + k * PAGE_SIZE:#x} {digest}")
    return lines


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


@pytest.fixture(scope="module")
def ticks_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("pagemap") / "ticks.db"
    open_engine(str(db), create=True).dispose()
    ids: dict[str, int] = {}
    with sqlite3.connect(db) as conn:
        for tick in TICKS:
            for k, name in SCHEDULE[tick].items():
                if name is not None and name not in ids:
                    digest, codec, data = encode(content(name))
                    ids[name] = conn.execute("INSERT INTO page_content (digest, codec, data) "
                                             "VALUES (?, ?, ?)", (digest, codec, data)).lastrowid
                conn.execute("INSERT INTO page_version (address, first_tick, content_id) "
                             "VALUES (?, ?, ?)", (REC + k * PAGE_SIZE, tick, ids.get(name)))
    conn.close()
    return db


@pytest.fixture(scope="module")
def driver(native_build, tmp_path_factory):
    return build_driver(native_build, tmp_path_factory.mktemp("driver"))


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
    assert (tick_a, tick_b) != (1, 3) or not any(line.startswith(f"differ {REC:#x}")
                                                 for line in lines)


def corrupt(db, tmp_path, name: str):
    """A copy of db whose content `name` has other bytes under the same digest."""
    bad = tmp_path / "corrupt.db"
    shutil.copy(db, bad)
    with sqlite3.connect(bad) as conn:
        conn.execute("UPDATE page_content SET codec = ?, data = ? WHERE digest = ?",
                     (*encode(content("ZZ"))[1:], encode(content(name))[0]))
    conn.close()
    return bad


@pytest.mark.parametrize("mode", ["ahead", "window", "fetch"])
def test_a_corrupt_page_is_named_when_it_is_needed(driver, ticks_db, tmp_path, mode):
    """Page 5 at tick 1 (F0) is corrupt: the pages before it are served, prepared
    ahead or not; the page itself is the error, with the page server's words."""
    bad = corrupt(ticks_db, tmp_path, "F0")
    lines = run(driver, bad, mode, 1, hex(REC), NPAGES, *(["map"] if mode == "fetch" else []))
    message = (f"ERROR page {REC + 5 * PAGE_SIZE:#x} at tick 1 is corrupt "
               "(its sha256 does not match the recorded digest)")
    if mode == "window":
        assert lines == [message]
    else:
        assert lines[:5] == expected_lines(1)[:5]
        assert lines[5] == f"{REC + 5 * PAGE_SIZE:#x} {message}" and len(lines) == 6
    # the other ticks do not have F0: untouched by the damage
    assert run(driver, bad, mode, 2, hex(REC), NPAGES,
               *(["map"] if mode == "fetch" else [])) == expected_lines(2)
