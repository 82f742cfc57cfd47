"""The verified-page cache (native/pageserver/pagecache.c), through fault_driver.c: pages
verified by one page server are installed by the next one of the same recording
without reading the recording again; another recording (a copy) starts cold; a cache
that is not ours alone is not used; entries are never torn, by threads or processes."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from snapshotdb.pages import PAGE_SIZE
from tests.native.fault_driver import (
    NPAGES,
    REC,
    build_driver,
    damage,
    expected_lines,
    make_ticks_db,
    run_driver,
)

pytestmark = pytest.mark.timeout(120)

F0 = REC + 5 * PAGE_SIZE  # page 5 holds content F0 at tick 1
CORRUPT = (
    f"{F0:#x} ERROR page {F0:#x} at tick 1 is corrupt "
    "(its sha256 does not match the recorded digest)"
)


@pytest.fixture(scope="module")
def driver(native_build, tmp_path_factory):
    return build_driver(native_build, tmp_path_factory.mktemp("driver"))


@pytest.fixture
def cache_dir(tmp_path):
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    return path


def fetch(driver, db, cache) -> list[str]:
    """Every page at tick 1, one at a time, through the page map (with the cache at
    `cache`, a directory or "off")."""
    env = dict(os.environ, TTD_PAGE_CACHE=str(cache))
    return run_driver(driver, db, "fetch", 1, hex(REC), NPAGES, "map", env=env)


def test_the_next_page_server_installs_what_the_first_verified(driver, tmp_path, cache_dir):
    """F0 is damaged in place after a first page server verified it: the next one
    still serves the recorded F0 (from the cache: it never reads the damaged row);
    without the cache the damage is found."""
    db = make_ticks_db(tmp_path / "ticks.db")
    assert fetch(driver, db, cache_dir) == expected_lines(1)
    assert (cache_dir / "pages.v1").stat().st_mode & 0o777 == 0o600
    damage(db, "F0")
    assert fetch(driver, db, cache_dir) == expected_lines(1)
    assert fetch(driver, db, "off")[5] == CORRUPT


def test_another_recording_starts_cold(driver, tmp_path, cache_dir):
    """A copy holds the same digests, but its pages were not verified from it: the
    damaged copy's F0 is named corrupt although the cache holds F0."""
    db = make_ticks_db(tmp_path / "ticks.db")
    assert fetch(driver, db, cache_dir) == expected_lines(1)
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    damage(copy, "F0")
    assert fetch(driver, copy, cache_dir)[5] == CORRUPT


def spoil_mode(cache_dir):
    cache_dir.chmod(0o777)


def spoil_file_mode(cache_dir):
    (cache_dir / "pages.v1").chmod(0o644)


def spoil_layout(cache_dir):
    with open(cache_dir / "pages.v1", "r+b") as f:
        f.write(b"notttd!!")


def spoil_link(cache_dir):
    os.rename(cache_dir / "pages.v1", cache_dir / "elsewhere")
    os.symlink(cache_dir / "elsewhere", cache_dir / "pages.v1")


@pytest.mark.parametrize(
    "spoil",
    [spoil_mode, spoil_file_mode, spoil_layout, spoil_link],
    ids=["dir-writable-by-others", "file-readable-by-others", "not-ours", "symlink"],
)
def test_a_cache_not_ours_alone_is_not_used(driver, tmp_path, cache_dir, spoil):
    """Filled, then spoiled: the damaged page is named corrupt again (read from the
    recording), and the process is served as without a cache."""
    db = make_ticks_db(tmp_path / "ticks.db")
    assert fetch(driver, db, cache_dir) == expected_lines(1)
    damage(db, "F0")
    assert fetch(driver, db, cache_dir) == expected_lines(1)  # the cache serves F0
    spoil(cache_dir)
    lines = fetch(driver, db, cache_dir)
    assert lines[:5] == expected_lines(1)[:5] and lines[5] == CORRUPT


def test_entries_are_never_torn(driver, tmp_path, cache_dir):
    """Two processes of two threads each put and get 64 pages in a cache of 256
    entries for 2 s: every page a get returns hashes to its key."""
    env = dict(os.environ, TTD_PAGE_CACHE=str(cache_dir), TTD_PAGE_CACHE_MIB="1")
    tag = tmp_path / "tag"
    tag.write_bytes(b"one recording")
    procs = [
        subprocess.Popen(
            [str(driver), str(tag), "cache-stress", "2"], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    for out in outs:
        assert out[0] == "ok" and int(out[1]) > 0, out
