"""Where the kernel cannot track a program's writes, ttd record says so once, in one line,
and records by reading all memory, correctly: a kernel without PAGEMAP_SCAN or without
UFFD_FEATURE_WP_ASYNC (the same knobs as the page server's pretend so), a program under a
seccomp filter. Asked to insist on the kernel's tracking (--tracker wp-async), it fails."""

from __future__ import annotations

import os

import pytest

from snapshotdb.db import open_recording
from tests.conftest import run_ttd
from tests.record.memory import global_value
from tests.record.runs import record_checkpoints


@pytest.mark.parametrize(
    "source, variable, env, why",
    [
        (
            "tests/record/grows.c",
            "grown",
            {"TTD_NO_PAGEMAP_SCAN": "1"},
            "the kernel has no PAGEMAP_SCAN",
        ),
        (
            "tests/record/grows.c",
            "grown",
            {"TTD_UFFD_FEATURES_MASK": "0x1fff"},
            "the kernel offers no userfaultfd UFFD_FEATURE_WP_ASYNC",
        ),
        ("tests/record/seccomp_user.c", "value", {}, "the program runs under a seccomp filter"),
    ],
    ids=["no-pagemap-scan", "no-wp-async", "seccomp"],
)
def test_said_once_and_recorded_by_reading(build_target, tmp_path, source, variable, env, why):
    done, db, prog = record_checkpoints(build_target, tmp_path, source, "3", env=env)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "are not tracked" in line]
    assert len(notes) == 1, done.stderr
    assert notes[0].startswith("ttd: writes of process ")
    assert notes[0].endswith(f" are not tracked ({why}): every snapshot reads all its memory")
    with open_recording(db) as recording, recording.session() as session:
        assert [global_value(session, prog, variable, t, 4) for t in (1, 2, 3)] == [1, 2, 3]


def test_insisting_on_the_kernel_fails(build_target, tmp_path):
    done, _, _ = record_checkpoints(
        build_target,
        tmp_path,
        "tests/record/grows.c",
        "3",
        env={"TTD_NO_PAGEMAP_SCAN": "1", "TTD_RECORD_TRACKER": "wp-async"},
    )
    assert done.returncode == 2
    pid = done.stderr.split("writes of process ")[1].split(":")[0]
    assert done.stderr.splitlines()[-1] == (
        f"ttd: Snapshot failed: Cannot track the writes of process {pid}: the kernel has no "
        "PAGEMAP_SCAN."
    )


def test_unknown_tracker(tmp_path):
    done = run_ttd(
        "record",
        "-o",
        str(tmp_path / "x.db"),
        "--",
        "true",
        timeout=60,
        env=dict(os.environ, TTD_RECORD_TRACKER="fast"),
    )
    assert done.returncode == 2
    assert done.stderr.strip() == ("ttd: Unknown tracker 'fast': choose from auto, wp-async, scan.")
