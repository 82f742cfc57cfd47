"""No loss, no leak (issue 5): 100 calls in one GDB session, crashes and timeouts among
them, leave no process, zombie, descriptor or temporary file behind; 4 GDB sessions
calling at once on one recording all get the right answers; the recording is
byte-identical after all of it."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.harness import call, end_sessions, gdb_with_recording
from tests.e2e.procs import children, comm, descendants, footprint, stat_fields, temp_files

pytestmark = pytest.mark.timeout(240)


def sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _plan() -> list[tuple[int, str, str, dict]]:
    """100 calls: (tick, options, expr, what the result must hold). Mostly at tick 1 (the
    kept process), other ticks now and then, a crash, a timeout, an exit, blocked calls."""
    plan = []
    for i in range(100):
        tick = 1 if i % 10 else 1 + (i // 10) % 3
        if i == 33:
            plan.append((tick, "", "crash_null()", {"status": "signalled", "signal": "SIGSEGV"}))
        elif i == 66:
            plan.append((tick, "--timeout 0.5", "spin()", {"status": "timeout"}))
        elif i == 77:
            plan.append((tick, "", "do_exit(4)", {"status": "exited", "exit_code": 4}))
        elif i % 4 == 1:
            plan.append(
                (
                    tick,
                    "",
                    f"write_both({i})",
                    {"value": str(i), "stdout": f"out {i}\n", "stderr": f"err {i}\n"},
                )
            )
        elif i % 4 == 2:
            plan.append(
                (tick, "", f'try_unlink("/tmp/ttd-no-leak-{i}")', {"value": str(errno.EPERM)})
            )
        else:
            plan.append((tick, "", "step_value()", {"value": str(10 * tick)}))
    return plan


def test_hundred_calls_leave_nothing_behind(escape_recording):
    db, _ = escape_recording
    recorded = sha256(db)
    with gdb_with_recording(db) as gdb:
        gdb_pid = gdb.pid
        assert call(gdb, 1, "step_value()")["value"] == "10"  # what stays open is open now
        end_sessions(gdb, "drop_kept")
        before = footprint(gdb_pid)
        assert before["processes"] == {} and before["temp"] == []
        seen: set[int] = set()
        for tick, options, expr, want in _plan():
            got = call(gdb, tick, expr, options)
            assert {key: got[key] for key in want} == want, (tick, expr, got["error"])
            seen.update(descendants(gdb_pid))
        assert len(seen) >= 3  # gdbserver, page server, process: the count saw them
        end_sessions(gdb, "drop_kept")
        after = footprint(gdb_pid)
        assert after == before
        assert not any(stat_fields(pid) for pid in seen)  # gone, not even zombies
    assert sha256(db) == recorded


def _session_calls(db, worker: int) -> list[tuple[dict, dict]]:
    """One GDB session's calls at every tick, with what each must give."""
    results = []
    with gdb_with_recording(db) as gdb:
        for i in range(9):
            tick = 1 + (i + worker) % 3
            n = worker * 100 + i
            results.append((call(gdb, tick, "step_value()"), {"value": str(10 * tick)}))
            results.append(
                (
                    call(gdb, tick, f"write_both({n})"),
                    {"value": str(n), "stdout": f"out {n}\n", "stderr": f"err {n}\n"},
                )
            )
            results.append(
                (call(gdb, tick, "touched = step, touched * 2"), {"value": str(2 * tick)})
            )
    return results


def test_four_sessions_at_once(escape_recording):
    db, _ = escape_recording
    recorded = sha256(db)
    with ThreadPoolExecutor(max_workers=4) as pool:
        sessions = list(pool.map(lambda w: _session_calls(db, w), range(4)))
    for results in sessions:
        assert len(results) == 27
        for got, want in results:
            assert got["status"] == "returned", got["error"]
            assert {key: got[key] for key in want} == want
    assert sha256(db) == recorded


def _gdbserver_of(gdb_pid: int) -> int:
    servers = [pid for pid in children(gdb_pid) if comm(pid) == "gdbserver"]
    assert len(servers) == 1, servers
    return servers[0]


def _file_size_limit(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max file size"))
    return line.split()[3]


def _ignores(pid: int, sig: int) -> bool:
    with open(f"/proc/{pid}/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    return bool(mask & (1 << (sig - 1)))


def test_every_end_removes_the_session_directory(escape_recording):
    """gdbserver's log lives in the call session's own directory, bounded in size, and the
    directory goes with the session, however it ends: a tick change, a crash, an exit, a
    timeout, ttd close after ttd goto, GDB's exit."""
    db, _ = escape_recording
    with gdb_with_recording(db) as gdb:
        gdb_pid = gdb.pid
        assert temp_files(gdb_pid) == []
        assert call(gdb, 1, "step_value()")["value"] == "10"  # the process is kept
        [kept] = temp_files(gdb_pid)
        assert os.listdir(kept) == ["gdbserver.log"]
        server = _gdbserver_of(gdb_pid)
        assert _file_size_limit(server) == str(1 << 20)
        assert _ignores(server, signal.SIGXFSZ)  # a write past the limit fails, no death
        assert _file_size_limit(gdb_pid) == "unlimited"  # GDB's own limit is put back
        assert call(gdb, 2, "step_value()")["value"] == "20"  # another tick: moved there
        assert temp_files(gdb_pid) == [kept]  # the same session, nothing more
        for expr, options, status in [
            ("crash_null()", "", "signalled"),
            ("do_exit(1)", "", "exited"),
            ("spin()", "--timeout 0.5", "timeout"),
        ]:
            assert call(gdb, 3, expr, options)["status"] == status
            assert temp_files(gdb_pid) == []  # not kept: closed with its directory
        gdb.cli("ttd goto 1")
        assert call(gdb, 2, "step_value()")["value"] == "20"
        assert len(temp_files(gdb_pid)) == 2  # the goto and the kept session
        gdb.cli("ttd close")
        assert temp_files(gdb_pid) == []
        gdb.cli(f"ttd open {db}")
        assert call(gdb, 1, "step_value()")["value"] == "10"
        assert len(temp_files(gdb_pid)) == 1
        gdb.gdb_process.terminate()  # GDB quits on SIGTERM: gdb_exiting
        gdb.gdb_process.wait(timeout=60)
    assert temp_files(gdb_pid) == []
    assert descendants(gdb_pid) == {}
