"""Fixtures for tests/native: the native build and a real recording of remat_target.c."""

from __future__ import annotations

import os
import platform
import subprocess

import pytest

from gdb_plugin.remat import rematerialize
from tests.conftest import TOP, require
from tests.native.recording_fixture import record


def kernel_at_least(major: int, minor: int) -> bool:
    release = platform.release().split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


@pytest.fixture(scope="session")
def native_build():
    """Builds native/ and checks the host can run it (root, Linux 6.7+)."""
    require(os.geteuid() == 0, "rematerialization needs root (userfaultfd, ptrace, PR_SET_MM_MAP)")
    require(kernel_at_least(6, 7), "needs Linux 6.7+ (UFFD_FEATURE_WP_ASYNC, PAGEMAP_SCAN)")
    subprocess.run(
        ["make", "-s", "-C", str(TOP / "native")], check=True, capture_output=True, timeout=300
    )
    return TOP / "native"


def record_target(
    build_target, tmp_path_factory, name: str, *, exit_code: int, ticks: int, **options
):
    """Build tests/native/NAME.c, record it at its int3s, and check how the run ended."""
    binary = build_target(f"tests/native/{name}.c")
    db = tmp_path_factory.mktemp("rec") / f"{name}.db"
    result = record(str(binary), str(db), **options)
    assert result.exit_code == exit_code and len(result.ticks) == ticks, result
    return result


@pytest.fixture(scope="session")
def recording(native_build, build_target, tmp_path_factory):
    """remat_target recorded at its two int3s: ticks 1 and 2; it exits with 42."""
    return record_target(build_target, tmp_path_factory, "remat_target", exit_code=42, ticks=2)


@pytest.fixture(scope="session")
def mm_recording(native_build, build_target, tmp_path_factory):
    """remat_mm recorded at its int3 (tick 1), before it changes its memory map."""
    return record_target(build_target, tmp_path_factory, "remat_mm", exit_code=0, ticks=1)


@pytest.fixture(scope="session")
def sandbox_recording(native_build, build_target, tmp_path_factory):
    """remat_sandbox recorded at its int3 (tick 1), before it tries to reach outside."""
    result = record_target(build_target, tmp_path_factory, "remat_sandbox", exit_code=0, ticks=1)
    base = result.stdout.split(b"base=", 1)[1].split()[0].decode()
    for suffix in (".keep", ".new"):  # the recorded run really did both
        if os.path.exists(base + suffix):
            os.unlink(base + suffix)
    result.base = base
    return result


@pytest.fixture(scope="session")
def escape_recording(native_build, build_target, tmp_path_factory):
    """remat_escape recorded at its int3 (tick 1) and killed there: the live run never
    tries its ways out; only rematerialized runs do. Its files: base.keep, base.victim."""
    result = record_target(
        build_target, tmp_path_factory, "remat_escape", exit_code=-9, ticks=1, max_ticks=1
    )
    result.base = result.stdout.split(b"base=", 1)[1].split()[0].decode()
    return result


@pytest.fixture(scope="session")
def newmem_recording(native_build, build_target, tmp_path_factory):
    """remat_newmem recorded at its int3 (tick 1), before it maps new memory."""
    return record_target(build_target, tmp_path_factory, "remat_newmem", exit_code=0, ticks=1)


# How written pages are found (gdb_plugin/remat/client.py): forced, and the diff
# tracker chosen by "auto" on a kernel that lacks what wp-async needs (testing knobs).
TRACKERS = {
    "wp-async": ({"tracker": "wp-async"}, {}),
    "diff": ({"tracker": "diff"}, {}),
    "diff-auto-no-wp-async": ({}, {"TTD_UFFD_FEATURES_MASK": hex(0x1FFFF & ~(1 << 15))}),
    "diff-auto-no-pagemap-scan": ({}, {"TTD_NO_PAGEMAP_SCAN": "1"}),
}


@pytest.fixture(params=list(TRACKERS))
def remat(request, monkeypatch):
    """rematerialize() with each tracker; remat.tracker is the one that must run."""
    kwargs, env = TRACKERS[request.param]
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    def start(db_path, tick, **more):
        return _checked(rematerialize(db_path, tick, **kwargs, **more), start.tracker)

    start.tracker = "wp-async" if request.param == "wp-async" else "diff"
    return start


class _checked:
    """A rematerialization whose process must run the given tracker."""

    def __init__(self, cm, tracker: str):
        self.cm, self.tracker = cm, tracker

    def __enter__(self):
        proc = self.cm.__enter__()
        try:
            assert proc.tracker == self.tracker
        except BaseException:
            self.cm.__exit__(None, None, None)
            raise
        return proc

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


@pytest.fixture(scope="session")
def holes_recording(native_build, build_target, tmp_path_factory):
    """remat_holes recorded at its int3 (tick 1) and killed there; the addresses of the
    `action` and `arg` its rematerialized runs read (result.action, result.arg)."""
    result = record_target(
        build_target, tmp_path_factory, "remat_holes", exit_code=-9, ticks=1, max_ticks=1
    )
    words = dict(w.split(b"=") for w in result.stdout.split(b"\n", 1)[0].split())
    result.action, result.arg = int(words[b"action"], 16), int(words[b"arg"], 16)
    return result
