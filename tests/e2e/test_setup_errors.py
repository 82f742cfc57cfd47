"""Setup problems a user can meet, each with its one-line message: gdbserver missing,
the executable rebuilt since the recording (build-id differs), `ttd gdb` at a tick."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import PLUGIN, TOP, TTD, compile_c
from ttd_cli.mi import GdbFailed, MiGdb

pytestmark = pytest.mark.timeout(120)


def test_gdbserver_missing(targets_db, tmp_path, monkeypatch):
    gdb_path = shutil.which("gdb")
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no gdbserver on it
    with MiGdb(gdb_path) as gdb:
        gdb.cli(f"source {PLUGIN}")
        gdb.cli(f"ttd open {targets_db[0]}")
        with pytest.raises(GdbFailed) as info:
            gdb.cli("call-at-time 1 list_length()")
        assert str(info.value) == "gdbserver is not installed: apt-get install gdbserver"
        assert "process" not in gdb.cli("info inferiors")
        # installed meanwhile: the same session calls
        gdb.cli(f"python import os; os.environ['PATH'] = {path!r}")
        assert "$1 = 1" in gdb.cli("call-at-time 1 list_length()")


def test_rebuilt_executable_warns_and_works(build_target, tmp_path):
    from tests.conftest import run_ttd

    exe = compile_c(TOP / "tests/e2e/targets.c", tmp_path / "targets", "-pthread")
    db = tmp_path / "rec.db"
    done = run_ttd(
        "record", "-o", str(db), "--break", "checkpoint", "--hits", "1", "--", str(exe), timeout=120
    )
    assert done.returncode == 0, done.stderr
    # same code, other build-id
    compile_c(TOP / "tests/e2e/targets.c", exe, "-pthread", "-Wl,--build-id=0x" + "ab" * 20)
    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        gdb.cli(f"ttd open {db}")
        text = gdb.cli("call-at-time 1 list_length()")
    assert f"warning: {exe} has build-id {'ab' * 20}, the recording " in text
    assert "$1 = 1" in text
    done = run_ttd("call", str(db), "--at", "1", "--json", "list_length()", timeout=60)
    assert done.returncode == 0
    assert done.stderr.startswith(f"ttd: warning: {exe} has build-id {'ab' * 20}")
    assert '"value": "1"' in done.stdout


def test_rebuilt_library_warns_and_works(tmp_path):
    from tests.conftest import run_ttd

    lib = tmp_path / "libpart.so"
    compile_c(TOP / "tests/e2e/libpart.c", lib, "-shared", "-fPIC")
    exe = compile_c(
        TOP / "tests/e2e/uses_lib.c",
        tmp_path / "uses_lib",
        f"-L{tmp_path}",
        "-lpart",
        f"-Wl,-rpath,{tmp_path}",
    )
    db = tmp_path / "rec.db"
    done = run_ttd("record", "-o", str(db), "--break", "checkpoint", "--", str(exe), timeout=120)
    assert done.returncode == 0, done.stderr
    compile_c(TOP / "tests/e2e/libpart.c", lib, "-shared", "-fPIC", "-Wl,--build-id=0x" + "cd" * 20)
    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        gdb.cli(f"ttd open {db}")
        text = gdb.cli("call-at-time 1 lib_value()")
    assert f"warning: {lib} has build-id {'cd' * 20}, the recording " in text
    assert f"warning: {exe} has" not in text
    assert "$1 = 42" in text


def test_ttd_gdb_at_tick(targets_db):
    db, _ = targets_db
    done = subprocess.run(
        [str(TTD), "gdb", str(db), "--at", "2"],
        input="bt\nprint head->value\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Tick 2: process" in done.stdout
    assert "checkpoint (step=2)" in done.stdout
    assert "$1 = 20" in done.stdout


def test_missing_executable_warns_and_works_from_memory(tmp_path):
    from tests.conftest import run_ttd

    exe = compile_c(TOP / "tests/e2e/targets.c", tmp_path / "targets", "-pthread")
    db = tmp_path / "rec.db"
    done = run_ttd(
        "record", "-o", str(db), "--break", "checkpoint", "--hits", "1", "--", str(exe), timeout=120
    )
    assert done.returncode == 0, done.stderr
    exe.unlink()
    with MiGdb() as gdb:
        gdb.cli(f"source {PLUGIN}")
        gdb.cli(f"ttd open {db}")
        text = gdb.cli("call-at-time 1 (int)abs(-5) + $rdi")  # libc, and the registers
    # the recording keeps the executable's file: its symbols are the recorded ones
    assert f"warning: {exe} is missing: symbols from the recorded copy." in text
    assert "$1 = 6" in text
