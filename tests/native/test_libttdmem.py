"""libttdmem.so, the preload of gdbserver: /proc/PID/mem reads of pages not filled
yet go through process_vm_readv (and so through the page server)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from tests.native.helpers import alive, read_mem_in_child, wait_for
from tests.native.recording_fixture import process_vm_readv

pytestmark = pytest.mark.timeout(120)


def test_mem_preload_reads_pages_not_filled_yet(remat, recording):
    """Without libttdmem.so, pread on /proc/PID/mem of a missing page fails with EIO
    (what gdbserver would hit); with it, the page is faulted in and read."""
    heap = next(m for m in recording.ticks[0].maps if m.path == "[heap]")
    target_addr = heap.start + 0x2A0  # malloc's first chunk: "heap string"
    with remat(recording.db_path, 1) as proc:
        assert read_mem_in_child(proc.pid, target_addr, None) == "errno 5"
        got = read_mem_in_child(proc.pid, target_addr, proc.mem_preload)
        assert bytes.fromhex(got) == process_vm_readv(proc.pid, target_addr, 16)
        assert bytes.fromhex(got).startswith(b"heap string")
        assert proc.written_pages() == []


LOG_MAX = 1 << 20  # native/libttdmem.c


def preloaded(native_build) -> dict:
    env = dict(os.environ)
    env["LD_PRELOAD"] = str(native_build / "libttdmem.so")
    return env


WRITE_FOREVER = (
    "import os\n"
    "written = 0\n"
    "for _ in range(64):\n"
    "    try:\n"
    "        written += os.write(2, b'x' * 65536)\n"
    "    except OSError as e:\n"
    "        print('errno', e.errno)\n"
    "        break\n"
    "print('written', written)\n"
)


def test_preload_bounds_a_log_file_on_fd_2(native_build, tmp_path):
    """gdbserver's log (fd 2, a file) stops at 1 MiB: writes past it fail with EFBIG and
    the writer goes on (SIGXFSZ ignored). An orphaned gdbserver grew its log to 1.8 GB."""
    log = tmp_path / "gdbserver.log"
    log.write_bytes(b"before\n")
    with open(log, "ab") as f:
        done = subprocess.run(
            [sys.executable, "-c", WRITE_FOREVER],
            stderr=f,
            capture_output=False,
            stdout=subprocess.PIPE,
            text=True,
            env=preloaded(native_build),
            timeout=60,
        )
    assert done.returncode == 0
    assert done.stdout.split() == ["errno", str(errno.EFBIG), "written", str(LOG_MAX)]
    assert log.stat().st_size == len(b"before\n") + LOG_MAX


PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(120)\n"
)


def test_preloaded_process_ends_with_its_parent(native_build):
    """gdbserver ends when the GDB that started it dies (PR_SET_PDEATHSIG)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdout=subprocess.PIPE,
        text=True,
        env=preloaded(native_build),
    )
    try:
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait(timeout=30)
        wait_for(lambda: not alive(child), "the child's end after its parent's")
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


WRITE_AT_THE_TOP = (
    "import ctypes, os, subprocess, sys\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; "
    "time.sleep(60)'])\n"
    "fd = os.open(f'/proc/{child.pid}/mem', os.O_RDWR)\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.pwrite64.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t,\n"
    "                          ctypes.c_int64]\n"
    "n = libc.pwrite64(fd, b'x' * 0x400, 0x400, -0x800)\n"
    "print(n, ctypes.get_errno())\n"
    "child.kill()\n"
)


def test_preload_write_at_the_top_of_the_address_space_ends(native_build):
    """A write GDB asks for just below 2^64 (a call with $rsp set to a tiny value puts
    its frame there) fails at once: the page walk before the write wrapped to 0 and went
    on through the whole address space, gdbserver at 100% CPU."""
    done = subprocess.run(
        [sys.executable, "-c", WRITE_AT_THE_TOP],
        capture_output=True,
        text=True,
        env=preloaded(native_build),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result, err = done.stdout.split()
    assert int(result) == -1 and int(err) in (errno.EIO, errno.EINVAL, errno.EFAULT)
