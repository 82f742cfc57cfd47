"""Containment end to end (issue 5): code of the past called through GDB cannot reach
files, processes or the network (each attempt is blocked and reported), its output is
captured, its crashes, hangs and exits are reported and leave GDB's session usable,
and neither the recording nor the files it tried to touch change.

The target is tests/e2e/escape.c, recorded at three hits of `checkpoint` (ticks 1-3,
`step` 1-3). Tests in this file share one GDB session; each sets up what it checks, in
any order.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import select
import socket
import subprocess

import pytest

from tests.conftest import run_ttd
from tests.e2e.harness import call, end_sessions, gdb_with_recording

pytestmark = pytest.mark.timeout(120)

FORK_NAMES = {"fork", "vfork", "clone", "clone3"}


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def file_state(path) -> tuple:
    """What must not change in a file the called code tried to touch."""
    st = os.stat(path)
    return sha256(path), st.st_size, st.st_mtime_ns, st.st_ino


@pytest.fixture(scope="module")
def gdb(escape_recording):
    with gdb_with_recording(escape_recording[0]) as gdb:
        yield gdb


def last_line(text: str) -> str:
    """The command's own output (MI echoes the command before it)."""
    return text.strip().splitlines()[-1]


def blocked_names(obj: dict) -> set[str]:
    return {entry["name"] for entry in obj["blocked_syscalls"]}


def detail_of(obj: dict, names: set[str]) -> str | None:
    details = [e["detail"] for e in obj["blocked_syscalls"] if e["name"] in names]
    assert details, f"none of {names} in {obj['blocked_syscalls']}"
    return details[0]


# --- escape attempts: each blocked, reported, without effect -----------------------------


