"""Helpers the tests of rematerialization share: the process's state from /proc,
bounded waits, and reads of its memory the way gdbserver does them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from snapshotdb.db import open_engine
from snapshotdb.reader import PageReader
from tests.native.recording_fixture import read_maps


def region_of(recording) -> int:
    """The address of remat_target's 1 MiB mmap region (it prints it)."""
    return int(re.search(rb"region=(0x[0-9a-f]+)", recording.stdout).group(1), 16)


def readable(maps):
    return [m for m in maps if m.perms[0] == "r"]


def db_bytes(db_path, tick: int, start: int, end: int) -> bytes:
    engine = open_engine(db_path)
    try:
        with PageReader(engine, tick) as reader:
            return reader.read(start, end - start)
    finally:
        engine.dispose()


def proc_maps(pid: int) -> list[tuple[int, int, str, int, str]]:
    """(start, end, perms, inode, path) of each mapping but [vsyscall]."""
    return [(m.start, m.end, m.perms, m.inode, m.path) for m in read_maps(pid)]


@contextlib.contextmanager
def bystander():
    """A process in a process group of its own, for a called function to aim at."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    """Wait for an event the test cannot be told about otherwise (bounded, not timed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def stopped_again(proc) -> None:
    """Continue the process until it stops itself again."""
    os.kill(proc.pid, signal.SIGCONT)
    wait_for(lambda: stopped(proc.pid), "its SIGSTOP")


READ_MEM = (
    "import os, sys\n"
    "fd = os.open(f'/proc/{sys.argv[1]}/mem', os.O_RDONLY)\n"
    "try:\n    sys.stdout.write(os.pread(fd, 16, int(sys.argv[2])).hex())\n"
    "except OSError as e:\n    sys.stdout.write(f'errno {e.errno}')\n"
)


def read_mem_in_child(pid: int, target_addr: int, preload: str | None) -> str:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    return subprocess.run(
        [sys.executable, "-c", READ_MEM, str(pid), str(target_addr)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
