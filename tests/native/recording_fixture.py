"""A small recorder for tests/native: runs a target under ptrace and writes a real
recording of it (snapshotdb models) at every int3 the target executes.

Independent of snapshotdb.capture on purpose: the rematerialization tests must
not depend on the capture under test elsewhere. Kept small: one thread, the
stopped thread's registers, every readable page of every mapping.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from snapshotdb.db import open_engine
from snapshotdb.models import Mapping, PageContent, PageVersion, Recording, Snapshot, Thread
from snapshotdb.pages import PAGE_SIZE, ZERO_PAGE, encode
from snapshotdb.regs import FPREGS_SIZE, GPREGS_SIZE, XSTATE_MAX_SIZE

PTRACE_TRACEME, PTRACE_CONT, PTRACE_GETREGS, PTRACE_GETFPREGS = 0, 7, 12, 14
PTRACE_ATTACH, PTRACE_DETACH, PTRACE_GETREGSET = 16, 17, 0x4204
NT_X86_XSTATE = 0x202
VSYSCALL_START = 0xFFFFFFFFFF600000

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def ptrace(request: int, pid: int, target_addr: int = 0, data=None) -> int:
    ret = _libc.ptrace(request, pid, target_addr, data)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ptrace({request}, {pid}): {os.strerror(err)}")
    return ret


def get_regs(pid: int) -> tuple[bytes, bytes, bytes]:
    """(gpregs, fpregs, xstate) of a ptrace-stopped thread."""
    gp = ctypes.create_string_buffer(GPREGS_SIZE)
    fp = ctypes.create_string_buffer(FPREGS_SIZE)
    xs = ctypes.create_string_buffer(XSTATE_MAX_SIZE)
    iov = _IoVec(ctypes.cast(xs, ctypes.c_void_p), XSTATE_MAX_SIZE)
    ptrace(PTRACE_GETREGS, pid, 0, gp)
    ptrace(PTRACE_GETFPREGS, pid, 0, fp)
    ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, ctypes.byref(iov))
    return gp.raw, fp.raw, xs.raw[: iov.len]


@dataclass
class MapLine:
    start: int
    end: int
    perms: str
    offset: int
    path: str
    inode: int = 0


def read_maps(pid: int) -> list[MapLine]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5].strip() if len(parts) > 5 else ""
            if lo < VSYSCALL_START:  # [vsyscall] is the kernel's, not the program's
                out.append(MapLine(lo, hi, parts[1], int(parts[2], 16), path, int(parts[4])))
    return out


def read_pages(pid: int, maps: list[MapLine]) -> dict[int, bytes]:
    """Every non-zero readable page: rec_addr -> 4096 bytes."""
    pages = {}
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for m in maps:
            for rec_addr in range(m.start, m.end, PAGE_SIZE):
                try:
                    data = os.pread(fd, PAGE_SIZE, rec_addr)
                except OSError:
                    continue  # [vvar] and friends: not readable, recorded as zero
                if len(data) == PAGE_SIZE and data != ZERO_PAGE:
                    pages[rec_addr] = data
    finally:
        os.close(fd)
    return pages


def mm_fields(pid: int, maps: list[MapLine]) -> dict[str, int]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    field_of = lambda n: int(fields[n - 3])  # noqa: E731 - proc(5) numbers fields from 1
    heap = [m for m in maps if m.path == "[heap]"]
    start_brk = field_of(47)
    return dict(
        start_code=field_of(26),
        end_code=field_of(27),
        start_stack=field_of(28),
        start_data=field_of(45),
        end_data=field_of(46),
        start_brk=start_brk,
        brk=heap[0].end if heap else start_brk,
        arg_start=field_of(48),
        arg_end=field_of(49),
        env_start=field_of(50),
        env_end=field_of(51),
    )


@dataclass
class RecordedTick:
    tick: int
    regs: tuple[bytes, bytes, bytes]
    maps: list[MapLine]
    pages: dict[int, bytes]
    auxv: bytes


@dataclass
class RecordingResult:
    db_path: str
    pid: int
    ticks: list[RecordedTick] = field(default_factory=list)
    stdout: bytes = b""
    exit_code: int | None = None


class _Writer:
    """Writes snapshots with page versions only for pages that changed."""

    def __init__(self, db_path: str, exe: str):
        self.engine = open_engine(db_path, create=True)
        self.content_ids: dict[bytes, int] = {}
        self.previous: dict[int, bytes] = {}
        with Session(self.engine) as s, s.begin():
            rec = Recording(exe_path=exe, build_id=None, cmdline=json.dumps([exe]))
            s.add(rec)
            s.flush()
            self.recording_id = rec.id

    def write(self, pid: int, t: RecordedTick) -> None:
        gp, fp, xs = t.regs
        with Session(self.engine) as s, s.begin():
            snap = Snapshot(
                recording_id=self.recording_id,
                tick=t.tick,
                reason="breakpoint",
                stop_tid=pid,
                pc=int.from_bytes(gp[128:136], "little"),
                auxv=t.auxv,
                **mm_fields(pid, t.maps),
            )
            s.add(snap)
            s.flush()
            s.add(
                Thread(snapshot_id=snap.id, tid=pid, name="target", gpregs=gp, fpregs=fp, xstate=xs)
            )
            for m in t.maps:
                s.add(
                    Mapping(
                        snapshot_id=snap.id,
                        start=m.start,
                        end=m.end,
                        perms=m.perms,
                        offset=m.offset,
                        path=m.path,
                    )
                )
            self._write_pages(s, t)

    def _write_pages(self, s: Session, t: RecordedTick) -> None:
        for rec_addr, data in t.pages.items():
            if self.previous.get(rec_addr) == data:
                continue
            digest, codec, packed = encode(data)
            if digest not in self.content_ids:
                row = PageContent(digest=digest, codec=codec, data=packed)
                s.add(row)
                s.flush()
                self.content_ids[digest] = row.id
            s.add(
                PageVersion(
                    address=rec_addr, first_tick=t.tick, content_id=self.content_ids[digest]
                )
            )
        for rec_addr in self.previous.keys() - t.pages.keys():
            s.add(PageVersion(address=rec_addr, first_tick=t.tick, content_id=None))
        self.previous = dict(t.pages)


def record(
    binary: str, db_path: str, timeout: float = 30.0, max_ticks: int | None = None
) -> RecordingResult:
    """Run `binary` traced; snapshot it at each int3 (ticks 1, 2, ...) until it exits,
    or until max_ticks snapshots: then it is killed there (exit_code -9), so the live
    run does nothing after its last tick."""
    proc = subprocess.Popen(
        [binary],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: _libc.ptrace(PTRACE_TRACEME, 0, None, None),
    )
    result = RecordingResult(db_path=db_path, pid=proc.pid)
    writer = _Writer(db_path, binary)
    timer = _Watchdog(proc.pid, timeout)
    try:
        _, status = os.waitpid(proc.pid, 0)  # the exec stop
        ptrace(PTRACE_CONT, proc.pid)
        while True:
            _, status = os.waitpid(proc.pid, 0)
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                break
            sig = os.WSTOPSIG(status)
            if sig == signal.SIGTRAP:
                result.ticks.append(_snapshot(proc.pid, len(result.ticks) + 1, writer))
                sig = 0
                if len(result.ticks) == max_ticks:
                    sig = signal.SIGKILL
            elif sig == signal.SIGSTOP:
                sig = 0  # a target stopping itself: only rematerialized runs stop there
            ptrace(PTRACE_CONT, proc.pid, 0, sig)
        result.exit_code = os.waitstatus_to_exitcode(status)
        proc.returncode = result.exit_code
        result.stdout = proc.stdout.read()
    finally:
        timer.cancel()
        proc.stdout.close()
        writer.engine.dispose()
    return result


def _snapshot(pid: int, tick: int, writer: _Writer) -> RecordedTick:
    maps = read_maps(pid)
    with open(f"/proc/{pid}/auxv", "rb") as f:
        auxv = f.read()
    t = RecordedTick(
        tick=tick, regs=get_regs(pid), maps=maps, pages=read_pages(pid, maps), auxv=auxv
    )
    writer.write(pid, t)
    return t


class _Watchdog:
    """Kills the traced target if recording takes longer than `timeout` seconds."""

    def __init__(self, pid: int, timeout: float):
        import threading

        self._timer = threading.Timer(timeout, os.kill, (pid, signal.SIGKILL))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()


# ---- reading and writing another process's memory the way the kernel forwards faults


def process_vm_readv(pid: int, target_addr: int, length: int) -> bytes:
    buf = ctypes.create_string_buffer(length)
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), length)
    remote = _IoVec(target_addr, length)
    n = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n != length:
        err = ctypes.get_errno()
        raise OSError(
            err, f"process_vm_readv({pid}, {target_addr:#x}, {length}) = {n}: {os.strerror(err)}"
        )
    return buf.raw


def process_vm_writev(pid: int, target_addr: int, data: bytes) -> None:
    buf = ctypes.create_string_buffer(data, len(data))
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), len(data))
    remote = _IoVec(target_addr, len(data))
    n = _libc.process_vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n != len(data):
        err = ctypes.get_errno()
        raise OSError(err, f"process_vm_writev({pid}, {target_addr:#x}) = {n}: {os.strerror(err)}")


for _f in (_libc.process_vm_readv, _libc.process_vm_writev):
    _f.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    _f.restype = ctypes.c_ssize_t


def attach_stopped(pid: int) -> None:
    """PTRACE_ATTACH to a stopped process and wait for its stop."""
    ptrace(PTRACE_ATTACH, pid)
    os.waitpid(pid, os.WUNTRACED | 0x40000000)  # __WALL: we are not its parent


def detach_stopped(pid: int) -> None:
    ptrace(PTRACE_DETACH, pid, 0, signal.SIGSTOP)
