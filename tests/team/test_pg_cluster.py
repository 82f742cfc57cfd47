"""The tests' own clusters: one left running by a killed test session is stopped and
removed by the next, and never one whose session is alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.conftest import TOP
from tests.e2e.procs import alive
from tests.team.pg_cluster import PgCluster

STARTS = (
    "import time; from tests.team.pg_cluster import PgCluster; c = PgCluster.new(); "
    "c.init(); c.start(); print(c.dir, flush=True); time.sleep(600)"
)


def test_a_killed_sessions_cluster_is_reaped(pg):
    session = subprocess.Popen(
        [sys.executable, "-c", STARTS], cwd=TOP, stdout=subprocess.PIPE, text=True
    )
    try:
        left = session.stdout.readline().strip()
        assert left and os.path.exists(f"{left}/data/postmaster.pid")
    finally:
        session.send_signal(signal.SIGKILL)
        session.wait(30)
    postmaster = int(open(f"{left}/data/postmaster.pid").readline())
    assert alive(postmaster)  # nobody stopped it
    mine = PgCluster.new()  # reaps, but not the session's own cluster
    try:
        assert not os.path.exists(left)
        assert not alive(postmaster)
        assert os.path.exists(pg.dir / "data/postmaster.pid") and pg.sql("SELECT 1") == [(1,)]
    finally:
        mine.remove()