def test_unlink_is_blocked(gdb, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    before = file_state(victim)
    got = call(gdb, 1, f'try_unlink("{victim}")')
    assert (got["status"], got["value"]) == ("returned", str(errno.EPERM))
    assert detail_of(got, {"unlink", "unlinkat"}) == str(victim)
    assert file_state(victim) == before


def test_truncating_open_is_blocked(gdb, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("twelve bytes")
    before = file_state(victim)
    got = call(gdb, 2, f'try_truncate("{victim}")')
    assert got["value"] == str(errno.EPERM)
    assert detail_of(got, {"open", "openat", "openat2"}) == str(victim)
    assert file_state(victim) == before


def test_rename_is_blocked(gdb, tmp_path):
    victim, target = tmp_path / "victim", tmp_path / "renamed"
    victim.write_text("stay")
    before = file_state(victim)
    got = call(gdb, 3, f'try_rename("{victim}", "{target}")')
    assert got["value"] == str(errno.EPERM)
    assert str(victim) in detail_of(got, {"rename", "renameat", "renameat2"})
    assert file_state(victim) == before and not target.exists()


def test_kill_of_another_process_is_blocked(gdb):
    sacrificial = subprocess.Popen(["sleep", "120"])
    try:
        got = call(gdb, 1, f"try_kill({sacrificial.pid})")
        assert got["value"] == str(errno.EPERM)
        assert detail_of(got, {"kill"}) == f"SIGKILL to pid {sacrificial.pid}"
        assert sacrificial.poll() is None  # still running
    finally:
        sacrificial.kill()
        sacrificial.wait()


def test_kill_of_the_parent_is_blocked(gdb):
    got = call(gdb, 1, "try_kill_parent()")
    assert got["value"] == str(errno.EPERM)
    assert detail_of(got, {"kill"}).startswith("SIGKILL to pid ")
    assert call(gdb, 1, "step_value()")["value"] == "10"  # the session goes on


def test_connect_is_blocked_and_nothing_connects(gdb):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        got = call(gdb, 2, f"try_connect({port})")
        assert got["value"] == str(errno.EPERM)
        assert blocked_names(got) & {"socket", "connect"}
        # a connection would have been complete (in the backlog) when connect returned
        readable, _, _ = select.select([listener], [], [], 0)
        assert readable == []


def test_fork_fails_inside_the_call(gdb):
    got = call(gdb, 3, "try_fork()")
    assert (got["status"], got["value"]) == ("returned", str(errno.EPERM))
    assert blocked_names(got) & FORK_NAMES


def test_exec_is_blocked(gdb, tmp_path):
    made = tmp_path / "made-by-exec"
    program = tmp_path / "maker.sh"
    program.write_text(f"#!/bin/sh\ntouch {made}\n")
    program.chmod(0o755)
    got = call(gdb, 1, f'try_exec("{program}")')
    assert (got["status"], got["value"]) == ("returned", str(errno.EPERM))
    assert detail_of(got, {"execve", "execveat"}) == str(program)
    assert not made.exists()


def test_blocked_calls_in_the_text_report(gdb, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    text = gdb.cli(f'call-at-time 1 try_unlink("{victim}")')
    lines = text.splitlines()
    value = [i for i, line in enumerate(lines) if line.startswith("$")]
    blocked = lines.index(f'Blocked 1 system call: unlink("{victim}").')
    assert value and value[0] < blocked  # after the value
    assert victim.read_text() == "keep"


# --- output, crash, hang, exit -----------------------------------------------------------


def test_output_is_captured(gdb):
    got = call(gdb, 2, "write_both(7)")
    assert (got["value"], got["stdout"], got["stderr"]) == ("7", "out 7\n", "err 7\n")
    text = gdb.cli("call-at-time 2 write_both(8)")
    lines = text.splitlines()
    assert lines.index("out 8") > [i for i, line in enumerate(lines) if line.startswith("$")][0]
    assert "err 8" in lines


def test_crash_reports_signal_address_backtrace_and_pages(gdb):
    got = call(gdb, 2, "crash_null()")
    assert (got["status"], got["signal"], got["fault_address"]) == ("signalled", "SIGSEGV", "0x0")
    assert got["backtrace"][0].split(" in ")[1].startswith("crash_null at ")
    assert "fault address 0x0" in got["error"]
    # what the call wrote before it crashed is still reported
    touched = [p for p in got["dirtied_pages"] if p["symbol"] == "touched"]
    assert len(touched) == 1 and touched[0]["changed"] and touched[0]["kind"] == "data"
    assert call(gdb, 2, "touched")["value"] == "0"  # a new process: the recorded state


@pytest.mark.parametrize(
    "expr, sig, function",
    [
        ("divide(1, 0)", "SIGFPE", "divide"),
        ("crash_trap()", "SIGILL", "crash_trap"),
    ],
    ids=["sigfpe", "sigill"],
)
def test_other_faults(gdb, expr, sig, function):
    got = call(gdb, 1, expr)
    assert (got["status"], got["signal"]) == ("signalled", sig)
    pc = int(got["backtrace"][0].split()[1], 16)
    assert int(got["fault_address"], 16) == pc  # these signals fault at the instruction
    assert got["backtrace"][0].split(" in ")[1].startswith(f"{function} at ")
    assert call(gdb, 1, "divide(9, 3)")["value"] == "3"


@pytest.mark.parametrize(
    "expr, function",
    [
        ("(unsigned)sleep(100)", "nanosleep"),
        ("(int)pause()", "pause"),
    ],
    ids=["sleep", "pause"],
)
def test_hang_in_a_system_call_is_interrupted(gdb, expr, function):
    got = call(gdb, 2, expr, "--timeout 1")
    assert got["status"] == "timeout"
    assert any(function in frame for frame in got["backtrace"]), got["backtrace"]
    assert call(gdb, 2, "step_value()")["value"] == "20"


def test_crash_text_report(gdb):
    record, text = gdb.run("call-at-time 3 crash_null()", 60)
    assert record["message"] == "error"
    assert record["payload"]["msg"].startswith("The program being debugged was signaled")
    lines = text.splitlines()
    start = lines.index("The call received SIGSEGV, fault address 0x0.")
    assert lines[start + 1] == "Backtrace where it stopped:"
    assert lines[start + 2].startswith("  #0  0x") and " in crash_null at " in lines[start + 2]
    assert any(line.startswith("The call wrote ") for line in lines[start:])
    text = gdb.cli("call-at-time 3 step_value()")
    assert any(line.startswith("$") and line.endswith(" = 30") for line in text.splitlines())


def test_hang_is_interrupted_with_the_timeout_setting(gdb):
    gdb.cli("set ttd timeout 1")
    try:
        assert last_line(gdb.cli("show ttd timeout")) == (
            "Calls of the past are interrupted after 1 seconds."
        )
        got = call(gdb, 1, "spin()")
    finally:
        gdb.cli("set ttd timeout 10")
    assert got["status"] == "timeout"
    assert got["error"].startswith("The call did not return within 1 s: interrupted at 0x")
    assert got["error"].endswith(" in spin.")
    assert got["backtrace"][0].split(" in ")[1].startswith("spin at ")
    assert call(gdb, 1, "step_value()")["value"] == "10"


@pytest.mark.parametrize(
    "expr, status, code, signal",
    [
        ("do_exit(5)", "exited", 5, None),
        ("(void)_exit(6)", "exited", 6, None),
        ("(void)abort()", "signalled", None, "SIGABRT"),
    ],
    ids=["exit", "_exit", "abort"],
)
def test_ending_the_process_is_reported(gdb, expr, status, code, signal):
    got = call(gdb, 3, expr)
    assert (got["status"], got["exit_code"], got["signal"]) == (status, code, signal)
    assert call(gdb, 3, "step_value()")["value"] == "30"


# --- the sandbox off ---------------------------------------------------------------------


def test_sandbox_setting_off_lets_calls_through_with_a_warning(gdb, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("goes")
    assert last_line(gdb.cli("show ttd sandbox")) == "The ttd sandbox is on."
    text = gdb.cli("set ttd sandbox off")
    try:
        assert last_line(text).startswith(
            "warning: the sandbox is off: the called code can change files"
        )
        assert last_line(gdb.cli("show ttd sandbox")) == "The ttd sandbox is off."
        got = call(gdb, 1, f'try_unlink("{victim}")')
    finally:
        gdb.cli("set ttd sandbox on")
    assert (got["value"], got["blocked_syscalls"]) == ("0", [])
    assert not victim.exists()
    victim.write_text("stays")
    got = call(gdb, 1, f'try_unlink("{victim}")')  # on again: a sandboxed process
    assert got["value"] == str(errno.EPERM) and victim.exists()


def test_allow_side_effects_option(gdb, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("goes")
    text = gdb.cli(f'call-at-time --allow-side-effects 2 try_unlink("{victim}")')
    assert "warning: the sandbox is off" in text
    assert not victim.exists()


def test_cli_allow_side_effects(escape_recording, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("goes")
    done = run_ttd(
        "call",
        str(escape_recording[0]),
        "--at",
        "1",
        "--allow-side-effects",
        "--json",
        f'try_unlink("{victim}")',
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == "0" and not victim.exists()
    assert done.stderr.startswith("ttd: warning: the sandbox is off")
    victim.write_text("stays")
    done = run_ttd(
        "call", str(escape_recording[0]), "--at", "1", f'try_unlink("{victim}")', timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f'Blocked 1 system call: unlink("{victim}").' in done.stdout.splitlines()
    assert victim.exists()


def test_goto_is_sandboxed(gdb, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    gdb.cli("ttd goto 2")
    try:
        text = gdb.cli(f'call (int)try_unlink("{victim}")')
    finally:
        end_sessions(gdb, "close_goto")
    assert text.strip().endswith(f"= {errno.EPERM}")
    assert victim.exists()


# --- the recording never changes ----------------------------------------------------------


def test_recording_is_byte_identical(gdb, escape_recording, tmp_path):
    """Calls of every kind (blocked, output, crash, exit, timeout, the sandbox off, goto)
    leave the recording and its directory exactly as they were."""
    db = escape_recording[0]
    before = sha256(db), sorted(os.listdir(db.parent))
    victim = tmp_path / "victim"
    victim.write_text("keep")
    assert call(gdb, 1, f'try_unlink("{victim}")')["value"] == str(errno.EPERM)
    assert call(gdb, 2, "write_both(3)")["stdout"] == "out 3\n"
    assert call(gdb, 2, "crash_null()")["status"] == "signalled"
    assert call(gdb, 3, "do_exit(2)")["status"] == "exited"
    assert call(gdb, 1, "spin()", "--timeout 0.5")["status"] == "timeout"
    assert call(gdb, 1, "touched = 77", "--allow-side-effects")["value"] == "77"
    gdb.cli("ttd goto 2")
    gdb.cli("call (int)write_both(4)")
    end_sessions(gdb, "close_all")
    assert (sha256(db), sorted(os.listdir(db.parent))) == before  # no journal or WAL left


# --- what a call writes is shown, never obeyed by the terminal -------------------------------


def test_terminal_escapes_are_shown_not_obeyed(gdb):
    text = gdb.cli("call-at-time 1 write_escapes()")
    assert not any(c in text for c in "\x1b\x07\r")
    lines = text.splitlines()
    assert "\\x1b]52;c;aGVsbG8=\\x07\\x1b[2Jcleared\\x07" in lines  # OSC 52, clear, bell
    assert "progress\\x0ddone" in lines
    got = call(gdb, 1, "write_escapes()")  # JSON escapes by itself: the bytes as written
    assert (got["stdout"], got["stderr"]) == (
        "\x1b]52;c;aGVsbG8=\x07\x1b[2Jcleared\x07\n",
        "progress\rdone\n",
    )


def test_a_path_cannot_forge_a_line_of_the_report(gdb, tmp_path):
    forged = "The call wrote 0 pages."
    text = gdb.cli(f'call-at-time 1 try_unlink("{tmp_path}/x\\n{forged}")')
    lines = text.splitlines()
    assert f'Blocked 1 system call: unlink("{tmp_path}/x\\x0a{forged}").' in lines
    assert forged not in lines
    got = call(gdb, 1, f'try_unlink("{tmp_path}/x\\n{forged}")')
    assert got["blocked_syscalls"][0]["detail"] == f"{tmp_path}/x\n{forged}"


# --- bounded: output, blocked calls --------------------------------------------------------

MiB = 1 << 20


def test_output_is_bounded_with_how_much_was_left_out(gdb):
    got = call(gdb, 1, "write_much(16 << 20)", "--timeout 60")
    assert got["value"] == str(16 * MiB)
    total = 6 + 16 * MiB + 5  # BEGIN\n ... \nEND\n
    assert (len(got["stdout"]), got["stdout_left_out"]) == (2 * MiB, total - 2 * MiB)
    assert got["stdout"].startswith("BEGIN\nxxx") and got["stdout"].endswith("xxx\nEND\n")
    text = gdb.cli("call-at-time 1 write_much(3 << 20)", 60)
    assert f"[... {6 + 3 * MiB + 5 - 2 * MiB} bytes of stdout left out ...]" in text.splitlines()
    assert call(gdb, 1, "write_both(5)")["stdout"] == "out 5\n"  # the next call's own output


def test_a_call_writing_forever_is_stopped_at_its_timeout(gdb):
    got = call(gdb, 2, "write_forever(2000)", "--timeout 1", timeout_s=60)
    assert got["status"] == "timeout"
    assert len(got["stdout"]) <= 2 * MiB and set(got["stdout"]) == {"y"}
    assert len(got["stdout"]) + got["stdout_left_out"] >= 64 << 10
    assert call(gdb, 2, "step_value()")["value"] == "20"


def test_many_blocked_calls_are_named_ten_then_counted(gdb):
    got = call(gdb, 3, "unlink_many(30)")
    assert got["value"] == "30"
    details = [e["detail"] for e in got["blocked_syscalls"]]
    assert details == [f"/tmp/ttd-no-such-file-{i}" for i in range(30)]
    text = gdb.cli("call-at-time 3 unlink_many(30)")
    [line] = [line for line in text.splitlines() if line.startswith("Blocked ")]
    assert line == (
        "Blocked 30 system calls: "
        + ", ".join(f'unlink("/tmp/ttd-no-such-file-{i}")' for i in range(10))
        + ", and 20 more."
    )


def test_an_i386_system_call_is_refused_and_said(gdb):
    """int $0x80 (i386 getpid, 20) inside a call. The page server either refuses it with
    EPERM and lists it as "i386 system call 20 ...", or ends the process with SIGSYS;
    then the report says the sandbox stopped the call. Both leave the session going."""
    got = call(gdb, 1, "int80()")
    other_abi = [e["name"] for e in got["blocked_syscalls"] if e["name"].startswith("i386 ")]
    if got["status"] == "returned":
        assert got["value"] == str(-errno.EPERM)
        assert other_abi == ["i386 system call 20 (getpid)"]
    else:
        assert (got["status"], got["signal"]) == ("signalled", "SIGSYS")
        assert got["error"].startswith(
            "The call was stopped by the sandbox (SIGSYS): it made a system call of another ABI ("
        )
        assert all(name in got["error"] for name in other_abi)
    assert call(gdb, 1, "step_value()")["value"] == "10"
