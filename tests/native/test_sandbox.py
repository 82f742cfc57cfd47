"""The sandbox (issue 5, issue 8): a rematerialized process cannot reach outside
itself; each attempt fails with EPERM and is listed with its telling argument.
Real processes, real recordings, no GDB."""

from __future__ import annotations

import os
import signal

import pytest

from gdb_plugin.remat import rematerialize
from tests.native.helpers import alive

pytestmark = pytest.mark.timeout(120)


def test_sandbox_refuses_what_reaches_outside_and_counts_it(sandbox_recording):
    base = sandbox_recording.base
    open(base + ".keep", "w").close()
    try:
        with rematerialize(sandbox_recording.db_path, 1) as proc:  # the sandbox is the default
            os.kill(proc.pid, signal.SIGCONT)
            status = proc.wait_exit(timeout=30)
            out = proc.output()[0].splitlines()[-1]
            blocked = proc.stats()["blocked_syscalls"]
        assert os.waitstatus_to_exitcode(status) == 0
        assert out == b"open -1 1 unlink -1 1 kill-parent -1 1 kill-self 0 fork -1 1"
        assert os.path.exists(base + ".keep") and not os.path.exists(base + ".new")
        assert blocked == [
            {"name": "openat", "count": 1, "detail": base + ".new"},
            {"name": "unlink", "count": 1, "detail": base + ".keep"},
            {"name": "kill", "count": 1, "detail": f"signal 0 to pid {proc.server_pid}"},
            {"name": "clone", "count": 1, "detail": None},
        ]
    finally:
        for suffix in (".keep", ".new"):
            if os.path.exists(base + suffix):
                os.unlink(base + suffix)


@pytest.fixture
def escape_files(escape_recording):
    """The files remat_escape goes for, as the recorded run left them."""
    base = escape_recording.base
    for suffix in (".keep", ".victim"):
        with open(base + suffix, "w") as f:
            f.write("recorded\n")
    yield base
    for suffix in (".keep", ".victim", ".moved"):
        if os.path.exists(base + suffix):
            os.unlink(base + suffix)


@pytest.mark.parametrize("tracker", ["wp-async", "diff"])
def test_every_way_out_is_refused_and_listed_with_its_detail(
    escape_recording, escape_files, tracker
):
    """unlink (twice), open(O_WRONLY|O_TRUNC), rename, kill(getppid(), SIGKILL),
    socket + connect (IPv4, IPv6) + sendto (unix), fork, execve: each fails with EPERM
    and appears with its telling argument; the files and the parent (the page server)
    are untouched; a signal to itself passes. The path strings are read from pages the process has
    not touched yet (they are filled for the read)."""
    base = escape_files
    with rematerialize(escape_recording.db_path, 1, tracker=tracker) as proc:
        server_pid = proc.server_pid
        os.kill(proc.pid, signal.SIGCONT)
        status = proc.wait_exit(timeout=30)  # the server's last word: it survived the kill
        out = proc.output()[0].splitlines()[-1]
        blocked = proc.stats()["blocked_syscalls"]
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == (
        b"unlink -1 1 open -1 1 rename -1 1 kill -1 1 socket -1 1 connect -1 1 "
        b"fork -1 1 execve -1 1 self 0 10"
    )
    for suffix in (".keep", ".victim"):
        with open(base + suffix) as f:
            assert f.read() == "recorded\n"
    assert not os.path.exists(base + ".moved")
    assert blocked == [
        {"name": "unlink", "count": 2, "detail": base + ".keep"},
        {"name": "openat", "count": 1, "detail": base + ".victim"},
        {"name": "rename", "count": 1, "detail": f"{base}.victim -> {base}.moved"},
        {"name": "kill", "count": 1, "detail": f"SIGKILL to pid {server_pid}"},
        {"name": "socket", "count": 1, "detail": "AF_INET SOCK_STREAM"},
        {"name": "connect", "count": 1, "detail": "AF_INET 127.0.0.1:9"},
        {"name": "connect", "count": 1, "detail": "AF_INET6 [::1]:53"},
        {"name": "sendto", "count": 1, "detail": f"AF_UNIX {base}.sock"},
        {"name": "clone", "count": 1, "detail": None},
        {"name": "execve", "count": 1, "detail": "/bin/true"},
    ]


def test_without_the_sandbox_calls_reach_outside(sandbox_recording):
    """The same run without the sandbox really creates and deletes files: the
    sandbox test above would see it."""
    base = sandbox_recording.base
    open(base + ".keep", "w").close()
    try:
        with rematerialize(sandbox_recording.db_path, 1, sandbox=False) as proc:
            os.kill(proc.pid, signal.SIGCONT)
            proc.wait_exit(timeout=30)
            assert proc.stats()["blocked_syscalls"] == [] and proc.stats()["sandbox"] is False
            words = proc.output()[0].splitlines()[-1].split()
        assert not os.path.exists(base + ".keep") and os.path.exists(base + ".new")
        assert int(words[1]) >= 0 and words[3:5] == [b"unlink", b"0"]  # open, unlink worked
        forked = int(words[words.index(b"fork") + 1])
        assert forked > 0 and not alive(forked)  # its child was reaped, not left behind
    finally:
        for suffix in (".keep", ".new"):
            if os.path.exists(base + suffix):
                os.unlink(base + suffix)
