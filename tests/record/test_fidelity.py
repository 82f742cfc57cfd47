"""Live capture fidelity: a snapshot equals what GDB reads from the stopped process,
byte for byte and register for register, for every thread; and a gcore of the same
moment, imported with import-core, holds the same memory and registers."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from sqlalchemy.orm import Session

from snapshotdb import queries
from snapshotdb.capture import MappingInfo
from snapshotdb.capture.core import import_core
from snapshotdb.capture.proc import canonical
from snapshotdb.db import open_engine, open_recording
from snapshotdb.regs import GPREG_NAMES
from tests.conftest import PLUGIN, TOP
from tests.record import regs
from tests.record.memory import TickMemory

GDB_TIMEOUT = 120


@pytest.fixture(scope="module")
def stopped(build_target, tmp_path_factory):
    """Run tests/record/fidelity.c to stop_here under GDB: snapshot, gcore, GDB's own dump."""
    exe = build_target("tests/record/fidelity.c", "-pthread", "-mavx")
    out = tmp_path_factory.mktemp("fidelity")
    env = dict(os.environ, TTD_DB=str(out / "live.db"), TTD_OUT=str(out))
    proc = subprocess.run(
        [
            "gdb",
            "--nx",
            "-q",
            "-batch",
            "-ex",
            f"source {PLUGIN}",
            "-x",
            str(TOP / "tests/record/gdb_dump.py"),
            str(exe),
        ],
        capture_output=True,
        text=True,
        timeout=GDB_TIMEOUT,
        env=env,
    )
    assert (out / "regs.json").exists(), proc.stdout + proc.stderr
    assert "Snapshot tick 1:" in proc.stdout, proc.stdout + proc.stderr
    dump = json.loads((out / "regs.json").read_text())
    with open_recording(out / "live.db") as recording, recording.session() as session:
        yield {
            "dump": dump,
            "out": out,
            "session": session,
            "exe": exe,
            "snap": queries.snapshot_at(session, 1),
        }


def test_every_readable_byte_matches_gdb(stopped):
    memory = TickMemory(stopped["session"], 1)
    dumped = [m for m in stopped["dump"]["mappings"] if m["dumped"]]
    assert any(m["path"] == "[heap]" for m in dumped)
    assert any(m["path"] == "[stack]" for m in dumped)
    checked = 0
    for m in dumped:
        live = (stopped["out"] / f"mem-{m['start']:x}.bin").read_bytes()
        recorded = memory.read(m["start"], m["end"] - m["start"])
        assert recorded == live, f"{m['path'] or 'anonymous'} at {m['start']:#x} differs"
        checked += len(live)
    assert checked > 1 << 20


def test_mappings_match_proc_maps(stopped):
    """The recorded rows are /proc/PID/maps in canonical form (proc.canonical: adjacent
    anonymous mappings alike are one row, [heap] starts at start_brk)."""
    snap = stopped["snap"]
    recorded = [(m.start, m.end, m.perms, m.path) for m in snap.mappings]
    maps = [
        MappingInfo(m["start"], m["end"], m["perms"], 0, m["path"])
        for m in stopped["dump"]["mappings"]
        if m["start"] < 1 << 63
    ]
    live = [(m.start, m.end, m.perms, m.path) for m in canonical(maps, snap.start_brk)]
    assert recorded == live
    heap = next(m for m in snap.mappings if m.path == "[heap]")
    assert heap.start == snap.start_brk


def test_every_thread_is_captured(stopped):
    snap, dump = stopped["snap"], stopped["dump"]
    assert sorted(t.tid for t in snap.threads) == sorted(int(t) for t in dump["threads"])
    assert len(snap.threads) == 3
    assert snap.stop_tid == dump["stop_tid"] == dump["pid"]
    assert snap.function == "stop_here" and snap.file.endswith("fidelity.c")
    assert snap.pc == dump["threads"][str(dump["stop_tid"])]["rip"]


def test_registers_match_gdb(stopped):
    for thread in stopped["snap"].threads:
        want = stopped["dump"]["threads"][str(thread.tid)]
        got = regs.gp(thread.gpregs)
        for name in GPREG_NAMES:
            assert got[name] == want[name], f"thread {thread.tid} {name}"
        assert thread.xstate is not None
        assert regs.mxcsr(thread.fpregs) == want["mxcsr"]
        for i in range(8):
            assert regs.st(thread.fpregs, i).hex() == want["st"][i], f"st{i}"
        for i in range(16):
            assert regs.xmm(thread.fpregs, i).hex() == want["xmm"][i], f"xmm{i}"
            assert regs.ymm(thread.xstate, i).hex() == want["ymm"][i], f"ymm{i}"
        # the XSAVE legacy area is the FXSAVE image (up to the software-reserved bytes)
        assert thread.xstate[:464] == thread.fpregs[:464]


