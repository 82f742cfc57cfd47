"""A call that changes much (issue 8, item 7): the report takes time in proportion to
what changed and is bounded: every page is listed with its address, mapping, kind and
whether it changed, its changed ranges capped with a count of the rest, bytes kept for
the first pages only (the hex diff is for them), names for the first changed pages."""

from __future__ import annotations

import time

import pytest

from gdb_plugin.report import KEEP_BYTES_PAGES, MAX_RANGES, PAGE_SIZE
from tests.e2e.harness import call, gdb_with_recording

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def gdb(escape_recording):
    with gdb_with_recording(escape_recording[0]) as gdb:
        yield gdb


def _page_text(gdb, address: int) -> list[str]:
    lines = gdb.cli(f"info dirtied-pages {address:#x}").splitlines()
    return lines[[i for i, line in enumerate(lines) if line.startswith("Page ")][0] :]


def test_many_pages_are_all_listed_and_bytes_kept_for_the_first(gdb):
    started = time.monotonic()
    got = call(gdb, 1, "scribble(48)", "--timeout 60", timeout_s=180)  # 12288 pages
    assert time.monotonic() - started < 120  # a ceiling: the report is not minutes
    assert (got["status"], got["value"]) == ("returned", "1")
    fresh = [p for p in got["dirtied_pages"] if p["kind"] == "new-mapping"]
    assert len(fresh) >= 48 * 256
    assert all(p["changed"] for p in fresh)
    # the block's pages but its first and last (malloc's chunk header, the tail)
    full = [p for p in fresh if p["changed_ranges"] == [{"offset": 0, "length": PAGE_SIZE}]]
    assert len(full) >= 48 * 256 - 2
    late = int(full[-1]["address"], 16)  # past the KEEP_BYTES_PAGES first pages
    lines = _page_text(gdb, late + 100)
    assert lines[0] == f"Page {late:#x} (new-mapping, no recorded mapping)"
    assert lines[1:] == [
        f"Changed {PAGE_SIZE} bytes at {late:#x}, offset 0.",
        f"Its bytes were not kept: the call wrote more than {KEEP_BYTES_PAGES} pages.",
    ]
    early = int(full[0]["address"], 16)
    assert _page_text(gdb, early)[2].split()[1] == "-00"  # hex diff: zero before the call
    # so much changed (memory mapped) that the process is not reset: the next call
    # starts from the recording, the process moved back to the tick (issue 10)
    again = call(gdb, 1, "step_value()")
    assert again["value"] == "10" and "move" in again["timings_ms"]


def test_changed_ranges_are_capped_per_page(gdb):
    got = call(gdb, 2, "stripes()")
    [page] = [p for p in got["dirtied_pages"] if len(p["changed_ranges"]) == MAX_RANGES]
    assert page["changed_ranges"][:2] == [{"offset": 0, "length": 1}, {"offset": 2, "length": 1}]
    assert page["changed_ranges_left_out"] == 2048 - MAX_RANGES
    assert page["symbol"].startswith("table+")
    lines = _page_text(gdb, int(page["address"], 16))
    assert f"... and {2048 - MAX_RANGES} more changed ranges (not kept)." in lines
