"""A benchmark target built and recorded by `ttd record` at every hit of its checkpoint()
(the shared first step of call_at_time.py, large_call.py, sweep.py and travel.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
TTD = TOP / ".venv" / "bin" / "ttd"


def build(workdir: Path, source: str) -> Path:
    """bench/SOURCE (a .c file) compiled with debug information into workdir."""
    exe = workdir / Path(source).stem
    subprocess.run(["gcc", "-g", "-O0", "-o", str(exe), str(TOP / "bench" / source)], check=True)
    return exe


def record_checkpoints(exe: Path, db: Path, *args, timeout_s: float = 1200) -> Path:
    """`ttd record -o DB --break checkpoint -- EXE ARGS...`; db. A failed recording ends
    the benchmark with ttd's message."""
    done = subprocess.run(
        [str(TTD), "record", "-o", str(db), "--break", "checkpoint", "--", str(exe)]
        + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise SystemExit(f"ttd record failed: {done.stderr.strip()}")
    return db
