"""Shared fixtures: building C targets, where the checkout and its tools are.

Tests are split by what they need: tests/unit (nothing), tests/snapshotdb (SQLite),
tests/native (userfaultfd, ptrace, the native build), tests/e2e (GDB, gdbserver).
A test may skip for a missing host feature only outside CI: under CI=true a skip
would hide a failure, so `require()` fails instead.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[1]
VENV_PYTHON = TOP / ".venv" / "bin" / "python"
TTD = TOP / ".venv" / "bin" / "ttd"
PLUGIN = TOP / "gdb_plugin" / "ttd.py"


def require(condition: bool, reason: str) -> None:
    """Skip when the host lacks a feature, but fail under CI, whose machine has all."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required feature missing under CI: {reason}")
    pytest.skip(reason)


def compile_c(source: Path, out: Path, *flags: str) -> Path:
    cmd = ["gcc", "-g", "-O0", "-fno-omit-frame-pointer", "-o", str(out), str(source), *flags]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("targets")


@pytest.fixture(scope="session")
def build_target(build_dir):
    """build_target("tests/e2e/linked_list.c", "-pthread") -> path of the binary (cached)."""
    cache: dict[tuple, Path] = {}

    def build(source: str, *flags: str) -> Path:
        key = (source, flags)
        if key not in cache:
            src = TOP / source
            # the name depends only on the source and flags, never on build order
            suffix = "-" + "-".join(f.strip("-").replace("=", "") for f in flags) if flags else ""
            cache[key] = compile_c(src, build_dir / f"{src.stem}{suffix}", *flags)
        return cache[key]

    return build


def run_ttd(
    *args: str, timeout: float = 300, check: bool = False, **kw
) -> subprocess.CompletedProcess:
    """Run the installed `ttd` console script."""
    return subprocess.run(
        [str(TTD), *args], capture_output=True, text=True, timeout=timeout, check=check, **kw
    )
