"""Builds and runs fault_driver.c (the page server's fault path without a process) for
the test_fault_*.py modules, and the recording they run it on: a region whose pages
change, vanish, come back and come late over four ticks, with what every page holds
at every tick as Python reads the schedule."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
from pathlib import Path

import pytest

from snapshotdb.db import open_engine
from snapshotdb.pages import PAGE_SIZE, check_of, encode
from tests.conftest import TOP

# the page server's objects the driver links with (native/build/lazy/)
OBJECTS = (
    "store_sqlite",
    "store_pg",
    "codec",
    "pagemap",
    "pagecache",
    "verify",
    "verify_helper",
    "sha256x16",
    "err",
    "io",
    "region",
    "fault",
    "ranges",
)

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


def build_driver(native_build: Path, out_dir: Path) -> Path:
    out = out_dir / "fault_driver"
    objects = [str(native_build / "build" / "lazy" / f"{name}.o") for name in OBJECTS]
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(native_build),
            "-o",
            str(out),
            str(TOP / "tests" / "native" / "fault_driver.c"),
            *objects,
            "-lsqlite3",
            "-lpq",
            "-lzstd",
            "-lcrypto",
            "-pthread",
        ],
        check=True,
        timeout=120,
    )
    return out


def run_driver(driver: Path, *args, env: dict | None = None) -> list[str]:
    result = subprocess.run(
        [str(driver), *map(str, args)], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def content(name: str) -> bytes:
    return (name.encode() * (PAGE_SIZE // len(name) + 1))[: PAGE_SIZE - 8] + bytes(8)


def at(tick: int) -> dict[int, str | None]:
    """Each page's content at tick (None: zeros)."""
    pages: dict[int, str | None] = {}
    for t in TICKS:
        if t <= tick:
            pages.update(SCHEDULE[t])
    return pages


def expected_lines(tick: int) -> list[str]:
    """The driver's lines for every page of the region at tick."""
    pages = at(tick)
    lines = []
    for k in range(NPAGES):
        name = pages.get(k)
        digest = hashlib.sha256(content(name)).hexdigest() if name else "zero"
        lines.append(f"{REC + k * PAGE_SIZE:#x} {digest}")
    return lines


def make_ticks_db(db: Path) -> Path:
    """The recording of SCHEDULE (page tables only: all the driver reads), each content
    with its check, as the recorder writes them."""
    open_engine(str(db), create=True).dispose()
    ids: dict[str, int] = {}
    with sqlite3.connect(db) as conn:
        for tick in TICKS:
            for k, name in SCHEDULE[tick].items():
                if name is not None and name not in ids:
                    digest, codec, data = encode(content(name))
                    ids[name] = conn.execute(
                        "INSERT INTO page_content (digest, codec, data, xxh3) VALUES (?, ?, ?, ?)",
                        (digest, codec, data, check_of(content(name), digest)),
                    ).lastrowid
                conn.execute(
                    "INSERT INTO page_version (address, first_tick, content_id) VALUES (?, ?, ?)",
                    (REC + k * PAGE_SIZE, tick, ids.get(name)),
                )
    conn.close()
    return db


def damage(db: Path, name: str) -> None:
    """Give content `name` other bytes under the same digest, in place."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE page_content SET codec = ?, data = ? WHERE digest = ?",
            (*encode(content("ZZ"))[1:], encode(content(name))[0]),
        )
    conn.close()


def module_fixtures():
    """The fixtures of a test_fault_*.py module that runs the driver on the ticks
    recording with the verified-page cache off (every page read from the recording):
    `driver, ticks_db, no_cache = module_fixtures()` at the module's top level."""

    @pytest.fixture(scope="module")
    def driver(native_build, tmp_path_factory):
        return build_driver(native_build, tmp_path_factory.mktemp("driver"))

    @pytest.fixture(scope="module")
    def ticks_db(tmp_path_factory):
        return make_ticks_db(tmp_path_factory.mktemp("ticks") / "ticks.db")

    @pytest.fixture(scope="module", autouse=True)
    def no_cache():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TTD_PAGE_CACHE", "off")
            yield

    return driver, ticks_db, no_cache
