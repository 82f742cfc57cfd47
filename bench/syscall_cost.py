"""System call cost inside a rematerialized process, per sandbox filter (issue 9).

    .venv/bin/python bench/syscall_cost.py [--runs 5]

Prints one JSON object. bench/syscall_target.c is recorded at its int3 (tick 1) and
rematerialized there (mode "eager": every page filled first, so no fault lands in the
timed loops); continued, it times 200,000 calls each of system calls the sandbox lets
through and prints nanoseconds per call. The filters, side by side in one run, taking
turns, median of the runs:
- none: sandbox=False, no filter;
- linear: the hand-written filter the stub installed before libseccomp (one
  comparison per allowed call, in list order: read first, epoll_pwait last, then the
  signal calls; ttd-pageserver-bench's TTD_FILTER=linear);
- priority: libseccomp, its default order (TTD_FILTER=priority);
- tree: libseccomp with SCMP_FLTATR_CTL_OPTIMIZE 2, a binary tree: what ttd uses.
The kernel caches the filter's answer for calls it allows whatever their arguments
(the seccomp action cache, Linux 5.11+): those skip the program, whatever its shape,
and cost only seccomp's entry. The program runs for calls allowed on a condition on
their arguments (kill to itself, fcntl's command): there its shape shows.
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
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench"))

from machine import load_average, machine  # noqa: E402

from gdb_plugin.remat import rematerialize  # noqa: E402
from tests.native.recording_fixture import record  # noqa: E402

FILTERS = ("none", "linear", "priority", "tree")


def run_once(db: str, kind: str) -> dict:
    """One rematerialized run with the filter `kind`: ns per call of each system call."""
    os.environ["TTD_FILTER"] = kind if kind != "none" else "tree"
    with rematerialize(db, 1, mode="eager", sandbox=kind != "none") as proc:
        os.kill(proc.pid, signal.SIGCONT)
        status = proc.wait_exit(timeout=120)
        out = proc.output()[0]
        blocked = proc.stats()["blocked_syscalls"]
    assert os.waitstatus_to_exitcode(status) == 0 and blocked == [], (status, blocked)
    return json.loads(out.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    load_at_start = load_average()
    samples: dict[str, list[dict]] = {kind: [] for kind in FILTERS}
    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        target = os.path.join(tmp, "syscall_target")
        subprocess.run(
            ["gcc", "-O2", "-o", target, str(TOP / "bench" / "syscall_target.c")], check=True
        )
        db = os.path.join(tmp, "syscall.db")
        recorded = record(target, db, max_ticks=1)
        assert len(recorded.ticks) == 1, recorded
        for _ in range(args.runs):
            for kind in FILTERS:
                samples[kind].append(run_once(db, kind))
    os.environ.pop("TTD_FILTER", None)
    calls = list(samples["none"][0])
    ns = {
        kind: {call: round(statistics.median(s[call] for s in runs), 1) for call in calls}
        for kind, runs in samples.items()
    }
    over = {
        kind: {call: round(ns[kind][call] - ns["none"][call], 1) for call in calls}
        for kind in FILTERS
        if kind != "none"
    }
    result = {
        "ns_per_call": ns,
        "filter_ns_per_call": over,
        "tree_over_linear": {
            call: round(ns["tree"][call] / ns["linear"][call], 3) for call in calls
        },
        "runs": args.runs,
        "method": (
            "bench/syscall_target.c rematerialized at its int3 (mode eager: no faults), "
            "200,000 raw syscalls per call after 20,000 to warm up, timed inside the "
            "process with clock_gettime (a raw syscall: no vDSO there); filters take "
            "turns, median of the runs; filter_ns_per_call = the filter's ns minus "
            "no filter's"
        ),
        "machine": machine(load_at_start),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
