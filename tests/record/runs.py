"""`ttd record` of a test target at every hit of its checkpoint()."""

from __future__ import annotations

import os

from tests.conftest import run_ttd


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
