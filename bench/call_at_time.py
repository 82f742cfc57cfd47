"""Benchmark: call-at-time latency, first call at a tick and repeated calls, beside
GDB's own call on the live program and GDB attaching to a live process of the same
size through gdbserver. Prints one JSON object (times in ms, medians).

    .venv/bin/python bench/call_at_time.py [--size-mib 64] [--repeat 20] [--first 5]

Two settings:
- cold: a fresh GDB for each first call, as after `ttd gdb DB` (symbols are read
  from disk); beside it a fresh GDB attaching to a live process through gdbserver
  and calling once (DESIGN.md measured 0.4 s for that here).
- warm: one GDB running the same program as the user's inferior (the files'
  symbols already read), first calls at a tick with nothing of the recording cached,
  then repeated calls at that tick; beside them GDB's call on the live program
  (native) and on a live process attached through gdbserver.
Each call-at-time goes through the GDB command (`call-at-time --json`), timed inside
GDB with time.perf_counter, so the MI round trip is not in the times.
"""

from __future__ import annotations

import argparse
import json
import shutil
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

EXPR = "list_length()"
PARTS = ("rematerialize", "attach", "symbols", "call", "report")


# --- inside GDB -----------------------------------------------------------------------


def _emit(obj) -> None:
    import gdb

    gdb.write("BENCH " + json.dumps(obj) + "\n")


def gdb_live_calls(repeat: int) -> None:
    """GDB's `call` on the live program, stopped at checkpoint (native target)."""
    import gdb

    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        gdb.execute(f"call {EXPR}", to_string=True)
        samples.append((time.perf_counter() - t0) * 1e3)
    _emit(samples)


def gdb_gdbserver_attach(pid: int, exe: str, repeat: int) -> None:
    """A new inferior attached to live process `pid` through gdbserver (the code path
    of call-at-time, gdb_plugin.inferior and gdb_plugin.evaluate, without
    rematerialization and report): attach + first call, then `repeat` calls; killed
    at the end."""
    from gdb_plugin.evaluate import evaluate
    from gdb_plugin.inferior import TempInferior

    inferior = TempInferior(tempfile.mkdtemp(prefix="ttd-bench-"))
    t0 = time.perf_counter()
    parts = inferior.attach(pid, exe, None, keep_selected=True)  # stays selected: plain calls
    outcome = evaluate(EXPR, pid, 30)
    first = (time.perf_counter() - t0) * 1e3
    samples = []
    for _ in range(repeat):
        t1 = time.perf_counter()
        evaluate(EXPR, pid, 30)
        samples.append((time.perf_counter() - t1) * 1e3)
    inferior.close()
    shutil.rmtree(inferior.log_dir)
    _emit(
        {
            "first": first,
            "parts": parts,
            "repeat": samples,
            "value": outcome.value,
            "status": outcome.status,
        }
    )


def _timed_command(tick: int) -> tuple[float, dict]:
    import gdb

    t0 = time.perf_counter()
    text = gdb.execute(f"call-at-time --json {tick} {EXPR}", to_string=True)
    wall = (time.perf_counter() - t0) * 1e3
    return wall, json.loads(text[text.index('{"tick"') :].splitlines()[0])


def gdb_call_at_time(tick: int, first: int, repeat: int, tracker: str = "auto") -> None:
    """`first` first calls (nothing of the recording cached), then `repeat` calls reusing
    the process at that tick, with the page tracker `tracker` (`set ttd tracker`)."""
    from gdb_plugin.commands import context

    ctx = context()
    ctx.settings.tracker = tracker
    firsts, first_parts = [], []
    for _ in range(first):
        ctx.forget_cached()
        wall, obj = _timed_command(tick)
        firsts.append(wall)
        first_parts.append(obj["timings_ms"])
    repeats, repeat_parts = [], []
    for _ in range(repeat):
        wall, obj = _timed_command(tick)
        repeats.append(wall)
        repeat_parts.append(obj["timings_ms"])
    ctx.sessions.close_all()
    ctx.settings.tracker = "auto"
    _emit(
        {
            "first": firsts,
            "first_parts": first_parts,
            "repeat": repeats,
            "repeat_parts": repeat_parts,
            "value": obj["value"],
            "tracker": obj["tracker"],
            "pages": len(obj["dirtied_pages"]),
            "faults": obj["faults"],
        }
    )


def gdb_cold_call_at_time(tick: int) -> None:
    wall, obj = _timed_command(tick)
    _emit({"first": wall, "parts": obj["timings_ms"], "value": obj["value"]})


# --- outside GDB ----------------------------------------------------------------------


def _bench_json(text: str):
    for line in text.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise RuntimeError(f"no result in GDB output:\n{text}")


def _median_parts(parts: list[dict]) -> dict:
    return {k: _med([p.get(k, 0.0) for p in parts]) for k in PARTS}


def _med(samples) -> float:
    return round(statistics.median(samples), 3)


