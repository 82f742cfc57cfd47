"""Page lookup latency at 1M stored pages (imported by bench/record.py).

Builds a recording with N page versions (N/4 addresses x 4 versions each,
distinct contents), then times "page at (A, T)" at random addresses and ticks:
through snapshotdb's PageReader (SQL + zstd decode + sha256 check) and the SQL
lookup alone (what the C page server does before decoding).
"""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import tempfile
import time

from snapshotdb.db import open_engine
from snapshotdb.pages import encode
from snapshotdb.reader import PAGE_AT_SQL, PageReader

BASE = 0x7F0000000000


def build(path: str, versions: int, ticks: int = 4) -> None:
    open_engine(path, create=True).dispose()
    conn = sqlite3.connect(path)
    addresses = versions // ticks
    template = bytearray(os.urandom(2048)) + bytes(2048)  # half random: realistic compression
    contents, rows = [], []
    for i in range(versions):
        template[0:8] = i.to_bytes(8, "little")
        digest, codec, data = encode(bytes(template))
        contents.append((i + 1, digest, codec, data))
        rows.append((BASE + (i % addresses) * 4096, 1 + i // addresses, i + 1))
    conn.executemany(
        "INSERT INTO page_content (id, digest, codec, data) VALUES (?,?,?,?)", contents
    )
    conn.executemany(
        "INSERT INTO page_version (address, first_tick, content_id) VALUES (?,?,?)", rows
    )
    conn.commit()
    conn.close()


def percentile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q) - 1]


def measure(path: str, versions: int, ticks: int = 4, lookups: int = 20000) -> dict:
    addresses = versions // ticks
    rng = random.Random(1)
    probes = [
        (BASE + rng.randrange(addresses) * 4096, rng.randrange(1, ticks + 1))
        for _ in range(lookups)
    ]
    engine = open_engine(path, readonly=True)
    full, sql_only = [], []
    readers = {t: PageReader(engine, t) for t in range(1, ticks + 1)}
    for rec_addr, tick in probes:
        t0 = time.perf_counter()
        readers[tick].page(rec_addr)
        full.append((time.perf_counter() - t0) * 1e6)
    raw = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sql = str(PAGE_AT_SQL).replace(":address", "?").replace(":tick", "?")
    for rec_addr, tick in probes:
        t0 = time.perf_counter()
        raw.execute(sql, (rec_addr, tick)).fetchone()
        sql_only.append((time.perf_counter() - t0) * 1e6)
    for reader in readers.values():
        reader.close()
    return {
        "stored_page_versions": versions,
        "lookups": lookups,
        "page_lookup_us_p50": round(statistics.median(full), 2),
        "page_lookup_us_p99": round(percentile(full, 99), 2),
        "page_lookup_sql_only_us_p50": round(statistics.median(sql_only), 2),
        "page_lookup_sql_only_us_p99": round(percentile(sql_only, 99), 2),
    }


def run(versions: int = 1_000_000) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lookup.db")
        t0 = time.perf_counter()
        build(path, versions)
        built_s = time.perf_counter() - t0
        result = measure(path, versions)
        result["db_bytes"] = os.path.getsize(path)
        result["build_s"] = round(built_s, 1)
        return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
