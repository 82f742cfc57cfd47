"""Builds and runs fault_driver.c (the page server's fault path without a process) for
the test_fault_*.py modules."""
from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import TOP

# the page server's objects the driver links with (native/build/lazy/)
OBJECTS = ("store_sqlite", "codec", "pagemap", "verify", "sha256x16", "err", "io", "region",
           "fault", "ranges")


def build_driver(native_build: Path, out_dir: Path) -> Path:
    out = out_dir / "fault_driver"
    objects = [str(native_build / "build" / "lazy" / f"{name}.o") for name in OBJECTS]
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(native_build),
                    "-o", str(out), str(TOP / "tests" / "native" / "fault_driver.c"), *objects,
                    "-lsqlite3", "-lzstd", "-lcrypto", "-pthread"], check=True, timeout=120)
    return out


def run_driver(driver: Path, *args) -> list[str]:
    result = subprocess.run([str(driver), *map(str, args)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()
