"""Output drain benchmark (issue 8 item 6): how fast a rematerialized process's output
is taken from its pipe, and what is kept of it.

    .venv/bin/python bench/output_drain.py [--runs 5]

Prints one JSON object. bench/output_target.c is recorded at its int3 and
rematerialized there; continued, it writes 16 MiB to stdout in 64 KiB writes and
exits. Timed: from SIGCONT to the process's end with its output taken (wait_exit,
then drain_output), median of the runs; the pipe's own speed beside it (a child
writing the same into a pipe that this process reads, no rematerialization).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench"))

from machine import load_average, machine  # noqa: E402

from gdb_plugin.remat import rematerialize  # noqa: E402
from tests.native.recording_fixture import record  # noqa: E402

MiB = 1 << 20
TOTAL = 16 * MiB


def drain_once(db: str) -> dict:
    with rematerialize(db, 1, mode="eager") as proc:
        t0 = time.perf_counter()
        os.kill(proc.pid, signal.SIGCONT)
        status = proc.wait_exit(timeout=300)
        out, _ = proc.drain_output(timeout=60)
        seconds = time.perf_counter() - t0
        dropped = proc.output_dropped()[0] if hasattr(proc, "output_dropped") else 0
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(out) + dropped == TOTAL, (len(out), dropped)
    return {"seconds": seconds, "kept": len(out), "dropped": dropped}


def pipe_once(target: str) -> float:
    """The same writes into a plain pipe read by this process: the pipe's own speed."""
    t0 = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, sys\nb = b'x' * 65536\n"
            f"for _ in range({TOTAL // 65536}):\n    os.write(1, b)\n",
        ],
        stdout=subprocess.PIPE,
    )
    got = 0
    while chunk := os.read(child.stdout.fileno(), 1 << 20):
        got += len(chunk)
    child.wait()
    child.stdout.close()
    assert got == TOTAL
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        target = os.path.join(tmp, "output_target")
        subprocess.run(
            ["gcc", "-O2", "-o", target, str(TOP / "bench" / "output_target.c")], check=True
        )
        db = os.path.join(tmp, "output.db")
        assert len(record(target, db, max_ticks=1).ticks) == 1
        runs = [drain_once(db) for _ in range(args.runs)]
        pipe = [pipe_once(target) for _ in range(args.runs)]
    seconds = statistics.median(r["seconds"] for r in runs)
    result = {
        "mib": TOTAL // MiB,
        "drain_s": round(seconds, 3),
        "drain_mib_per_s": round(TOTAL / MiB / seconds, 1),
        "pipe_s": round(statistics.median(pipe), 3),
        "kept_bytes": runs[0]["kept"],
        "dropped_bytes": runs[0]["dropped"],
        "runs": args.runs,
        "method": (
            "the rematerialized process writes 16 MiB to stdout in 64 KiB writes; "
            "timed from SIGCONT to its end with every byte taken (median); pipe_s: the "
            "same writes from a child into a pipe read here, no rematerialization"
        ),
        "machine": machine(load_at_start),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
