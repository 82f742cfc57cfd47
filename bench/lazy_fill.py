"""Lazy fill benchmark (issue 3): userfaultfd WP_ASYNC fills vs the soft-dirty workaround.

    .venv/bin/python bench/lazy_fill.py [--quick]

Prints one JSON object. Every figure comes from this run on this machine:

- recordings are synthetic but stored exactly like real ones (snapshotdb schema,
  zstd + sha256 per page): one anonymous rw-p region of 4 MiB, 256 MiB or 1 GiB
  in which every page is stored, 1 KiB random bytes + 3 KiB of a pattern
  (about 1.1 KiB compressed), so every fill decompresses and hashes a page;
- pages are touched from outside the rematerialized process with
  process_vm_readv (8 bytes per page), which is how gdbserver reads through
  libttdmem.so; the latency of a touch that faults is the full round trip
  (the kernel blocks the reader, ttd-pageserver looks the page up in SQLite,
  decompresses, hashes, UFFDIO_COPY_MODE_WP, the reader wakes). A small C
  helper does the touching so Python does not sit in the timed path;
- "sequential": pages in address order; "random": a random permutation of all pages;
- per fault: touches that faulted in random order, where the server serves one
  page per fault (its window is for sequential access only); median of three runs;
- per page: for each fault, its latency divided by the pages it filled
  (median of three runs)
  (fault-around window 64 KiB = 16 pages, used when a fault comes where the
  previous fill ended, i.e. sequential access), then the p50; hits on pages
  already filled are reported separately (mean over all touches);
- workaround: the same faults served as the known soft-dirty workaround does
  (per fault: read the whole pagemap of the process, UFFDIO_COPY with
  DONTWAKE, write "4" to /proc/PID/clear_refs, UFFDIO_WAKE), timed on a sample
  of random pages once a random half of the pages is present (the middle of a
  full session; every fault walks all present pages). This kernel has no
  soft-dirty, so the bits are no-ops but the page-table walks still happen: a
  lower bound;
- eager: mode "eager" fills every page (1 MiB copies) before handing out the process;
- baseline: the same touches, in the same run (taking turns with ttd's), on the
  process of bench/uffd_baseline.c: a bare userfaultfd handler in another process
  serving from an in-memory image, with ttd's window rule and pinning; each
  headline figure comes with the baseline's and their ratio (the issue 12 goals:
  fault_over_baseline <= 1.5, page_over_baseline <= 1.3, server_serve_us_p50 <= 5);
- cold and cached: the headline figures are the page server's as a recording's
  next calls see it, with the verified-page cache (native/pageserver/pagecache.h)
  filled by a first unmeasured run (the bench keeps its own cache in its temporary
  directory); the _cold ones (every page read from the recording, decoded and
  verified, as a first call sees it) come with TTD_PAGE_CACHE=off, in the same turns;
- serve: the page server's own time per fault (STATS serve_us_p50), from reading
  the fault to the end of its UFFDIO_COPY; the process is woken after (on one CPU
  the woken process runs inside the waking call); the baseline's serve is its copy;
- ready: from rematerialize() being called to a stopped process ready for
  gdbserver --attach (median of 5). The 4 GiB recording stores one page per MiB
  (ready time does no per-page work, so the page count does not matter; the
  64 MiB one stores every page); ready_ms_1000_ticks: 64 MiB recorded at 1000 ticks
  (16 pages changed per tick), at its last tick.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench"))

from machine import load_average, machine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gdb_plugin.remat import rematerialize  # noqa: E402
from snapshotdb.db import open_engine  # noqa: E402
from snapshotdb.models import Mapping, Recording, Snapshot, Thread  # noqa: E402
from snapshotdb.pages import PAGE_SIZE, check_of, encode  # noqa: E402
from snapshotdb.regs import FPREGS_SIZE, pack_gpregs  # noqa: E402

MiB = 1 << 20
REGION_START = 0x100000000000  # where the synthetic region lives in the "recorded" process
CODE_START, DATA_START, STACK_START = 0x400000, 0x600000, 0x7FF000000000
FAULT_AROUND_PAGES = 16

TOUCH_C = r"""
/* touch PID BASE NPAGES RANDOM SEED WINDOW: read 8 bytes of each page with
 * process_vm_readv, in address order or a seeded random order; write, per touch,
 * the latency in ns (u32) and whether it faulted (u8; simulated exactly like the
 * server's fault-around: a window only when the fault is where the previous
 * fill ended; it starts at the faulting page and stops at the first filled page). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <time.h>
static uint64_t ns(void) {
  struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000ull + t.tv_nsec;
}
int main(int argc, char **argv) {
  int pid = atoi(argv[1]); uint64_t base = strtoull(argv[2], 0, 0);
  size_t n = strtoull(argv[3], 0, 0);
  int rnd = atoi(argv[4]); uint64_t seed = strtoull(argv[5], 0, 0) | 1;
  size_t window = strtoull(argv[6], 0, 0);
  uint32_t *order = malloc(n * 4), *lat = malloc(n * 4);
  uint8_t *filled = calloc(n, 1), *faulted = malloc(n);
  for (size_t i = 0; i < n; i++) order[i] = i;
  if (rnd) for (size_t i = n - 1; i > 0; i--) {
    seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
    size_t j = seed % (i + 1); uint32_t t = order[i]; order[i] = order[j]; order[j] = t; }
  char buf[8];
  size_t last_end = (size_t)-1;
  for (size_t k = 0; k < n; k++) {
    size_t p = order[k], w = p == last_end ? window : 1, j = p;
    faulted[k] = !filled[p];
    for (; faulted[k] && j < n && j < p + w && !filled[j]; j++) filled[j] = 1;
    if (faulted[k]) last_end = j;
    struct iovec l = { buf, 8 }, r = { (void *)(base + p * 4096), 8 };
    uint64_t t0 = ns();
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) != 8) { perror("process_vm_readv"); return 1; }
    lat[k] = (uint32_t)(ns() - t0);
  }
  fwrite(lat, 4, n, stdout); fwrite(faulted, 1, n, stdout);
  return 0;
}
"""


class Tools(NamedTuple):
    touch: str  # TOUCH_C: touches pages of another process, timing each
    baseline: str  # bench/uffd_baseline.c: the bare userfaultfd handler


def build_tools(tmp: str) -> Tools:
    """Compile the toucher and the baseline handler into tmp."""
    tools = Tools(os.path.join(tmp, "touch"), os.path.join(tmp, "uffd_baseline"))
    with open(tools.touch + ".c", "w") as f:
        f.write(TOUCH_C)
    subprocess.run(["gcc", "-O2", "-o", tools.touch, tools.touch + ".c"], check=True)
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            str(TOP / "native"),
            "-o",
            tools.baseline,
            str(TOP / "bench" / "uffd_baseline.c"),
        ],
        check=True,
    )
    return tools


# ---- synthetic recordings ---------------------------------------------------------------


def gpregs() -> bytes:
    return pack_gpregs(
        {
            "rip": CODE_START,
            "cs": 0x33,
            "eflags": 0x202,
            "rsp": STACK_START + 0xFE000,
            "ss": 0x2B,
            "orig_rax": 2**64 - 1,
        }
    )


def fpregs() -> bytes:
    fp = bytearray(FPREGS_SIZE)
    struct.pack_into("<H", fp, 0, 0x37F)  # x87 control word after finit
    struct.pack_into("<II", fp, 24, 0x1F80, 0xFFFF)  # mxcsr, mxcsr_mask
    return bytes(fp)


def page_bytes(index: int) -> bytes:
    return os.urandom(1024) + struct.pack("<Q", index) * 384


def make_recording(
    path: str, size: int, store_every: int = 1, ticks: int = 1, changed_per_tick: int = 16
) -> None:
    """A recording of one region of `size` bytes at ticks 1..`ticks`: tick 1 stores every
    `store_every`-th page, each later tick a new version of `changed_per_tick` pages."""
    engine = open_engine(path, create=True)
    with Session(engine) as s, s.begin():
        rec = Recording(exe_path="/synthetic", build_id=None, cmdline='["/synthetic"]')
        s.add(rec)
        s.flush()
        for tick in range(1, ticks + 1):
            add_snapshot(s, rec.id, tick, size)
    engine.dispose()
    npages = size // PAGE_SIZE
    stored = [(i, 1) for i in range(0, npages, store_every)]
    for tick in range(2, ticks + 1):
        stored += [((tick * 37 + k * 1021) % npages, tick) for k in range(changed_per_tick)]
    conn = sqlite3.connect(path)
    with conn:
        contents, versions = [], []
        for content_id, (i, tick) in enumerate(stored, 1):
            raw = page_bytes(i)
            digest, codec, data = encode(raw)
            contents.append((content_id, digest, codec, data, check_of(raw, digest)))
            versions.append((REGION_START + i * PAGE_SIZE, tick, content_id))
        conn.executemany(  # each content with its check, as the recorder stores it
            "INSERT INTO page_content (id, digest, codec, data, xxh3) VALUES (?, ?, ?, ?, ?)",
            contents,
        )
        conn.executemany(
            "INSERT INTO page_version (address, first_tick, content_id) VALUES (?, ?, ?)", versions
        )
    conn.close()


def add_snapshot(s: Session, recording_id: int, tick: int, size: int) -> None:
    snap = Snapshot(
        recording_id=recording_id,
        tick=tick,
        reason="manual",
        stop_tid=0,
        pc=CODE_START,
        auxv=bytes(16),
        start_code=CODE_START,
        end_code=CODE_START + 0x1000,
        start_data=DATA_START,
        end_data=DATA_START + 0x1000,
        start_brk=DATA_START + 0x2000,
        brk=DATA_START + 0x2000,
        start_stack=STACK_START + 0xFF000,
        arg_start=STACK_START + 0xFF100,
        arg_end=STACK_START + 0xFF200,
        env_start=STACK_START + 0xFF200,
        env_end=STACK_START + 0xFF300,
    )
    s.add(snap)
    s.flush()
    s.add(Thread(snapshot_id=snap.id, tid=0, name="synthetic", gpregs=gpregs(), fpregs=fpregs()))
    for start, end, perms, name in (
        (CODE_START, CODE_START + 0x1000, "r-xp", ""),
        (DATA_START, DATA_START + 0x2000, "rw-p", ""),
        (REGION_START, REGION_START + size, "rw-p", ""),
        (STACK_START, STACK_START + 0x100000, "rw-p", "[stack]"),
    ):
        s.add(Mapping(snapshot_id=snap.id, start=start, end=end, perms=perms, offset=0, path=name))


# ---- measuring ----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None  # e.g. no hits: every touch faulted
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def on_cpus_of(pid: int):
    """preexec_fn: run the toucher on the CPUs of the rematerialized process. It stands in
    for the process's own thread, which the page server keeps on its own CPU."""
    cpus = os.sched_getaffinity(pid)
    return lambda: os.sched_setaffinity(0, cpus)


def touch(
    tool: str, pid: int, npages: int, randomly: bool, window: int
) -> tuple[list[int], list[int]]:
    out = subprocess.run(
        [tool, str(pid), hex(REGION_START), str(npages), str(int(randomly)), "12345", str(window)],
        capture_output=True,
        check=True,
        timeout=600,
        preexec_fn=on_cpus_of(pid),
    ).stdout
    lat = list(struct.unpack(f"<{npages}I", out[: 4 * npages]))
    return lat, list(out[4 * npages :])


def summarize(lat: list[int], faulted: list[int], npages: int, randomly: bool, window: int) -> dict:
    """Fault and hit latencies of one run of the toucher."""
    fault_us = [x / 1e3 for x, f in zip(lat, faulted, strict=True) if f]
    hit_us = [x / 1e3 for x, f in zip(lat, faulted, strict=True) if not f]
    # pages filled by each fault, from the fault order (same rule as the server)
    idx = [k for k, f in enumerate(faulted) if f]
    filled_counts = _pages_per_fault(npages, randomly, window)
    per_page = [lat[k] / 1e3 / count for k, count in zip(idx, filled_counts, strict=False)]
    return {
        "faults": len(fault_us),
        "fault_us_p50": pct(fault_us, 0.5),
        "fault_us_p99": pct(fault_us, 0.99),
        "per_page_us_p50": pct(per_page, 0.5),
        "hit_us_p50": pct(hit_us, 0.5),
        "all_touches_us_mean": sum(lat) / len(lat) / 1e3,
    }


def run_touch(
    db: str, tool: str, npages: int, randomly: bool, window: int, mode: str = "lazy"
) -> dict:
    with rematerialize(db, 1, mode=mode, fault_around_pages=window) as proc:
        lat, faulted = touch(tool, proc.pid, npages, randomly, window)
        stats = proc.stats()
        assert proc.written_pages() == [], "reads must never count as writes"
    return {
        **summarize(lat, faulted, npages, randomly, window),
        "server_serve_us_p50": stats["serve_us_p50"],
        "pages_served": stats["pages_served"],
    }


def run_baseline(
    tools: Tools,
    npages: int,
    randomly: bool,
    window: int,
    pinned: bool = True,
    missing: bool = False,
) -> dict:
    """The same touches on bench/uffd_baseline.c's process: a bare userfaultfd handler
    serving from memory, with ttd's window rule and pinning (missing: registered and
    filled without write protection, as the diff tracker does)."""
    cmd = [tools.baseline, hex(REGION_START), str(npages * PAGE_SIZE), str(window)]
    cmd += ([] if pinned else ["--no-pin"]) + (["--missing"] if missing else [])
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as handler:
        try:
            ready = handler.stdout.readline().split()  # it exits on any error: EOF
            if ready[:1] != ["READY"]:
                raise RuntimeError(f"uffd_baseline did not start: {ready}")
            lat, faulted = touch(tools.touch, int(ready[1]), npages, randomly, window)
            handler.terminate()
            stats = handler.communicate(timeout=60)[0].split()
        finally:
            if handler.poll() is None:
                handler.kill()
    assert stats[0] == "STATS" and int(stats[2]) == npages, stats
    return {
        **summarize(lat, faulted, npages, randomly, window),
        "server_serve_us_p50": int(stats[3]) / 1e3,
    }


def _pages_per_fault(npages: int, randomly: bool, window: int) -> list[int]:
    """Pages each fault fills, in fault order; mirrors the C helper's order and window rule."""
    order = list(range(npages))
    if randomly:
        seed = 12345 | 1
        mask = (1 << 64) - 1
        for i in range(npages - 1, 0, -1):
            seed ^= (seed << 13) & mask
            seed ^= seed >> 7
            seed ^= (seed << 17) & mask
            j = seed % (i + 1)
            order[i], order[j] = order[j], order[i]
    filled = bytearray(npages)
    counts = []
    last_end = -1
    for p in order:
        if filled[p]:
            continue
        j, w = p, window if p == last_end else 1
        while j < npages and j < p + w and not filled[j]:
            filled[j] = 1
            j += 1
        counts.append(j - p)
        last_end = j
    return counts


def run_workaround(db: str, tool: str, npages: int, samples: int) -> float:
    """p50 per page of the soft-dirty workaround, measured half way through a lazy
    session: a random half of the pages is filled first (its cost grows with the
    pages present: every fault walks them all), then `samples` random faults on
    the other half are timed."""
    rng = random.Random(7)
    pages = list(range(npages))
    rng.shuffle(pages)
    present, probe = pages[: npages // 2], pages[npages // 2 :][:samples]
    with rematerialize(db, 1, mode="workaround", fault_around_pages=1) as proc:
        for p in present:
            rec_addr = REGION_START + p * PAGE_SIZE
            proc.prefill(rec_addr, rec_addr + PAGE_SIZE)
        times = [touch_one(tool, proc.pid, p)[0] / 1e3 for p in probe]
    return pct(times, 0.5)


def touch_one(tool: str, pid: int, page: int) -> tuple[int, int]:
    out = subprocess.run(
        [tool, str(pid), hex(REGION_START + page * PAGE_SIZE), "1", "0", "1", "1"],
        capture_output=True,
        check=True,
        timeout=60,
        preexec_fn=on_cpus_of(pid),
    ).stdout
    return struct.unpack("<I", out[:4])[0], out[4]


def ready_ms(db: str, mode: str = "lazy", runs: int = 5, tick: int = 1) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with rematerialize(db, tick, mode=mode):
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@contextlib.contextmanager
def env(**values: str):
    """Environment variables for the page servers started inside."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def median_runs(
    db: str, tools: Tools, npages: int, randomly: bool, window: int, key: str
) -> tuple[dict, dict, dict]:
    """ttd cold (no cache: every page read, decoded and verified), ttd with the
    verified-page cache (filled by one run first, as by a previous call) and the
    baseline: each the median of three runs by `key`, taking turns: on this shared
    2-core machine a run can lose a core, and a busy moment falls on all alike."""
    cold, cached, bare = [], [], []
    run_touch(db, tools.touch, npages, randomly, window)  # fills the cache
    for _ in range(3):
        with env(TTD_PAGE_CACHE="off"):
            cold.append(run_touch(db, tools.touch, npages, randomly, window))
        cached.append(run_touch(db, tools.touch, npages, randomly, window))
        bare.append(run_baseline(tools, npages, randomly, window))
    return tuple(sorted(runs, key=lambda r: r[key])[1] for runs in (cold, cached, bare))


def r2(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def sequential(seq: dict, seq_one: dict) -> dict:
    return {
        "page_us_p50_fault_around_64k": r2(seq["per_page_us_p50"]),
        "fault_us_p50_fault_around_64k": r2(seq["fault_us_p50"]),
        "page_us_p50_one_page_per_fault": r2(seq_one["per_page_us_p50"]),
        "touch_us_mean_fault_around_64k": r2(seq["all_touches_us_mean"]),
        "touch_us_mean_one_page_per_fault": r2(seq_one["all_touches_us_mean"]),
        "hit_us_p50": r2(seq["hit_us_p50"]),
        "server_serve_us_p50_64k": seq["server_serve_us_p50"],
    }


def random_order(rnd: dict) -> dict:
    return {
        "fault_us_p50": r2(rnd["fault_us_p50"]),
        "fault_us_p99": r2(rnd["fault_us_p99"]),
        "page_us_p50": r2(rnd["per_page_us_p50"]),
        "touch_us_mean": r2(rnd["all_touches_us_mean"]),
        "server_serve_us_p50": rnd["server_serve_us_p50"],
    }


def measure_size(db: str, tools: Tools, size: int, workaround_samples: int) -> dict:
    npages = size // PAGE_SIZE
    seq, seq_cached, seq_bare = median_runs(
        db, tools, npages, False, FAULT_AROUND_PAGES, "per_page_us_p50"
    )
    # at random the server serves one page per fault (no window: not sequential)
    rnd, rnd_cached, rnd_bare = median_runs(
        db, tools, npages, True, FAULT_AROUND_PAGES, "fault_us_p50"
    )
    with env(TTD_PAGE_CACHE="off"):
        seq_one = run_touch(db, tools.touch, npages, False, 1)
        with env(TTD_NO_PIN="1"):  # the scheduler places server and process
            loose = run_touch(db, tools.touch, npages, True, FAULT_AROUND_PAGES)
        workaround = run_workaround(db, tools.touch, npages, workaround_samples)
    with env(TTD_NO_PIN="1"):
        loose_cached = run_touch(db, tools.touch, npages, True, FAULT_AROUND_PAGES)
    loose_bare = run_baseline(tools, npages, True, FAULT_AROUND_PAGES, pinned=False)
    return {
        "sequential": sequential(seq_cached, seq_one),
        "sequential_cold": sequential(seq, seq_one),
        "random": {
            **random_order(rnd_cached),
            "fault_us_p50_unpinned": r2(loose_cached["fault_us_p50"]),
        },
        "random_cold": {**random_order(rnd), "fault_us_p50_unpinned": r2(loose["fault_us_p50"])},
        "baseline": {
            "fault_us_p50": r2(rnd_bare["fault_us_p50"]),
            "fault_us_p99": r2(rnd_bare["fault_us_p99"]),
            "fault_us_p50_unpinned": r2(loose_bare["fault_us_p50"]),
            "page_us_p50_fault_around_64k": r2(seq_bare["per_page_us_p50"]),
            "fault_us_p50_fault_around_64k": r2(seq_bare["fault_us_p50"]),
            "hit_us_p50": r2(seq_bare["hit_us_p50"]),
            "serve_us_p50": r2(rnd_bare["server_serve_us_p50"]),
            "serve_us_p50_64k": r2(seq_bare["server_serve_us_p50"]),
        },
        "workaround_us_per_page_p50": round(workaround, 1),
        "workaround_samples": workaround_samples,
    }


def measure_ready(tmp: str) -> dict:
    """Time to ready: 64 MiB every page stored, 4 GiB one page per MiB, and 64 MiB over
    1000 ticks (16 pages changed per tick) at its last tick."""
    dbs = {
        "ready_ms_64mib": (64 * MiB, 1, 1),
        "ready_ms_4gib": (4096 * MiB, 256, 1),
        "ready_ms_1000_ticks": (64 * MiB, 1, 1000),
    }
    result = {}
    for key, (size, store_every, ticks) in dbs.items():
        db = os.path.join(tmp, f"{key}.db")
        make_recording(db, size, store_every=store_every, ticks=ticks)
        result[key] = round(ready_ms(db, tick=ticks), 1)
        os.unlink(db)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 MiB and 256 MiB only, fewer samples")
    args = ap.parse_args()
    sizes = (
        {"4mib": 4 * MiB, "256mib": 256 * MiB}
        if args.quick
        else {"4mib": 4 * MiB, "256mib": 256 * MiB, "1gib": 1024 * MiB}
    )
    samples = {"4mib": 300, "256mib": 200, "1gib": 100}  # workaround faults timed per size
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        cache = os.path.join(tmp, "page-cache")  # the bench's own verified-page cache
        os.mkdir(cache, 0o700)
        tools = build_tools(tmp)
        per_size = {}
        with env(TTD_PAGE_CACHE=cache):
            for name, size in sizes.items():
                db = os.path.join(tmp, f"{name}.db")
                make_recording(db, size)
                per_size[name] = measure_size(db, tools, size, samples[name])
                if name == "256mib":
                    with env(TTD_PAGE_CACHE="off"):
                        eager = ready_ms(db, mode="eager", runs=3)
                os.unlink(db)
            ready = measure_ready(tmp)
    head = per_size["256mib"]
    rnd, seq, bare = head["random"], head["sequential"], head["baseline"]
    rnd_cold, seq_cold = head["random_cold"], head["sequential_cold"]
    bare_page = bare["page_us_p50_fault_around_64k"]
    result = {
        "wp_async_us_per_fault_p50": rnd["fault_us_p50"],
        "baseline_us_per_fault_p50": bare["fault_us_p50"],
        "fault_over_baseline": r2(rnd["fault_us_p50"] / bare["fault_us_p50"]),
        "wp_async_us_per_page_p50": seq["page_us_p50_fault_around_64k"],
        "baseline_us_per_page_p50": bare_page,
        "page_over_baseline": r2(seq["page_us_p50_fault_around_64k"] / bare_page),
        "server_serve_us_p50": rnd["server_serve_us_p50"],
        "baseline_serve_us_p50": bare["serve_us_p50"],
        "wp_async_us_per_fault_p50_cold": rnd_cold["fault_us_p50"],
        "fault_over_baseline_cold": r2(rnd_cold["fault_us_p50"] / bare["fault_us_p50"]),
        "wp_async_us_per_page_p50_cold": seq_cold["page_us_p50_fault_around_64k"],
        "page_over_baseline_cold": r2(seq_cold["page_us_p50_fault_around_64k"] / bare_page),
        "server_serve_us_p50_cold": rnd_cold["server_serve_us_p50"],
        "wp_async_us_per_fault_p99": rnd["fault_us_p99"],
        "wp_async_us_per_fault_p50_unpinned": rnd["fault_us_p50_unpinned"],
        "baseline_us_per_fault_p50_unpinned": bare["fault_us_p50_unpinned"],
        "wp_async_us_per_page_p50_random": rnd["page_us_p50"],
        "fault_around_pages": FAULT_AROUND_PAGES,
        "workaround_us_per_page_p50": head["workaround_us_per_page_p50"],
        "workaround_is_lower_bound": True,
        "workaround_over_wp_async_per_page": round(
            head["workaround_us_per_page_p50"] / seq_cold["page_us_p50_fault_around_64k"], 1
        ),
        "eager_ms_256mib": round(eager, 1),
        **ready,
        "headline_size": "256mib",
        "per_size": per_size,
        "method": METHOD,
        "machine": machine(load_at_start),
    }
    print(json.dumps(result))


METHOD = (
    "touches from outside with process_vm_readv (8 bytes per page) by a C helper running "
    "on the CPU the page server pins the process to (it stands in for the process's own "
    "thread; _unpinned: TTD_NO_PIN=1, the scheduler places them); per fault = touches "
    "that faulted, one page per fault, random order, median of 3 runs; per page = fault "
    "latency / pages that fault filled, p50, sequential order, 64 KiB window, median of 3 "
    "runs; baseline = the same touches on bench/uffd_baseline.c (a bare userfaultfd "
    "handler serving from memory, same window rule and pinning), taking turns with ttd; "
    "headline figures with the verified-page cache filled by a first unmeasured run (a "
    "recording's next calls), _cold ones with TTD_PAGE_CACHE=off (a first call: every "
    "page read, decoded, verified); "
    "serve = the server's own time per fault, from reading the fault to the end of its "
    "UFFDIO_COPY (the process is woken after); workaround = per fault pagemap read + "
    "UFFDIO_COPY(DONTWAKE) + clear_refs 4 + UFFDIO_WAKE, no soft-dirty on this kernel: "
    "lower bound; pages 1 KiB random + 3 KiB pattern, zstd + sha256 verified on every "
    "fill"
)


if __name__ == "__main__":
    main()
