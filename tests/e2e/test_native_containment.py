"""The holes of issue 8 the sandbox closes, as the user meets them: call-at-time through
real GDB on a recording of tests/e2e/native_holes.c. Each attempt fails inside the call
and is listed in blocked_syscalls with its detail; GDB, gdbserver and the page server
(all root) still work on the process that runs without privileges."""

from __future__ import annotations

import errno
import json
import os

import pytest

from tests.conftest import run_ttd
from tests.e2e.harness import gdb_with_recording, require_tools
from tests.native.helpers import bystander
from ttd_cli.mi import MiGdb

pytestmark = pytest.mark.timeout(180)

MiB = 1 << 20


@pytest.fixture(scope="module")
def holes_db(build_target, tmp_path_factory):
    require_tools()
    binary = build_target("tests/e2e/native_holes.c")
    db = tmp_path_factory.mktemp("holes") / "holes.db"
    done = run_ttd("record", "-o", str(db), "--break", "checkpoint", "--", str(binary), timeout=120)
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module")
def gdb(holes_db):
    with gdb_with_recording(holes_db) as gdb:
        yield gdb


def call(gdb: MiGdb, expr: str, tick: int = 1) -> dict:
    text = gdb.cli(f"call-at-time --json {tick} {expr}", 60)
    return json.loads(text[text.index('{"tick"') :].splitlines()[0])


def blocked(got: dict, name: str) -> list:
    return [e["detail"] for e in got["blocked_syscalls"] if e["name"] == name]


def test_a_pipe_cannot_signal_other_processes(gdb):
    with bystander() as other:
        got = call(gdb, f"try_fsetown({-other.pid})")
        assert other.poll() is None
    assert (got["status"], got["value"]) == ("returned", "3")  # all three refused
    assert blocked(got, "fcntl") == [
        f"F_SETOWN process group {other.pid} on fd 3",
        "F_SETSIG SIGKILL on fd 3",
        "F_SETFL O_ASYNC on fd 3",
    ]
    got = call(gdb, f"try_fsetown({os.getpid()})")  # this test's own pid
    assert got["value"] == "3" and f"F_SETOWN pid {os.getpid()} on fd 3" in blocked(got, "fcntl")


def test_looking_at_a_file_is_refused_and_fstat_passes(gdb):
    got = call(gdb, 'try_stat("/proc/1")')
    assert got["value"] == str(errno.EPERM) and blocked(got, "newfstatat") == ["/proc/1"]
    got = call(gdb, "fstat_is_pipe(1)")
    assert (got["value"], got["blocked_syscalls"]) == ("1", [])


def test_madvise_past_the_process_is_refused(gdb):
    got = call(gdb, "try_madvise(100)")  # MADV_HWPOISON
    assert got["value"] == str(errno.EPERM) and blocked(got, "madvise") == ["MADV_HWPOISON"]
    assert call(gdb, "try_madvise(4)")["value"] == "0"  # MADV_DONTNEED


def test_allocating_past_the_memory_limit_fails_with_enomem(gdb):
    assert call(gdb, "try_alloc(8192)")["value"] == str(errno.ENOMEM)  # 8 GiB > size + 1 GiB
    assert call(gdb, "try_alloc(64)")["value"] == "0"


def test_int80_is_refused_and_named(gdb):
    got = call(gdb, "try_int80(20)")  # i386 getpid
    assert (got["status"], got["value"]) == ("returned", str(-errno.EPERM))
    assert [e["name"] for e in got["blocked_syscalls"]] == ["i386 system call 20 (getpid)"]


def test_the_blocked_list_is_bounded(gdb):
    got = call(gdb, "many_blocked(5000)", tick=2)  # a process of its own
    assert got["value"] == "5000" and len(got["blocked_syscalls"]) == 100
    assert got["blocked_syscalls"][0] == {"name": "syscall 1000", "count": 1, "detail": None}


def test_output_without_bound_is_cut_and_fast(gdb):
    got = call(gdb, "write_mib(16)")
    assert got["value"] == "16"
    assert len(got["stdout"]) == 2 * MiB  # the first and the last MiB
    assert call(gdb, "write_mib(0)")["stdout"] == ""  # the next call starts empty
