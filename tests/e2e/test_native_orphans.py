"""When GDB dies, nothing of a call is left (issue 8 item 4): gdbserver ends with it
(libttdmem.so sets PR_SET_PDEATHSIG), the page server sees its control socket close
and kills the process. An orphaned gdbserver spun at 100% CPU, growing its log."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.e2e.harness import gdb_with_recording
from tests.e2e.procs import alive
from tests.e2e.test_native_corrupt import descendants, json_of

pytestmark = pytest.mark.timeout(120)

HANG_S = 20


def test_killing_gdb_ends_gdbserver_the_page_server_and_the_process(escape_recording):
    with gdb_with_recording(escape_recording[0]) as gdb:
        assert json_of(gdb.cli("call-at-time --json 1 step_value()"))["value"] == "10"
        kept = descendants(gdb.pid)  # the session kept for the next call
        names = sorted(name for _, name in kept)
        assert {"gdbserver", "ttd-pageserver", "ttd-stub"} <= set(names), names
        os.kill(gdb.pid, signal.SIGKILL)
        deadline = time.monotonic() + HANG_S
        while any(alive(pid) for pid, _ in kept):
            assert time.monotonic() < deadline, [k for k in kept if alive(k[0])]
            time.sleep(0.05)
