"""Benchmark: a sweep (one expression at every tick) beside a repeated call at one tick
and today's way of reaching another tick (a new process and attach per tick), and the
command line's sweep of every tick beside one `ttd call`. Prints one JSON object (ms
unless the key says s; medians, one run).

    .venv/bin/python bench/sweep.py [--size-mib 64] [--ticks 200] [--changed 10]
                                    [--samples 40] [--repeat 20]

The program (bench/sweep_target.c) fills a 64 MiB heap, then changes about 10 pages
per tick and is recorded at 200 ticks by `ttd record`. In GDB the setting is a user's
(`ttd gdb DB`, plus the executable loaded; libc's debug symbols as Debian's
libc6-dbg installs them, which scripts/setup.sh installs), timed inside GDB's Python:

    sweep_ms_per_tick_p50  the sweep's own loop (gdb_plugin/sweep.py over Context.call,
                           the path of `ttd sweep`), per tick, over `--samples` ticks
    repeat_call_ms_p50     a second call at the same tick (the process kept)
    rebuild_ms_p50         a call at the next tick in a new process (the kept one
                           dropped first): what every tick cost before processes moved
    move_ms_p50            moving the kept process to the next tick, the call excluded:
                           the calls' timings_ms["move"] when the call path reports it,
                           else null with move_ms_reason
    cli_sweep_200_s        `ttd sweep DB EXPR --json` over every recorded tick but the exit
    cli_call_s             one `ttd call DB --at 1 EXPR` (median of 3)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(TOP / "bench"))

from recorded import build, record_checkpoints  # noqa: E402

EXPR = "value()"
TTD = TOP / ".venv" / "bin" / "ttd"


# --- inside GDB -----------------------------------------------------------------------


def _emit(obj) -> None:
    import gdb

    gdb.write("BENCH " + json.dumps(obj) + "\n")


def gdb_sweep(first: int, last: int) -> None:
    """The sweep's loop over ticks first..last: the time of each tick, and the calls'
    timings_ms["move"] where the call path reports one."""
    from gdb_plugin import sweep
    from gdb_plugin.commands import context

    ctx = context()
    marks: list[float] = []
    ticks = list(range(first, last + 1))
    ctx.ticks.plan(ticks)  # as `ttd sweep` does
    rows = list(
        sweep.sweep(
            lambda tick: ctx.call(tick, EXPR),
            ticks,
            EXPR,
            progress=lambda i, tick: marks.append(time.perf_counter()),
        )
    )
    marks.append(time.perf_counter())
    per_tick = [(b - a) * 1e3 for a, b in zip(marks, marks[1:], strict=False)]
    moves = [r.json["timings_ms"]["move"] for r in rows if "move" in r.json["timings_ms"]]
    _emit(
        {
            "per_tick": per_tick[1:],  # the first builds the process: not a move
            "moves": moves[1:],
            "statuses": sorted({r.status for r in rows}),
            "values": [r.value for r in rows[:3]],
        }
    )


def gdb_repeat(tick: int, repeat: int) -> None:
    """`repeat` calls at `tick` after a first one: the process kept between them."""
    from gdb_plugin.commands import context

    ctx = context()
    ctx.call(tick, EXPR)
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = ctx.call(tick, EXPR)
        samples.append((time.perf_counter() - t0) * 1e3)
    _emit({"samples": samples, "status": result.status})


def gdb_rebuild(first: int, last: int) -> None:
    """A call at each tick first..last in a new process: the kept one dropped first."""
    from gdb_plugin.commands import context

    ctx = context()
    samples = []
    for tick in range(first, last + 1):
        ctx.sessions.drop_kept()
        t0 = time.perf_counter()
        result = ctx.call(tick, EXPR)
        samples.append((time.perf_counter() - t0) * 1e3)
    ctx.sessions.close_all()
    _emit({"samples": samples, "status": result.status})


# --- outside GDB ----------------------------------------------------------------------


def _bench_json(text: str):
    for line in text.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise RuntimeError(f"no result in GDB output:\n{text}")


def _med(samples) -> float | None:
    return round(statistics.median(samples), 3) if samples else None


def _record(workdir: Path, size_mib: int, ticks: int, changed: int) -> tuple[Path, Path]:
    exe = build(workdir, "sweep_target.c")
    return exe, record_checkpoints(exe, workdir / "sweep.db", size_mib, ticks, changed)


def _in_gdb(exe: Path, db: Path, ticks: int, samples: int, repeat: int) -> dict:
    """One GDB as `ttd gdb DB` sets it up, with the executable loaded."""
    from ttd_cli.mi import MiGdb
    from ttd_cli.plugin import open_command, source_command

    with MiGdb() as gdb:
        gdb.cli("set confirm off")
        gdb.cli(f"file {exe}")
        gdb.cli(source_command())
        gdb.cli(open_command(str(db)))
        gdb.cli(f"python import sys; sys.path[:0] = ['{TOP / 'bench'}']")
        gdb.cli("python import sweep as bench")
        limit = 60 + samples * 30
        swept = _bench_json(gdb.cli(f"python bench.gdb_sweep(1, {samples})", limit))
        repeated = _bench_json(gdb.cli(f"python bench.gdb_repeat(1, {repeat})", limit))
        last = min(ticks, 2 * samples)
        rebuilt = _bench_json(gdb.cli(f"python bench.gdb_rebuild({samples + 1}, {last})", limit))
    return {"sweep": swept, "repeat": repeated, "rebuild": rebuilt}


def _cli_seconds(argv: list[str], limit_s: float) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([str(TTD), *argv], capture_output=True, text=True, timeout=limit_s)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"ttd {argv[0]} failed: {done.stderr.strip()}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--changed", type=int, default=10, help="pages changed per tick")
    parser.add_argument("--samples", type=int, default=40, help="ticks swept and rebuilt in GDB")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    samples = min(args.samples, args.ticks // 2)
    from machine import load_average, machine

    load_at_start = load_average()

    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        exe, db = _record(Path(tmp), args.size_mib, args.ticks, args.changed)
        measured = _in_gdb(exe, db, args.ticks, samples, args.repeat)
        cli_call = [_cli_seconds(["call", str(db), "--at", "1", EXPR], 300) for _ in range(3)]
        cli_sweep = _cli_seconds(
            ["sweep", str(db), "--ticks", f"1-{args.ticks}", "--json", EXPR], 60 + args.ticks * 30
        )

    sweep_ms = _med(measured["sweep"]["per_tick"])
    repeat_ms = _med(measured["repeat"]["samples"])
    rebuild_ms = _med(measured["rebuild"]["samples"])
    move_ms = _med(measured["sweep"]["moves"])
    cli_call_s = round(statistics.median(cli_call), 3)
    result = {
        "size_mib": args.size_mib,
        "ticks": args.ticks,
        "pages_changed_per_tick": args.changed,
        "expr": EXPR,
        "values": measured["sweep"]["values"],
        "statuses": sorted(
            set(
                measured["sweep"]["statuses"]
                + [measured["repeat"]["status"], measured["rebuild"]["status"]]
            )
        ),
        "move_ms_p50": move_ms,
        "sweep_ms_per_tick_p50": sweep_ms,
        "repeat_call_ms_p50": repeat_ms,
        "rebuild_ms_p50": rebuild_ms,
        f"cli_sweep_{args.ticks}_s": round(cli_sweep, 3),
        "cli_call_s": cli_call_s,
        "sweep_vs_repeat": round(sweep_ms / repeat_ms, 3),
        "rebuild_vs_sweep": round(rebuild_ms / sweep_ms, 3),
        "cli_sweep_vs_call": round(cli_sweep / cli_call_s, 3),
        "goal": "sweep <= 2 x repeat and >= 20x faster than rebuild; "
        "cli sweep of every tick <= 3 x one ttd call",
        "goals_met": {
            "sweep_vs_repeat <= 2": sweep_ms <= 2 * repeat_ms,
            "rebuild_vs_sweep >= 20": rebuild_ms >= 20 * sweep_ms,
            "cli_sweep_vs_call <= 3": cli_sweep <= 3 * cli_call_s,
        },
        "runs": {
            "sweep_ticks": samples,
            "repeat": args.repeat,
            "rebuild_ticks": min(args.ticks, 2 * samples) - samples,
            "cli_call": 3,
        },
        "machine": machine(load_at_start),
    }
    if move_ms is None:
        result["move_ms_reason"] = (
            'the call path reports no move (timings_ms has no "move"): every tick is a new process'
        )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
