"""The holes of issue 8 the sandbox closes, through real rematerialized processes:
signals through fcntl, looking at files, madvise past the process, privileges, memory
without bound, system calls of another ABI, a list of refused calls without bound,
output without bound. tests/native/remat_holes.c does each after its tick."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from gdb_plugin.remat import rematerialize
from tests.native.helpers import alive, bystander
from tests.native.recording_fixture import process_vm_writev

pytestmark = pytest.mark.timeout(120)

FSETOWN, STAT, MADVISE, PRIVILEGES, ALLOC, OTHER_ABI, MANY, OUTPUT = range(1, 9)
EPERM = errno.EPERM
MiB = 1 << 20


def run(recording, action: int, arg: int = 0, **options) -> tuple[list[bytes], dict, object]:
    """Rematerialize at tick 1, have it do `action` with `arg`, let it run to its end:
    (the words of its last line, the page server's statistics, the process)."""
    with rematerialize(recording.db_path, 1, **options) as proc:
        process_vm_writev(proc.pid, recording.action, action.to_bytes(8, "little"))
        process_vm_writev(proc.pid, recording.arg, arg.to_bytes(8, "little", signed=True))
        os.kill(proc.pid, signal.SIGCONT)
        status = proc.wait_exit(timeout=60)
        assert os.waitstatus_to_exitcode(status) == 0, status
        stats = proc.stats()
        proc.lines = proc.output()[0].splitlines()
    return proc.lines[-1].split(), stats, proc


def numbers(words: list[bytes]) -> dict[str, int]:
    """{"setown": 1, ...} from b"setown 1 setsig 1 ..." (names followed by numbers)."""
    out, name = {}, None
    for w in words:
        if w.lstrip(b"-").isdigit():
            out.setdefault(name, int(w))
        else:
            name = w.decode()
    return out


def details(stats: dict, name: str) -> list[str]:
    return [e["detail"] for e in stats["blocked_syscalls"] if e["name"] == name]


# ---- 1. signals through fcntl ---------------------------------------------------------------


def test_fcntl_cannot_make_a_pipe_signal_other_processes(holes_recording):
    """F_SETOWN to the bystander's process group, F_SETOWN_EX to this test's own pid,
    F_SETSIG SIGKILL, O_ASYNC, then the pipes become readable: everyone survives, each
    attempt is refused and listed; what a program needs on its own descriptors passes."""
    with bystander() as other:
        words, stats, _ = run(holes_recording, FSETOWN, -other.pid)
        assert other.poll() is None and alive(os.getpid())
    got = numbers(words)
    assert got == {
        "setown": EPERM,
        "setsig": EPERM,
        "async": EPERM,
        "setown_ex": EPERM,
        "nonblock": 0,
        "getfd": 0,
        "lock": EPERM,
    }
    assert details(stats, "fcntl") == [
        f"F_SETOWN process group {other.pid} on fd 3",
        "F_SETSIG SIGKILL on fd 3",
        "F_SETFL O_ASYNC on fd 3",
        f"F_SETOWN_EX pid {other.pid} on fd 5",
        "F_SETSIG SIGKILL on fd 5",
        "F_SETFL O_ASYNC on fd 5",
        "F_SETLK on fd 0",
    ]


# ---- 3. looking at files -------------------------------------------------------------------


def test_looking_at_files_is_refused_with_the_path_but_fstat_passes(holes_recording):
    words, stats, _ = run(holes_recording, STAT)
    got = numbers(words)
    assert got == {
        "stat": EPERM,
        "proc": EPERM,
        "fstat": 0,
        "fifo": 1,
        "cwd": EPERM,
        "statx": EPERM,
        "statx-fd": 0,
        "access": EPERM,
        "faccessat2": EPERM,
        "readlink": EPERM,
    }
    assert details(stats, "newfstatat") == ["/etc/passwd", "/proc/1", ""]
    assert details(stats, "statx") == ["/etc/hostname"]
    assert details(stats, "access") == ["/etc/shadow"]
    assert details(stats, "faccessat2") == ["/etc/group"]
    assert details(stats, "readlink") == ["/proc/self/exe"]


# ---- 1. madvise past the process, privileges --------------------------------------------------


def test_madvise_that_reaches_past_the_process_is_refused(holes_recording):
    words, stats, _ = run(holes_recording, MADVISE)
    assert numbers(words) == {
        "hwpoison": EPERM,
        "soft-offline": EPERM,
        "mergeable": EPERM,
        "dontneed": 0,
        "willneed": 0,
    }
    assert details(stats, "madvise") == ["MADV_HWPOISON", "MADV_SOFT_OFFLINE", "MADV_MERGEABLE"]


def status_fields(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_the_called_code_runs_without_privileges(holes_recording):
    """No capability in any set, not root (nobody's ids), no new privileges, the filter on;
    the page server and gdbserver (root) still read and trace it."""
    with rematerialize(holes_recording.db_path, 1) as proc:
        status = status_fields(proc.pid)
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[field], 16) == 0, (field, status[field])
    assert status["Uid"].split() == ["65534"] * 4 and status["Gid"].split() == ["65534"] * 4
    assert status["Groups"].strip() == "" and status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    words, _, _ = run(holes_recording, PRIVILEGES)
    assert numbers(words) == {"uid": 65534, "gid": 65534, "groups": 0, "setuid": EPERM}


def test_without_the_sandbox_privileges_stay(holes_recording):
    with rematerialize(holes_recording.db_path, 1, sandbox=False) as proc:
        status = status_fields(proc.pid)
    assert status["Uid"].split()[0] == str(os.getuid()) and status["Seccomp"] == "0"


# ---- 7. a memory limit ------------------------------------------------------------------------


def test_allocating_past_the_memory_limit_fails_with_enomem(holes_recording):
    words, _, _ = run(holes_recording, ALLOC, 512, mem_margin=64 * MiB)
    assert words == [
        b"mmap",
        str(errno.ENOMEM).encode(),
        b"malloc",
        b"null",
        str(errno.ENOMEM).encode(),
        b"small",
        b"ok",
    ]
    words, _, _ = run(holes_recording, ALLOC, 32, mem_margin=64 * MiB)
    assert words == [b"mmap", b"0", b"malloc", b"ok", b"0", b"small", b"ok"]


def test_the_limit_is_the_recordings_size_plus_the_margin(holes_recording):
    recorded = sum(m.end - m.start for m in holes_recording.ticks[0].maps)
    with rematerialize(holes_recording.db_path, 1, mem_margin=64 * MiB) as proc:
        with open(f"/proc/{proc.pid}/limits") as f:
            limits = {line[:26].strip(): line[26:].split() for line in f}
    as_limit = int(limits["Max address space"][0])
    assert int(limits["Max data size"][0]) == as_limit
    assert recorded + 64 * MiB < as_limit < recorded + 64 * MiB + 16 * MiB  # + stack, stub


# ---- 10. system calls of another ABI ------------------------------------------------------------


def test_int80_and_x32_system_calls_are_refused_and_named(holes_recording):
    words, stats, _ = run(holes_recording, OTHER_ABI)
    assert words == [
        b"i386-getpid",
        b"-1",
        b"i386-execve",
        b"-1",
        b"x32-getpid",
        b"-1",
        str(EPERM).encode(),
    ]
    names = [(e["name"], e["detail"]) for e in stats["blocked_syscalls"]]
    assert names == [
        ("i386 system call 20 (getpid)", None),
        ("i386 system call 11 (execve)", None),
        ("x32 system call 39 (getpid)", None),
    ]


# ---- 13. the list of refused calls is bounded -------------------------------------------------


def test_the_blocked_list_keeps_the_first_100_and_counts_the_rest(holes_recording):
    words, stats, _ = run(holes_recording, MANY, 2000)
    blocked = stats["blocked_syscalls"]
    assert len(blocked) == 100 and all(e["count"] == 1 for e in blocked)
    assert blocked[:3] == [
        {"name": "syscall 1000", "count": 1, "detail": None},
        {"name": "unlink", "count": 1, "detail": "/nonexistent/0"},
        {"name": "syscall 1001", "count": 1, "detail": None},
    ]
    # 2000 numbers and 2000 paths, one path with control bytes: 4001 distinct, 100 kept
    assert stats["blocked_syscalls_left_out"] == {"distinct": 3901, "calls": 3901}


def test_take_blocked_gives_one_calls_share_and_starts_again(holes_recording):
    with rematerialize(holes_recording.db_path, 1) as proc:
        process_vm_writev(proc.pid, holes_recording.action, MANY.to_bytes(8, "little"))
        process_vm_writev(proc.pid, holes_recording.arg, (60).to_bytes(8, "little"))
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait_exit(timeout=60)
        taken = proc.take_blocked()
        again = proc.take_blocked()
    assert taken["sandbox"] is True and len(taken["blocked_syscalls"]) == 100
    assert taken["blocked_syscalls_left_out"] == {"distinct": 21, "calls": 21}
    assert again == {
        "sandbox": True,
        "blocked_syscalls": [],
        "blocked_syscalls_left_out": {"distinct": 0, "calls": 0},
    }


def test_control_bytes_in_a_detail_stay_bytes(holes_recording):
    _, stats, _ = run(holes_recording, MANY, 1)
    assert details(stats, "unlink")[-1] == "/nonexistent/\x1b]52;c;x\x07"


# ---- 6. output without bound ------------------------------------------------------------------


def test_output_keeps_the_first_and_last_mib_and_counts_the_rest(holes_recording):
    """8 MiB and two lines to stdout: the first and last MiB are kept, the rest counted;
    take_output() hands over the same and starts again."""
    total = len(b"first line\n") + 8 * MiB + len(b"last line\n")
    with rematerialize(holes_recording.db_path, 1) as proc:
        process_vm_writev(proc.pid, holes_recording.action, OUTPUT.to_bytes(8, "little"))
        process_vm_writev(proc.pid, holes_recording.arg, (8).to_bytes(8, "little"))
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait_exit(timeout=60)
        out, err = proc.drain_output()
        dropped = proc.output_dropped()
        taken_out, taken_err = proc.take_output()
        after = proc.output(), proc.output_dropped()
    assert len(out) == 2 * MiB and dropped == (total - 2 * MiB, 0) and err == b""
    assert out.startswith(b"first line\nmmm") and out.endswith(b"mmm\nlast line\n")
    assert (taken_out.data, taken_out.dropped, taken_err.data) == (out, dropped[0], b"")
    assert after == ((b"", b""), (0, 0))


def test_output_keep_is_configurable(holes_recording):
    with rematerialize(holes_recording.db_path, 1, output_keep=1000) as proc:
        process_vm_writev(proc.pid, holes_recording.action, OUTPUT.to_bytes(8, "little"))
        process_vm_writev(proc.pid, holes_recording.arg, (1).to_bytes(8, "little"))
        os.kill(proc.pid, signal.SIGCONT)
        proc.wait_exit(timeout=60)
        out, _ = proc.drain_output()
        assert len(out) == 2000 and out.startswith(b"first line\n")
        assert out.endswith(b"last line\n")
        assert proc.output_dropped()[0] == len(b"first line\n") + MiB + len(b"last line\n") - 2000
