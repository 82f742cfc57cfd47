"""Recording benchmark: snapshots of a live process both ways, gcore, page lookups.

Prints one JSON object. For each size (BENCH_SIZES_MIB, default 64 and 1024 MiB of random
heap, every page resident; SNAPSHOTS rounds with about 10 pages written between
snapshots), each part in a benchmark process of its own on a target process of its own
(what one part leaves held, SQLite caches and the allocator's arenas, does not count in
the next one's memory, nor its files in the next one's time):

    first     a first snapshot (ttd's default way) and GDB's `gcore` of the same process
              (the command's time in an attached GDB, to a new file, as the first
              snapshot writes a new database) alternate REPEATS times, each after a sync
              (dirty pages of the one before would slow the next down); medians, as
              machines of this kind differ from one minute to the next. Beside each time,
              the CPU time it took (ours: every thread of the benchmark process; gcore's:
              GDB's), which other work on the machine changes less than the time
    tracked   the kernel's write tracking (the default): a first snapshot, then the
              incremental ones; what the recorder holds beyond its baseline after them,
              and at its peak
    scan      today's way, forced (reads all memory, compares it with the last bytes)
 The 1 GiB figures are repeated at the top level:
incremental_ms_1gib (goal <= 15 and >= 20x faster than incremental_ms_1gib_scan),
first_snapshot_s_1gib (goal <= gcore_s_1gib), recorder_extra_rss_mib (goal <= 64).
Then page lookup latency at 1M stored page versions (bench/page_lookup.py).
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
from ttd_cli.mi import MiGdb  # noqa: E402

SNAPSHOTS = 10
REPEATS = 5


def build_target(tmp: str) -> str:
    out = os.path.join(tmp, "heap")
    subprocess.run(["gcc", "-O2", "-o", out, str(HERE / "targets" / "heap.c")], check=True)
    return out


def status_kib(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Target:
    """The heap program: `write()` makes it change about 10 pages and answer."""

    def __init__(self, exe: str, mib: int):
        self.proc = subprocess.Popen(
            [exe, str(mib), "10"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout.read(1) == b"r"
        self.pid = self.proc.pid

    def write(self) -> None:
        self.proc.stdin.write(b"x")
        self.proc.stdin.flush()
        assert self.proc.stdout.read(1) == b"r"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def snapshot(recorder, target: Target, tracker: str) -> tuple[float, object]:
    with ptrace_stopped(target.pid):
        t0 = time.perf_counter()
        stats = snapshot_live(recorder, target.pid, tracker=tracker)
        return time.perf_counter() - t0, stats


def series(target: Target, db: str, tracker: str) -> dict:
    """A first snapshot and SNAPSHOTS incremental ones into a new recording."""
    engine = open_engine(db, create=True)
    recorder = writer_for_pid(engine, target.pid)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS (VmHWM) starts again from here
    rss_before = status_kib("self", "VmRSS")
    first, stats = snapshot(recorder, target, tracker)
    sizes, times = [os.path.getsize(db)], []
    for _ in range(SNAPSHOTS):
        target.write()
        seconds, stats = snapshot(recorder, target, tracker)
        times.append(seconds)
        sizes.append(os.path.getsize(db))
    result = {
        "first_s": round(first, 3),
        "incremental_ms_median": round(statistics.median(times) * 1000, 2),
        "tracker": stats.tracker,
        "extra_rss_mib": round((status_kib("self", "VmRSS") - rss_before) / 1024, 1),
        "extra_rss_mib_peak": round((status_kib("self", "VmHWM") - rss_before) / 1024, 1),
        "db_bytes_first": sizes[0],
        "db_bytes_per_incremental_snapshot": (sizes[-1] - sizes[0]) // SNAPSHOTS,
        "last_snapshot": {k: v for k, v in vars(stats).items() if isinstance(v, int)},
    }
    recorder.close()
    engine.dispose()
    return result


def cpu_s(pid: int | str) -> float:
    """The CPU time (user + system, all threads) process `pid` has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_snapshot_s(target: Target, db: str) -> tuple[float, float]:
    """The first snapshot's time and the CPU time it took (every thread of ours)."""
    engine = open_engine(db, create=True)
    recorder = writer_for_pid(engine, target.pid)
    os.sync()
    cpu = cpu_s("self")
    seconds, _ = snapshot(recorder, target, "auto")
    cpu = cpu_s("self") - cpu
    recorder.close()
    engine.dispose()
    os.unlink(db)
    return seconds, cpu


