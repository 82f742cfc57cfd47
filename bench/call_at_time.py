"""Benchmark: call-at-time latency, first call at a tick and repeated calls, beside
GDB's own call on the live program and GDB attaching to a live process of the same
size through gdbserver. Prints one JSON object (times in ms, medians).

    .venv/bin/python bench/call_at_time.py [--size-mib 64] [--repeat 20] [--first 5]

Everything runs in one GDB (driven through pygdbmi); the timings are taken inside
GDB with time.perf_counter, so the MI round trip is not in them.
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
EXPR = "list_length()"


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
    """A new inferior attached to live process `pid` through gdbserver: attach + first
    call, then repeated calls through gdbserver; killed at the end. The same code path
    as call-at-time (gdb_plugin.session), without rematerialization and report."""
    import gdb

    from gdb_plugin.session import TempInferior, evaluate
    inferior = TempInferior()
    t0 = time.perf_counter()
    parts = inferior.attach(pid, exe, None, keep_selected=True)  # stays selected: plain calls
    status, _, value, _, _ = evaluate(EXPR, pid, 30)
    first = (time.perf_counter() - t0) * 1e3
    samples = []
    for _ in range(repeat):
        t1 = time.perf_counter()
        evaluate(EXPR, pid, 30)
        samples.append((time.perf_counter() - t1) * 1e3)
    inferior.close()
    _emit({"first": first, "parts": parts, "repeat": samples, "value": value, "status": status})


def gdb_call_at_time(db: str, tick: int, first: int, repeat: int) -> None:
    """call-at-time: `first` fresh sessions (first call each), then `repeat` calls reusing one."""
    from gdb_plugin import session
    firsts, first_parts = [], []
    for _ in range(first):
        session.drop_cached()
        session.dispose_engines()  # a true first call: nothing of the recording cached
        t0 = time.perf_counter()
        result = session.call_at_time(db, tick, EXPR)
        firsts.append((time.perf_counter() - t0) * 1e3)
        first_parts.append(result.timings_ms)
    repeats, repeat_parts = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = session.call_at_time(db, tick, EXPR)
        repeats.append((time.perf_counter() - t0) * 1e3)
        repeat_parts.append(result.timings_ms)
    session.close_all()
    _emit({"first": firsts, "first_parts": first_parts, "repeat": repeats,
           "repeat_parts": repeat_parts, "value": result.value,
           "pages": len(result.pages), "faults": result.faults})


# --- outside GDB ----------------------------------------------------------------------

def _bench_json(text: str):
    for line in text.splitlines():
        if "BENCH " in line:
            return json.loads(line.split("BENCH ", 1)[1])
    raise RuntimeError(f"no result in GDB output:\n{text}")


def _median_parts(parts: list[dict]) -> dict:
    keys = ("rematerialize", "attach", "symbols", "call", "report")
    return {k: round(statistics.median(p.get(k, 0.0) for p in parts), 3) for k in keys}


def _med(samples) -> float:
    return round(statistics.median(samples), 3)


def _build(workdir: Path) -> Path:
    exe = workdir / "call_target"
    subprocess.run(["gcc", "-g", "-O0", "-o", str(exe), str(TOP / "bench" / "call_target.c")],
                   check=True)
    return exe


def _record(exe: Path, db: Path, size_mib: int) -> None:
    ttd = TOP / ".venv" / "bin" / "ttd"
    done = subprocess.run([str(ttd), "record", "-o", str(db), "--break", "checkpoint", "--",
                           str(exe), str(size_mib)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"ttd record failed: {done.stderr.strip()}")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--first", type=int, default=5)
    args = parser.parse_args()

    from gdb_plugin.driver import MiGdb
    with tempfile.TemporaryDirectory(prefix="ttd-bench-") as tmp:
        workdir = Path(tmp)
        exe = _build(workdir)
        db = workdir / "bench.db"
        _record(exe, db, args.size_mib)
        live_procs = [_stopped_process(exe, args.size_mib) for _ in range(args.first)]
        try:
            with MiGdb() as gdb:
                gdb.cli("set confirm off")
                gdb.cli(f"python import sys; sys.path[:0] = ['{TOP}', '{TOP / 'bench'}']")
                gdb.cli(f"source {TOP / 'gdb_plugin' / 'ttd.py'}")
                gdb.cli("python import call_at_time as bench")
                gdb.cli(f"file {exe}")
                gdb.cli(f"set args {args.size_mib}")
                gdb.cli("break checkpoint")
                gdb.run("run", 120)
                gdb.wait_stopped(120)
                gdb.cli("delete")
                live = _bench_json(gdb.cli(f"python bench.gdb_live_calls({args.repeat})", 120))
                servers = [_bench_json(gdb.cli(
                    f"python bench.gdb_gdbserver_attach({p.pid}, '{exe}', {args.repeat})", 120))
                    for p in live_procs]
                cat = _bench_json(gdb.cli(
                    f"python bench.gdb_call_at_time('{db}', 1, {args.first}, {args.repeat})", 600))
        finally:
            for proc in live_procs:
                proc.kill()
                proc.wait()
    first_ms, repeat_ms = _med(cat["first"]), _med(cat["repeat"])
    attach_ms = _med([s["first"] for s in servers])
    server_call_ms = _med([ms for s in servers for ms in s["repeat"]])
    server_parts = {k: _med([s["parts"][k] for s in servers]) for k in servers[0]["parts"]}
    print(json.dumps({
        "size_mib": args.size_mib,
        "expr": EXPR,
        "value": cat["value"],
        "call_at_time_first_ms": first_ms,
        "call_at_time_first_breakdown_ms": _median_parts(cat["first_parts"]),
        "call_at_time_repeat_ms": repeat_ms,
        "call_at_time_repeat_breakdown_ms": _median_parts(cat["repeat_parts"]),
        "live_gdb_call_ms": _med(live),
        "live_gdbserver_attach_and_call_ms": round(attach_ms, 3),
        "live_gdbserver_attach_breakdown_ms": server_parts,
        "live_gdbserver_call_ms": server_call_ms,
        "first_vs_live_attach": round(first_ms / attach_ms, 3),
        "repeat_vs_live_gdbserver_call": round(repeat_ms / server_call_ms, 3),
        "goal": "first <= 1.5 x live attach-and-call; repeat <= 1.5 x live call through gdbserver",
        "faults_last_call": cat["faults"],
        "runs": {"first": args.first, "repeat": args.repeat},
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