def test_vector_and_fs_base_values_are_the_programs(stopped):
    """Not just equal to GDB: the values the program put there (pattern i*37+11, pi)."""
    dump = stopped["dump"]
    main = next(t for t in stopped["snap"].threads if t.tid == dump["stop_tid"])
    pattern = bytes((i * 37 + 11) & 0xFF for i in range(96))
    assert regs.ymm(main.xstate, 2) == pattern[:32]
    assert regs.ymm(main.xstate, 7) == pattern[32:64]
    assert regs.ymm(main.xstate, 12) == pattern[64:96]
    assert regs.st(main.fpregs, 1) == bytes.fromhex("35c26821a2da0fc90040")  # pi, st1 below 1.0
    bases = {regs.gp(t.gpregs)["fs_base"] for t in stopped["snap"].threads}
    assert len(bases) == 3 and 0 not in bases  # one TLS block per thread


@pytest.fixture(scope="module")
def from_gcore(stopped):
    out = stopped["out"]
    engine = open_engine(out / "gcore.db", create=True)
    result = import_core(engine, str(out / "gcore.core"))
    with Session(engine) as session:
        yield {"session": session, "result": result, "snap": queries.snapshot_at(session, 1)}
    engine.dispose()


def test_gcore_holds_the_same_memory(stopped, from_gcore):
    assert from_gcore["result"].warnings == []
    live = TickMemory(stopped["session"], 1).digests()
    core = TickMemory(from_gcore["session"], 1).digests()
    vvar = {m.start for m in stopped["snap"].mappings if m.path.startswith("[vvar")}
    assert not vvar & set(core)
    differ = sorted(a for a in set(live) | set(core) if live.get(a) != core.get(a))
    assert differ == [], f"{len(differ)} pages differ, first at {differ[0]:#x}"
    assert len(live) > 200


def test_gcore_holds_the_same_layout(stopped, from_gcore):
    # gcore leaves out [vvar] (it cannot read it) and marks PROT_NONE guards readable
    live = {
        (m.start, m.end, m.path) for m in stopped["snap"].mappings if not m.path.startswith("[vvar")
    }
    core = {(m.start, m.end, m.path) for m in from_gcore["snap"].mappings}
    assert core == live
    snap, live_snap = from_gcore["snap"], stopped["snap"]
    for name in (
        "start_code",
        "start_brk",
        "brk",
        "start_stack",
        "arg_start",
        "arg_end",
        "env_start",
        "env_end",
    ):
        assert getattr(snap, name) == getattr(live_snap, name), name
    assert snap.auxv == live_snap.auxv


def test_gcore_holds_the_same_registers(stopped, from_gcore):
    live = {t.tid: t for t in stopped["snap"].threads}
    core = {t.tid: t for t in from_gcore["snap"].threads}
    assert set(core) == set(live)
    assert from_gcore["snap"].stop_tid == stopped["snap"].stop_tid
    assert from_gcore["snap"].pc == stopped["snap"].pc
    where = lambda snap: (snap.function, snap.file, snap.line)  # noqa: E731
    assert where(from_gcore["snap"]) == where(stopped["snap"])
    for tid, thread in live.items():
        assert regs.gp(core[tid].gpregs) == regs.gp(thread.gpregs), f"thread {tid}"
        for i in range(8):
            assert regs.st(core[tid].fpregs, i) == regs.st(thread.fpregs, i)
        for i in range(16):
            assert regs.xmm(core[tid].fpregs, i) == regs.xmm(thread.fpregs, i)
            # GDB writes the XSAVE area in its own layout; the AVX part sits where the kernel's does
            assert regs.ymm(core[tid].xstate, i) == regs.ymm(thread.xstate, i)
        assert regs.mxcsr(core[tid].fpregs) == regs.mxcsr(thread.fpregs)
        # only the components at fixed offsets survive from GDB's XSAVE layout
        assert int.from_bytes(core[tid].xstate[512:520], "little") & ~0b111 == 0
        assert core[tid].xstate[832:] == bytes(len(core[tid].xstate) - 832)