def gcore_s(target: Target, core: str) -> tuple[float, float]:
    """The time of GDB's `gcore` command, GDB attached to the process beforehand, and the
    CPU time GDB took for it."""
    with MiGdb() as gdb:
        gdb.mi(f"-target-attach {target.pid}", timeout_s=120)
        os.sync()
        cpu = cpu_s(gdb.pid)
        t0 = time.perf_counter()
        gdb.cli(f"gcore {core}", timeout_s=600)
        seconds = time.perf_counter() - t0
        cpu = cpu_s(gdb.pid) - cpu
        gdb.mi("-target-detach")
    os.unlink(core)
    return seconds, cpu


PARTS = ("tracked", "scan", "first")


def measure_part(part: str, exe: str, mib: int, tmp: str) -> dict:
    target = Target(exe, mib)
    try:
        if part != "first":
            return series(
                target,
                os.path.join(tmp, f"{part}{mib}.db"),
                "auto" if part == "tracked" else "scan",
            )
        firsts, gcores = [], []
        for i in range(REPEATS):
            firsts.append(first_snapshot_s(target, os.path.join(tmp, f"first{mib}-{i}.db")))
            gcores.append(gcore_s(target, os.path.join(tmp, f"core{mib}-{i}")))
        return {
            "resident_mib": round(status_kib(target.pid, "VmRSS") / 1024, 1),
            "first_snapshot_s": [round(s, 3) for s, _ in firsts],
            "gcore_s": [round(s, 3) for s, _ in gcores],
            "first_snapshot_cpu_s": [round(c, 2) for _, c in firsts],
            "gcore_cpu_s": [round(c, 2) for _, c in gcores],
        }
    finally:
        target.close()


def measure(exe: str, mib: int, tmp: str) -> dict:
    parts = {}
    for part in PARTS:
        done = subprocess.run(
            [sys.executable, __file__, "--part", part, exe, str(mib), tmp],
            stdout=subprocess.PIPE,
            check=True,
            text=True,
        )
        parts[part] = json.loads(done.stdout)
    first = parts.pop("first")
    return {
        **first,
        **parts,
        "first_snapshot_s_median": statistics.median(first["first_snapshot_s"]),
        "gcore_s_median": statistics.median(first["gcore_s"]),
        "first_snapshot_cpu_s_median": statistics.median(first["first_snapshot_cpu_s"]),
        "gcore_cpu_s_median": statistics.median(first["gcore_cpu_s"]),
        "speedup_incremental": round(
            parts["scan"]["incremental_ms_median"] / parts["tracked"]["incremental_ms_median"], 1
        ),
    }


def main() -> None:
    if sys.argv[1:2] == ["--part"]:
        part, exe, mib, tmp = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
        print(json.dumps(measure_part(part, exe, mib, tmp)))
        return
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES_MIB", "64,1024").split(",")]
    lookups = int(os.environ.get("BENCH_LOOKUP_PAGES", "1000000"))
    result = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_target(tmp)
        result["capture"] = {f"{mib}_mib": measure(exe, mib, tmp) for mib in sizes}
    big = result["capture"].get("1024_mib")
    if big is not None:
        result.update(
            {
                "incremental_ms_1gib": big["tracked"]["incremental_ms_median"],
                "incremental_ms_1gib_scan": big["scan"]["incremental_ms_median"],
                "first_snapshot_s_1gib": big["first_snapshot_s_median"],
                "gcore_s_1gib": big["gcore_s_median"],
                "first_snapshot_cpu_s_1gib": big["first_snapshot_cpu_s_median"],
                "gcore_cpu_s_1gib": big["gcore_cpu_s_median"],
                "recorder_extra_rss_mib": big["tracked"]["extra_rss_mib"],
            }
        )
    result["lookup"] = page_lookup.run(lookups)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
