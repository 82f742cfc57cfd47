"""Arming the kernel's write tracking (a userfaultfd the program makes and closes again)
leaves nothing the program could notice: the same next descriptor, the same errno."""

from __future__ import annotations

import subprocess

from tests.conftest import require
from tests.record.runs import record_checkpoints


def test_the_program_sees_what_it_would_see_without_ttd(build_target, tmp_path):
    alone = subprocess.run(
        [str(build_target("tests/record/leaves_nothing.c"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    require(alone.stdout == "fd 3 errno 77\n", f"a different start: {alone.stdout!r}")
    done, db, _ = record_checkpoints(build_target, tmp_path, "tests/record/leaves_nothing.c")
    assert done.returncode == 0, done.stderr
    assert "not tracked" not in done.stderr  # it was armed
    assert done.stdout == alone.stdout
