"""`ttd import-core`: a kernel core of a crash, a core whose mapped file changed, bad input.
(A gcore of the same moment as a live snapshot is compared in test_fidelity.py.)"""

from __future__ import annotations

import glob
import re
import resource
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from snapshotdb import queries
from snapshotdb.db import open_recording
from tests.cli.conftest import one_line_error, read_only_dir, symlink_loop, timeline
from tests.conftest import require, run_ttd

TIMEOUT = 60


def _unlimited_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def dump_core(argv: list[str], cwd: Path, **run) -> tuple[subprocess.Popen, Path]:
    """Run `argv` in `cwd` until it dies with a core: (the process, its core moved into
    `cwd`), wherever the system's core_pattern had the kernel write it (beside the
    process, or a directory with %e/%p in the name; not a pipe to a program)."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    require(not pattern.startswith("|"), f"kernel core_pattern {pattern!r} pipes cores away")
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        preexec_fn=_unlimited_core,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **run,
    )
    proc.stdout_text, proc.stderr_text = proc.communicate(timeout=TIMEOUT)
    names = {"p": str(proc.pid), "e": Path(argv[0]).name[:15], "%": "%"}
    wanted = re.sub(
        r"%(.)",
        lambda m: glob.escape(names.get(m[1], "*")) if m[1] in names else "*",
        glob.escape(pattern).replace("[%]", "%"),
    )
    found = sorted(glob.glob(str(cwd / wanted) + ("*" if "%" not in pattern else "")))
    assert found, f"the kernel wrote no core ({pattern!r})"
    core = cwd / Path(found[0]).name
    if Path(found[0]) != core:
        shutil.move(found[0], core)
    return proc, core


@pytest.fixture(scope="module")
def kernel_core(build_target, tmp_path_factory):
    """A core the kernel writes when tests/record/crash.c dies of SIGSEGV."""
    crash = build_target("tests/record/crash.c")
    work = tmp_path_factory.mktemp("kcore")
    shutil.copy(crash, work / "crash")
    proc, core = dump_core(["./crash", "first-arg"], work)
    assert proc.returncode == -11
    return work, core


def test_kernel_core_of_a_crash(kernel_core, tmp_path):
    work, core = kernel_core
    db = tmp_path / "k.db"
    result = run_ttd("import-core", str(db), str(core), timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # every left-out page came from a matching file
    assert result.stdout.startswith(f"Imported '{core}' as tick 1: ")
    with open_recording(db) as recording, recording.session() as session:
        snap = queries.snapshot_at(session, 1)
        rec = queries.recording(session)
        paths = {m.path for m in snap.mappings}
        assert {"[stack]", "[heap]", "[vdso]", "[vvar]", str(work / "crash")} <= paths
        assert (snap.reason, snap.signal, snap.function) == ("core", "SIGSEGV", "main")
        assert snap.file.endswith("tests/record/crash.c")
        assert snap.line == _line_of(snap.file, "*nowhere = steps;")
        assert [t.tid for t in snap.threads] == [snap.stop_tid]
        assert len(snap.threads[0].xstate) > 576
        assert rec.exe_path == str(work / "crash") and rec.cmdline == '["./crash", "first-arg"]'
        args = queries.read_memory(session, snap.arg_start, snap.arg_end - snap.arg_start, 1)
        assert args == b"./crash\0first-arg\0"
        assert snap.start_brk == next(m.start for m in snap.mappings if m.path == "[heap]")
        code = next(m for m in snap.mappings if m.path.endswith("/crash") and "x" in m.perms)
        assert (snap.start_code, snap.end_code) == (code.start, code.end)
        # libc's text was left out of the core and read back from the library itself
        libc_text = next(m for m in snap.mappings if "libc.so" in m.path and "x" in m.perms)
        with open(libc_text.path, "rb") as f:
            f.seek(libc_text.offset)
            assert queries.read_memory(session, libc_text.start, 8192, 1) == f.read(8192)


def _line_of(source: str, text: str) -> int:
    lines = Path(source).read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if text in line)


def test_core_whose_executable_changed_warns(kernel_core, tmp_path, build_target):
    work, core = kernel_core
    other = build_target("examples/bank.c")
    result = run_ttd(
        "import-core", str(tmp_path / "k.db"), str(core), "--exe", str(other), timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.splitlines()
    assert warnings and all(w.startswith("ttd: warning: ") for w in warnings)
    assert (
        f"the file '{other}' differs from the one the core was made with; these pages "
        "read as zeros" in warnings[0]
    )


def test_missing_core(tmp_path):
    result = run_ttd("import-core", str(tmp_path / "k.db"), str(tmp_path / "nope"), timeout=TIMEOUT)
    assert result.returncode == 2
    assert result.stderr.strip() == f"ttd: No core file at '{tmp_path / 'nope'}'."
    assert not (tmp_path / "k.db").exists()


def test_not_elf(tmp_path):
    bogus = tmp_path / "core.txt"
    bogus.write_text("not a core\n")
    result = run_ttd("import-core", str(tmp_path / "k.db"), str(bogus), timeout=TIMEOUT)
    assert result.returncode == 2
    assert result.stderr.strip() == f"ttd: '{bogus}' is not a core file (not ELF)."


def test_elf_but_not_core(tmp_path, build_target):
    exe = build_target("examples/bank.c")
    result = run_ttd("import-core", str(tmp_path / "k.db"), str(exe), timeout=TIMEOUT)
    assert result.returncode == 2
    assert result.stderr.strip() == f"ttd: '{exe}' is an ELF file but not a core file."


def test_truncated_core(kernel_core, tmp_path):
    _, core = kernel_core
    cut = tmp_path / "cut.core"
    cut.write_bytes(core.read_bytes()[: 64 + 56 * 3])
    result = run_ttd("import-core", str(tmp_path / "k.db"), str(cut), timeout=TIMEOUT)
    assert result.returncode == 2
    assert result.stderr.strip() == f"ttd: '{cut}' is truncated: its program headers are cut short."


def test_missing_exe_option(kernel_core, tmp_path):
    _, core = kernel_core
    result = run_ttd(
        "import-core",
        str(tmp_path / "k.db"),
        str(core),
        "--exe",
        str(tmp_path / "gone"),
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"ttd: Executable '{tmp_path / 'gone'}' not found."


MANY = 70001  # pages, each a mapping of its own: more than PN_XNUM (65535) program headers
MAX_MAP_COUNT = Path("/proc/sys/vm/max_map_count")


@pytest.fixture(scope="module")
def core_with_many_mappings(kernel_core, build_target, tmp_path_factory):
    """A kernel core of tests/record/many_maps.c: (core, the region's address). The
    system's vm.max_map_count is raised for the program's run and put back."""
    program = build_target("tests/record/many_maps.c")
    work = tmp_path_factory.mktemp("many")
    limit = int(MAX_MAP_COUNT.read_text())
    require(
        limit > MANY + 1000 or _writable(MAX_MAP_COUNT),
        "vm.max_map_count is too low and cannot be raised",
    )
    try:
        if limit <= MANY + 1000:
            MAX_MAP_COUNT.write_text(str(2 * MANY))
        proc, core = dump_core([str(program), str(MANY)], work)
    finally:
        MAX_MAP_COUNT.write_text(str(limit))
    assert proc.returncode == -11, proc.stderr_text
    return core, int(proc.stdout_text.strip(), 16)


def _writable(path: Path) -> bool:
    try:
        path.write_text(path.read_text())
        return True
    except OSError:
        return False


def test_core_with_more_program_headers_than_the_header_counts(core_with_many_mappings, tmp_path):
    core, region = core_with_many_mappings
    with open(core, "rb") as f:
        head = f.read(64)
        (e_phnum,) = struct.unpack_from("<H", head, 56)
        (e_shoff,) = struct.unpack_from("<Q", head, 40)
        f.seek(e_shoff + 44)  # section header 0's sh_info: the real count
        (count,) = struct.unpack("<I", f.read(4))
    assert e_phnum == 0xFFFF and count > MANY  # PN_XNUM, as the kernel wrote it
    db = tmp_path / "many.db"
    result = run_ttd("import-core", str(db), str(core), timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    with open_recording(db) as recording, recording.session() as session:
        snap = queries.snapshot_at(session, 1)
        pages = [m for m in snap.mappings if region <= m.start < region + MANY * 4096]
        assert len(pages) == MANY
        assert [m.perms for m in pages[:3]] == ["rw-p", "r--p", "rw-p"]
        assert queries.read_memory(session, region, 19, 1) == b"first page of many\0"
        last = region + (MANY - 1) * 4096
        assert queries.read_memory(session, last, 18, 1) == b"last page of many\0"
        assert (snap.reason, snap.signal) == ("core", "SIGSEGV")


def test_exe_is_compared_by_its_real_path(kernel_core, tmp_path):
    """--exe named relatively or through a symlink is the file the core names: the same
    recording takes the core again, and records the real path."""
    work, core = kernel_core
    db = tmp_path / "k.db"
    (tmp_path / "link").symlink_to(work / "crash")
    for args, cwd in [([], None), (["--exe", "crash"], work), (["--exe", "link"], tmp_path)]:
        done = run_ttd("import-core", str(db), str(core), *args, cwd=cwd, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
    with open_recording(db) as recording, recording.session() as session:
        assert [s.tick for s in queries.timeline(session)] == [1, 2, 3]
        assert queries.recording(session).exe_path == str(work / "crash")


def test_exe_that_is_a_symlink_loop(kernel_core, tmp_path):
    _, core = kernel_core
    loop = symlink_loop(tmp_path)
    done = run_ttd(
        "import-core", str(tmp_path / "k.db"), str(core), "--exe", str(loop), timeout=TIMEOUT
    )
    assert done.returncode == 2
    assert one_line_error(done) == f"ttd: Executable '{loop}': it is a symlink loop."
    assert not (tmp_path / "k.db").exists()


def test_import_into_a_read_only_directory(kernel_core, tmp_path):
    _, core = kernel_core
    with read_only_dir(tmp_path / "ro") as ro:
        done = run_ttd("import-core", str(ro / "k.db"), str(core), timeout=TIMEOUT)
    assert done.returncode == 2
    assert one_line_error(done) == (
        f"ttd: Cannot create '{ro}/k.db': the directory '{ro}' "
        "does not take new files (Read-only file system)."
    )


def test_core_of_an_abort_names_the_function_it_stopped_in(build_target, tmp_path):
    """The stop is inside libc (raise/pthread_kill): its function is named as GDB names it,
    from libc's separate debug file (libc6-dbg) when libc itself does not say."""
    exits = build_target("tests/record/exits.c")
    shutil.copy(exits, tmp_path / "exits")
    proc, core = dump_core(["./exits", "abort"], tmp_path)
    assert proc.returncode == -6
    gdb = subprocess.run(
        ["gdb", "--nx", "-batch", "-ex", "frame 0", str(tmp_path / "exits"), str(core)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    frame = next(line for line in gdb.stdout.splitlines() if line.startswith("#0"))
    gdb_function = frame.split(" in ", 1)[1].split(" (")[0] if " in " in frame else frame.split()[1]
    db = tmp_path / "a.db"
    assert run_ttd("import-core", str(db), str(core), timeout=TIMEOUT).returncode == 0
    row = timeline(db)[0]
    assert row["signal"] == "SIGABRT"
    assert row["function"] == gdb_function != "??"
