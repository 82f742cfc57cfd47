"""Benchmark: moving the kept process between ticks (issue 10) beside a repeated call at
one tick and beside today's way of building a new process per tick, in one run, in
one GDB set up as a user's (`ttd open DB`). Prints one JSON object (ms, medians).

    .venv/bin/python bench/travel.py [--size-mib 64] [--ticks 20]

- move_ms_p50: a call at the next tick, the move alone (timings_ms["move"]: the page
  server's MOVE, the stub's routine, every thread's registers, GDB's caches flushed);
- next_tick_call_ms_p50: the whole call-at-time command at the next tick, moved;
- repeat_call_ms_p50: the command again at the same tick (nothing moved);
- rebuild_ms_p50: the command at a tick with the kept process dropped first (a new
  process and attach per tick, as before the move existed).
Each command is timed inside GDB with time.perf_counter (no MI round trip).
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

EXPR = "list_length()"


# --- inside GDB -----------------------------------------------------------------------


def _timed(tick: int) -> tuple[float, dict]:
    import gdb

    t0 = time.perf_counter()
    text = gdb.execute(f"call-at-time --json {tick} {EXPR}", to_string=True)
    wall = (time.perf_counter() - t0) * 1e3
    return wall, json.loads(text[text.index('{"tick"') :].splitlines()[0])


def gdb_travel(ticks: int) -> None:
    """Each tick in turn: a call (moved there), a call again; then each tick rebuilt."""
    import gdb

    from gdb_plugin.commands import context

    ctx = context()
    out = {"move": [], "next": [], "repeat": [], "rebuild": [], "values": [], "rebuilt": 0}
    _timed(1)
    for tick in range(2, ticks + 1):
        wall, obj = _timed(tick)
        if "move" in obj["timings_ms"]:
            out["move"].append(obj["timings_ms"]["move"])
            out["next"].append(wall)
        out["rebuilt"] += "rebuilt" in obj["timings_ms"]
        out["values"].append(obj["value"])
        out["repeat"].append(_timed(tick)[0])
    for tick in range(1, ticks + 1):
        ctx.sessions.drop_kept()
        out["rebuild"].append(_timed(tick)[0])
    ctx.sessions.close_all()
    gdb.write("BENCH " + json.dumps(out) + "\n")


# --- outside GDB ----------------------------------------------------------------------


def _med(samples) -> float | None:
    return round(statistics.median(samples), 3) if samples else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args()
    from ttd_cli.mi import MiGdb

    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        exe = build(Path(tmp), "travel_target.c")
        db = record_checkpoints(
            exe, Path(tmp) / "travel.db", args.size_mib, args.ticks, timeout_s=900
        )
        with MiGdb() as gdb:
            gdb.cli("set confirm off")
            gdb.cli(f"python import sys; sys.path[:0] = ['{TOP}', '{TOP / 'bench'}']")
            gdb.cli(f"source {TOP / 'gdb_plugin' / 'ttd.py'}")
            gdb.cli("python import travel as bench")
            gdb.cli(f"ttd open {db}")
            text = gdb.cli(f"python bench.gdb_travel({args.ticks})", 1800)
    res = json.loads(
        next(line for line in text.splitlines() if line.startswith("BENCH "))[len("BENCH ") :]
    )
    move, repeat, rebuild = _med(res["move"]), _med(res["repeat"]), _med(res["rebuild"])
    print(
        json.dumps(
            {
                "size_mib": args.size_mib,
                "ticks": args.ticks,
                "move_ms_p50": move,
                "next_tick_call_ms_p50": _med(res["next"]),
                "repeat_call_ms_p50": repeat,
                "rebuild_ms_p50": rebuild,
                "rebuild_vs_next_tick_call": round(rebuild / _med(res["next"]), 1)
                if res["next"]
                else None,
                "moves": len(res["move"]),
                "rebuilt": res["rebuilt"],
                "values_in_order": res["values"] == [str(t) for t in range(2, args.ticks + 1)],
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
