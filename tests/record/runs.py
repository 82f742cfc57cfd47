"""`ttd record` of a test target: at every hit of its checkpoint(), or of tests/record/
sleeper.c at its first hits of tick() as a process of its own (to be interrupted)."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import TTD, run_ttd


def record_checkpoints(
    build_target, tmp_path, source: str, *args: str, env: dict | None = None, timeout: float = 120
):
    """(the finished `ttd record`, the recording's path, the program's path)."""
    prog = build_target(source)
    db = tmp_path / "r.db"
    done = run_ttd(
        "record",
        "-o",
        str(db),
        "--break",
        "checkpoint",
        "--",
        str(prog),
        *args,
        env=dict(os.environ, **(env or {})),
        timeout=timeout,
    )
    return done, db, prog


def start_record(db, sleeper, pid_file, hits: int = 2, **popen) -> subprocess.Popen:
    """`ttd record -o DB --break tick --hits HITS -- SLEEPER PID_FILE`, started; its output
    piped as text unless popen says otherwise."""
    argv = [str(TTD), "record", "-o", str(db), "--break", "tick", "--hits", str(hits), "--"]
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True} | popen
    return subprocess.Popen([*argv, str(sleeper), str(pid_file)], **options)
