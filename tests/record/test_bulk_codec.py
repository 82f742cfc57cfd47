"""The stored form ttd_store_pages (native/capture/encoder.c) gives a page: a zstd frame when
its first 256 bytes' values repeat clearly more than random bytes' do and the frame is
smaller than the page, else the raw bytes; every stored page decodes to its bytes."""

from __future__ import annotations

import os
import random
from array import array

import pytest
from sqlalchemy import text

from snapshotdb.capture import bulk_store
from snapshotdb.db import open_engine
from snapshotdb.pages import PAGE_SIZE, decode
from tests.conftest import require


def _text(n: int) -> bytes:
    line = f"line {n} of a text that compresses well\n".encode()
    return (line * (PAGE_SIZE // len(line) + 1))[:PAGE_SIZE]


def _random(seed: int, size: int = PAGE_SIZE) -> bytes:
    return random.Random(seed).randbytes(size)


# name: (page, codec it is stored with)
PAGES = {
    "random": (_random(1), "raw"),
    "text": (_text(1), "zstd"),
    "one byte repeated": (b"\x5a" * PAGE_SIZE, "zstd"),
    "mostly zeros": (b"\x01" + bytes(PAGE_SIZE - 1), "zstd"),
    # 256 random bytes then zeros: judged by its start (documented)
    "random start": (_random(2, 256) + bytes(PAGE_SIZE - 256), "raw"),
    # random bytes over only 16 values: repeats more than random bytes, and compresses
    "random nibbles": (bytes(b & 15 for b in _random(3)), "zstd"),
    # random bytes over 240 values: too close to random to be tried (zstd would save 1%)
    "random over 240 values": (bytes(random.Random(4).choices(range(240), k=PAGE_SIZE)), "raw"),
    # over 128 values: tried, and stored in 7 bits a byte
    "random over 128 values": (bytes(random.Random(5).choices(range(128), k=PAGE_SIZE)), "zstd"),
}


@pytest.fixture
def stored(tmp_path):
    """{name: (codec, data)} of PAGES stored by one ttd_store_pages call."""
    require(bulk_store.LIBRARY.exists(), "make -C native/capture")
    names = list(PAGES)
    path = tmp_path / "mem"
    path.write_bytes(b"".join(PAGES[n][0] for n in names))
    engine = open_engine(tmp_path / "rec.db", create=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        with engine.connect() as conn, conn.begin():
            assert bulk_store.usable(conn)
            runs = [(0, len(names) * PAGE_SIZE)]
            ids, _, _ = bulk_store.store(conn, fd, runs, array("q", [0] * len(names)), 1)
            rows = {
                cid: (codec, bytes(data), bytes(digest))
                for cid, codec, data, digest in conn.execute(
                    text("SELECT id, codec, data, digest FROM page_content")
                )
            }
    finally:
        os.close(fd)
        engine.dispose()
    return {name: rows[cid] for name, cid in zip(names, ids, strict=True)}


@pytest.mark.parametrize("name", list(PAGES))
def test_stored_form(stored, name):
    page, codec = PAGES[name]
    got_codec, data, digest = stored[name]
    assert got_codec == codec
    assert decode(got_codec, data, digest) == page
    if codec == "zstd":
        assert len(data) < PAGE_SIZE
