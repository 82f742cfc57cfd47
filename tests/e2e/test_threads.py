"""Every recorded thread comes back (issue 10): at a tick of a 4-thread program, `info
threads` and `bt` in every thread after `ttd goto` agree with GDB on the live program
stopped at the same place; a call runs on the thread asked for; a goto to another tick
of the same threads moves the process (the same inferior).

tests/e2e/threads_target.c: three named workers blocked in read(2) at depths 0-2 of
worker_wait(), the main thread at checkpoint()."""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_ttd
from tests.e2e.harness import gdb_with_recording, require_tools, result_json
from ttd_cli.mi import MiGdb

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def threads_db(build_target, tmp_path_factory):
    require_tools()
    binary = build_target("tests/e2e/threads_target.c", "-pthread")
    db = tmp_path_factory.mktemp("threads") / "threads.db"
    done = run_ttd("record", "-o", str(db), "--break", "checkpoint", "--", str(binary))
    assert done.returncode == 0, done.stderr
    return db, binary


def threads_view(text: str) -> list[str]:
    """`thread apply all bt` without what differs between two runs: thread ids,
    addresses (buffers on the stack), GDB's target ids."""
    out = []
    for line in text.splitlines():
        header = re.match(r'^Thread ([\d.]+) \(.*"(.*)"\):$', line)
        if header:
            out.append(f"thread {header.group(1).split('.')[-1]} {header.group(2)}")
        elif line.startswith("#"):
            out.append(re.sub(r"0x[0-9a-f]+", "0x?", line))
    return out


def names(info_threads: str) -> list[str]:
    return re.findall(r'^\*?\s+[\d.]+\s+Thread [^"]*"([^"]*)"', info_threads, re.M)


def live_view(binary) -> tuple[str, str]:
    with MiGdb() as gdb:
        gdb.cli("set confirm off")
        gdb.cli(f"file {binary}")
        gdb.cli("break checkpoint")
        gdb.run("run", 120)
        gdb.wait_stopped(120)
        return gdb.cli("info threads"), gdb.cli("thread apply all bt")


def test_goto_shows_every_thread_as_live_gdb_does(threads_db):
    db, binary = threads_db
    live_threads, live_bt = live_view(binary)
    with gdb_with_recording(db) as gdb:
        gdb.cli("ttd goto 1")
        goto_threads, goto_bt = gdb.cli("info threads"), gdb.cli("thread apply all bt")
    program = binary.name[:15]
    assert (
        names(live_threads) == names(goto_threads) == [program, "worker-0", "worker-1", "worker-2"]
    )
    # the thread numbers (1-4, GDB's own) and every frame with its arguments and line
    assert threads_view(goto_bt) == threads_view(live_bt)
    assert len([line for line in threads_view(goto_bt) if "worker_wait" in line]) == 6


def test_a_call_runs_on_the_thread_asked_for(threads_db):
    db, _ = threads_db
    with gdb_with_recording(db) as gdb:
        gdb.cli("ttd goto 1")
        tids = [int(t) for t in re.findall(r"Thread \d+\.(\d+)", gdb.cli("info threads"))]
        depths = []
        for tid in sorted(tids)[1:]:
            out = gdb.cli(f"call-at-time --json --thread {tid} 1 $rsp")
            assert result_json(out)["status"] == "returned"
            depths.append(int(result_json(out)["value"].split()[-1], 16))
        assert len(set(depths)) == 3  # three stacks
