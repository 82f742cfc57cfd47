"""Rematerialization's errors: each a one-line RematerializeError that says what to do."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from gdb_plugin.remat import RematerializeError, rematerialize
from snapshotdb.pages import PAGE_SIZE
from tests.conftest import TOP, VENV_PYTHON, require

pytestmark = pytest.mark.timeout(120)

STUB_IMAGE_START = 0x2F0000000000


def test_unknown_tick(recording):
    with pytest.raises(RematerializeError, match=re.escape("No tick 99: valid ticks are 1 to 2.")):
        with rematerialize(recording.db_path, 99):
            pass


@pytest.fixture
def world_readable_dir():
    """A directory user nobody can read (pytest's own tmp dirs are root-only)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="ttd-native-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


def test_no_permission_for_userfaultfd(recording, world_readable_dir):
    """As user nobody, without CAP_SYS_PTRACE, unprivileged userfaultfd off and
    /dev/userfaultfd root-only, userfaultfd is refused: the message names every fix."""
    with open("/proc/sys/vm/unprivileged_userfaultfd") as f:
        require(
            f.read().strip() == "0", "vm.unprivileged_userfaultfd is on: nobody may use userfaultfd"
        )
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is missing")
    dev = "/dev/userfaultfd"
    require(
        not os.path.exists(dev) or os.stat(dev).st_mode & 0o006 == 0,
        "/dev/userfaultfd is open to everyone",
    )
    db = os.path.join(world_readable_dir, "remat.db")
    shutil.copy(recording.db_path, db)
    os.chmod(db, 0o644)
    code = (
        "import sys; from gdb_plugin.remat import rematerialize, RematerializeError\n"
        f"try:\n    with rematerialize({str(db)!r}, 1):\n        pass\n"
        "except RematerializeError as e:\n    print(e); sys.exit(2)\n"
    )
    run = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            str(VENV_PYTHON),
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=TOP,
        env=dict(os.environ, PYTHONPATH=str(TOP)),
    )
    assert run.returncode == 2, run.stderr
    assert run.stdout.strip() == (
        "no permission for userfaultfd: run as root or with CAP_SYS_PTRACE, or set sysctl "
        "vm.unprivileged_userfaultfd=1, or give this user read-write access to /dev/userfaultfd"
    )


@pytest.mark.parametrize(
    "mask, missing",
    [
        ("0", "WP_ASYNC WP_UNPOPULATED"),
        (hex(0x1FFFF & ~(1 << 15)), "WP_ASYNC"),
    ],
    ids=["no-wp-features", "no-wp-async"],
)
def test_kernel_without_wp_async_when_wp_async_is_forced(recording, monkeypatch, mask, missing):
    monkeypatch.setenv("TTD_UFFD_FEATURES_MASK", mask)
    with pytest.raises(RematerializeError) as exc:
        with rematerialize(recording.db_path, 1, tracker="wp-async"):
            pass
    assert str(exc.value) == (
        f"this kernel's userfaultfd lacks {missing}: the wp-async tracker needs Linux 6.7 or "
        "newer (the diff tracker works without it)"
    )


def test_kernel_without_pagemap_scan_when_wp_async_is_forced(recording, monkeypatch):
    monkeypatch.setenv("TTD_NO_PAGEMAP_SCAN", "1")
    with pytest.raises(
        RematerializeError,
        match=r"^this kernel lacks the PAGEMAP_SCAN ioctl \(.*\): the wp-async "
        r"tracker needs Linux 6.7 or newer \(the diff tracker works "
        r"without it\)$",
    ):
        with rematerialize(recording.db_path, 1, tracker="wp-async"):
            pass


@pytest.mark.parametrize(
    "knob, value, missing",
    [
        ("TTD_UFFD_FEATURES_MASK", hex(0x1FFFF & ~(1 << 15)), "UFFD_FEATURE_WP_ASYNC"),
        ("TTD_UFFD_FEATURES_MASK", "0", "UFFD_FEATURE_WP_ASYNC"),
        ("TTD_NO_PAGEMAP_SCAN", "1", "the PAGEMAP_SCAN ioctl"),
    ],
    ids=["no-wp-async", "no-wp-features", "no-pagemap-scan"],
)
def test_auto_falls_back_to_the_diff_tracker_with_a_notice(
    recording, monkeypatch, knob, value, missing
):
    monkeypatch.setenv(knob, value)
    with rematerialize(recording.db_path, 1) as proc:
        assert proc.tracker == "diff" and proc.stats()["tracker"] == "diff"
        assert proc.notice == (
            f"ttd: this kernel lacks {missing} (Linux >= 6.7); using the diff "
            "tracker: writes that leave bytes unchanged are not seen."
        )


def test_auto_takes_wp_async_here_without_a_notice(recording):
    with rematerialize(recording.db_path, 1) as proc:
        assert (proc.tracker, proc.notice) == ("wp-async", None)
    with rematerialize(recording.db_path, 1, tracker="diff") as proc:
        assert (proc.tracker, proc.notice) == ("diff", None)  # asked for: no notice


def test_unknown_tracker(recording):
    with pytest.raises(
        RematerializeError,
        match=re.escape("Unknown tracker 'soft-dirty': use one of auto, diff, wp-async."),
    ):
        rematerialize(recording.db_path, 1, tracker="soft-dirty")


def image_end() -> int:
    out = subprocess.run(
        ["readelf", "-lW", str(TOP / "native" / "ttd-stub")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    ends = [
        int(f[2], 16) + int(f[5], 16)
        for f in (line.split() for line in out.splitlines())
        if f and f[0] == "LOAD"
    ]
    return (max(ends) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def test_mapping_overlapping_the_stub_image(recording, tmp_path):
    db = tmp_path / "overlap.db"
    shutil.copy(recording.db_path, db)
    with sqlite3.connect(db) as conn:
        snap_id = conn.execute("SELECT id FROM snapshot WHERE tick = 1").fetchone()[0]
        conn.execute(
            "INSERT INTO mapping (snapshot_id, start, end, perms, offset, path) "
            "VALUES (?, ?, ?, 'rw-p', 0, '')",
            (snap_id, STUB_IMAGE_START + 0x1000, STUB_IMAGE_START + 0x3000),
        )
    with pytest.raises(RematerializeError) as exc:
        with rematerialize(db, 1):
            pass
    assert str(exc.value) == (
        f"recorded mapping 0x2f0000001000-0x2f0000003000 overlaps ttd-stub's image "
        f"0x2f0000000000-{image_end():#x}: rebuild native/ with another STUB_BASE "
        "(native/Makefile)"
    )
