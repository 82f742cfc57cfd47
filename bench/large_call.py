"""Benchmark: a call that writes a large part of memory, and the time its report takes.

    .venv/bin/python bench/large_call.py [--size-mib 256] [--runs 3]

bench/call_target.c is recorded with SIZE_MIB of heap (its `ballast`); in one GDB,
call-at-time runs `memset(ballast, 1, SIZE_MIB << 20)` at the recorded tick, `runs`
times (a new process each time: a call that changed that much is not kept). Prints
one JSON object: wall time of the command as GDB ran it, the call and report parts
of timings_ms (medians), how many pages the report holds and the size of its JSON
and of its text form.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench"))

from recorded import build, record_checkpoints  # noqa: E402


def _run(gdb, command: str, timeout: float) -> tuple[float, str]:
    t0 = time.perf_counter()
    text = gdb.cli(command, timeout)
    return (time.perf_counter() - t0) * 1e3, text


def _json_of(text: str) -> dict:
    return json.loads(text[text.index('{"tick"') :].splitlines()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from ttd_cli.mi import MiGdb

    expr = f"(void)memset(ballast, 1, {args.size_mib} << 20)"
    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        exe = build(Path(tmp), "call_target.c")
        db = record_checkpoints(exe, Path(tmp) / "large.db", args.size_mib)
        walls, calls, reports, text_walls = [], [], [], []
        with MiGdb() as gdb:
            gdb.cli("set confirm off")
            gdb.cli(f"source {TOP / 'gdb_plugin/ttd.py'}")
            gdb.cli(f"ttd open {db}")
            for _ in range(args.runs):
                wall, text = _run(gdb, f"call-at-time --timeout 600 --json 1 {expr}", 1200)
                obj = _json_of(text)
                walls.append(wall)
                calls.append(obj["timings_ms"]["call"])
                reports.append(obj["timings_ms"]["report"])
                json_bytes = len(text)
                wall, text = _run(gdb, f"call-at-time --timeout 600 1 {expr}", 1200)
                text_walls.append(wall)
                text_lines = len(text.splitlines())
    print(
        json.dumps(
            {
                "size_mib": args.size_mib,
                "expr": expr,
                "status": obj["status"],
                "pages": len(obj["dirtied_pages"]),
                "pages_changed": sum(p["changed"] for p in obj["dirtied_pages"]),
                "json_command_ms_p50": round(statistics.median(walls), 1),
                "text_command_ms_p50": round(statistics.median(text_walls), 1),
                "call_ms_p50": round(statistics.median(calls), 1),
                "report_ms_p50": round(statistics.median(reports), 1),
                "json_bytes": json_bytes,
                "text_lines": text_lines,
                "runs": args.runs,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
