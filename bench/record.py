"""Recording benchmark: capture throughput, database bytes per snapshot, page lookups.

Prints one JSON object. For 64 MiB and 1 GiB processes (random heap, every page
resident): the first snapshot and SNAPSHOTS incremental ones (about 10 pages
changed between them), as MiB/s of resident memory scanned, and the database's
growth per snapshot. Then page lookup latency at 1M stored page versions
(bench/page_lookup.py). Targets on this 2-core machine: incremental >= 1 GiB/s
scanned, page lookup p50 <= 20 us.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import page_lookup  # noqa: E402

from snapshotdb.capture import ptrace_stopped, snapshot_live, writer_for_pid  # noqa: E402
from snapshotdb.db import open_engine  # noqa: E402

SNAPSHOTS = 10


def build_target(tmp: str) -> str:
    out = os.path.join(tmp, "heap")
    subprocess.run(["gcc", "-O2", "-o", out, str(HERE / "targets" / "heap.c")], check=True)
    return out


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def capture_series(target: str, mib: int, tmp: str) -> dict:
    proc = subprocess.Popen([target, str(mib), "10"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.read(1) == b"r"
        db = os.path.join(tmp, f"rec{mib}.db")
        engine = open_engine(db, create=True)
        writer = writer_for_pid(engine, proc.pid, keep_bytes=True)
        rss = resident_bytes(proc.pid)
        times, sizes = [], []
        for i in range(SNAPSHOTS + 1):
            if i:
                proc.stdin.write(b"x")
                proc.stdin.flush()
                assert proc.stdout.read(1) == b"r"
            with ptrace_stopped(proc.pid):
                t0 = time.perf_counter()
                stats = snapshot_live(writer, proc.pid, reason="manual")
                times.append(time.perf_counter() - t0)
            sizes.append(os.path.getsize(db))
        engine.dispose()
        incremental = times[1:]
        mib_rss = rss / 2**20
        return {
            "resident_mib": round(mib_rss, 1),
            "first_s": round(times[0], 3),
            "first_mib_per_s": round(mib_rss / times[0], 1),
            "incremental_s_median": round(statistics.median(incremental), 4),
            "incremental_mib_per_s": round(mib_rss / statistics.median(incremental), 1),
            "db_bytes_first": sizes[0],
            "db_bytes_per_incremental_snapshot": (sizes[-1] - sizes[0]) // SNAPSHOTS,
            "last_snapshot": {k: v for k, v in vars(stats).items() if isinstance(v, int)},
        }
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES_MIB", "64,1024").split(",")]
    lookups = int(os.environ.get("BENCH_LOOKUP_PAGES", "1000000"))
    result = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    with tempfile.TemporaryDirectory() as tmp:
        target = build_target(tmp)
        result["capture"] = {f"{mib}_mib": capture_series(target, mib, tmp) for mib in sizes}
    result["lookup"] = page_lookup.run(lookups)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
