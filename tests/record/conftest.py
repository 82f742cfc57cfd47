"""Fixtures of the recording tests."""

from __future__ import annotations

import subprocess

import pytest


@pytest.fixture
def hold(build_target):
    """hold(mib) starts tests/record/hold.c with `mib` MiB of heap and waits until it is
    ready: (proc, exe). Every process started is killed at the end."""
    procs = []

    def start(mib: int):
        exe = build_target("tests/record/hold.c")
        proc = subprocess.Popen([str(exe), str(mib)], stdout=subprocess.PIPE)
        procs.append(proc)
        assert proc.stdout.read(1) == b"r"
        return proc, exe

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)