def _stopped_process(exe: Path, size_mib: int) -> subprocess.Popen:
    """The target of the same size, stopped by itself (SIGSTOP) at the checkpoint."""
    proc = subprocess.Popen([str(exe), str(size_mib), "stop"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return proc
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError("the live target did not stop")


def _fresh_gdb():
    from ttd_cli.mi import MiGdb

    gdb = MiGdb()
    gdb.cli("set confirm off")
    gdb.cli(f"python import sys; sys.path[:0] = ['{TOP}', '{TOP / 'bench'}']")
    gdb.cli(f"source {TOP / 'gdb_plugin' / 'ttd.py'}")
    gdb.cli("python import call_at_time as bench")
    return gdb


def _cold(exe: Path, db: Path, size_mib: int, runs: int) -> dict:
    """Fresh GDBs: call-at-time after `ttd open`, and attach-and-call on a live process."""
    cat, live = [], []
    for _ in range(runs):
        with _fresh_gdb() as gdb:
            gdb.cli(f"ttd open {db}")
            cat.append(_bench_json(gdb.cli("python bench.gdb_cold_call_at_time(1)", 120)))
        proc = _stopped_process(exe, size_mib)
        try:
            with _fresh_gdb() as gdb:
                live.append(
                    _bench_json(
                        gdb.cli(f"python bench.gdb_gdbserver_attach({proc.pid}, '{exe}', 0)", 120)
                    )
                )
        finally:
            proc.kill()
            proc.wait()
    first_ms = _med([c["first"] for c in cat])
    attach_ms = _med([s["first"] for s in live])
    return {
        "call_at_time_first_ms": first_ms,
        "call_at_time_first_breakdown_ms": _median_parts([c["parts"] for c in cat]),
        "live_gdbserver_attach_and_call_ms": attach_ms,
        "live_gdbserver_attach_breakdown_ms": {
            k: _med([s["parts"][k] for s in live]) for k in live[0]["parts"]
        },
        "first_vs_live_attach": round(first_ms / attach_ms, 3),
    }


def _warm(exe: Path, db: Path, size_mib: int, first: int, repeat: int) -> dict:
    """One GDB running the program: first and repeated calls, live native and gdbserver calls."""
    live_procs = [_stopped_process(exe, size_mib) for _ in range(first)]
    try:
        with _fresh_gdb() as gdb:
            gdb.cli(f"file {exe}")
            gdb.cli(f"set args {size_mib}")
            gdb.cli("break checkpoint")
            gdb.run("run", 120)
            gdb.wait_stopped(120)
            gdb.cli("delete")
            live = _bench_json(gdb.cli(f"python bench.gdb_live_calls({repeat})", 120))
            servers = [
                _bench_json(
                    gdb.cli(f"python bench.gdb_gdbserver_attach({p.pid}, '{exe}', {repeat})", 120)
                )
                for p in live_procs
            ]
            gdb.cli(f"ttd open {db}")
            cat = _bench_json(gdb.cli(f"python bench.gdb_call_at_time(1, {first}, {repeat})", 600))
            diff = _bench_json(
                gdb.cli(f"python bench.gdb_call_at_time(1, {first}, {repeat}, 'diff')", 600)
            )
    finally:
        for proc in live_procs:
            proc.kill()
            proc.wait()
    first_ms, repeat_ms = _med(cat["first"]), _med(cat["repeat"])
    attach_ms = _med([s["first"] for s in servers])
    server_call_ms = _med([ms for s in servers for ms in s["repeat"]])
    return {
        "value": cat["value"],
        "call_at_time_first_ms": first_ms,
        "call_at_time_first_breakdown_ms": _median_parts(cat["first_parts"]),
        "call_at_time_repeat_ms": repeat_ms,
        "call_at_time_repeat_breakdown_ms": _median_parts(cat["repeat_parts"]),
        "live_gdb_call_ms": _med(live),
        "live_gdbserver_attach_and_call_ms": attach_ms,
        "live_gdbserver_call_ms": server_call_ms,
        "first_vs_live_attach": round(first_ms / attach_ms, 3),
        "repeat_vs_live_gdbserver_call": round(repeat_ms / server_call_ms, 3),
        "faults_last_call": cat["faults"],
        "tracker": cat["tracker"],
        # the tracker for kernels without WP_ASYNC, forced, beside the default one
        "diff_tracker": {
            "call_at_time_first_ms": _med(diff["first"]),
            "call_at_time_first_breakdown_ms": _median_parts(diff["first_parts"]),
            "call_at_time_repeat_ms": _med(diff["repeat"]),
            "call_at_time_repeat_breakdown_ms": _median_parts(diff["repeat_parts"]),
            "first_vs_default": round(_med(diff["first"]) / first_ms, 3),
            "repeat_vs_default": round(_med(diff["repeat"]) / repeat_ms, 3),
            "value": diff["value"],
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--first", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        workdir = Path(tmp)
        exe = build(workdir, "call_target.c")
        db = workdir / "bench.db"
        record_checkpoints(exe, db, args.size_mib, timeout_s=600)
        cold = _cold(exe, db, args.size_mib, args.first)
        warm = _warm(exe, db, args.size_mib, args.first, args.repeat)
    print(
        json.dumps(
            {
                "size_mib": args.size_mib,
                "expr": EXPR,
                "value": warm.pop("value"),
                "first_vs_live_attach": cold["first_vs_live_attach"],
                "repeat_vs_live_gdbserver_call": warm["repeat_vs_live_gdbserver_call"],
                "goal": "first <= 1.5 x live attach-and-call (cold); "
                "repeat <= 1.5 x live call through gdbserver",
                "cold": cold,
                "warm": warm,
                "runs": {"first": args.first, "repeat": args.repeat},
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
