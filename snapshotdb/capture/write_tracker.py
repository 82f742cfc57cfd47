"""Which pages of a live process were written since the last snapshot, as the kernel tells:
userfaultfd write-protection in async mode, and PAGEMAP_SCAN.

Arming (WriteTracker.arm, at the first snapshot):

    the process makes a userfaultfd (O_CLOEXEC | O_NONBLOCK)      remote_syscall.py
    the recorder takes a copy with pidfd_getfd(2)
    the process closes its own: its next open() gets the same number it would have got
    UFFDIO_API with UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED

The registration lives as long as the recorder holds its copy; the process never sees a
fault: in async mode the kernel resolves a write to a protected page itself and only
clears the page's uffd-wp bit. At each snapshot (live_delta.py drives it):

    unregistered(range)  parts of a private anonymous mapping not registered yet: new since
                         the last snapshot (mmap, mremap, brk growth, munmap + mmap)
    register(range)      UFFDIO_REGISTER mode WP
    written(lo, hi)      PAGEMAP_SCAN PM_SCAN_WP_MATCHING, category PAGE_IS_WRITTEN |
                         PAGE_IS_WPALLOWED: the pages written since the last scan (a
                         registered page without the uffd-wp bit), write-protected again in
                         the same call
    unpopulated(lo, hi)  PAGEMAP_SCAN for pages neither present nor swapped: what
                         MADV_DONTNEED (or munmap + mmap of a part) left reading as zeros,
                         which is not a write

Only private anonymous mappings are registered: a private file mapping's page can go back
to the file's bytes without a write (MADV_DONTNEED keeps a uffd-wp marker there), and a
shared one changes through other processes and the file.

Facts this relies on (Linux 6.18, ../shared/DESIGN.md): registration from another process
works; `category_mask == return_mask == PAGE_IS_WRITTEN` takes a fast path that reports
unpopulated pages too, which the masks below avoid; a forked child does not inherit the
registration (no UFFD_FEATURE_EVENT_FORK: the kernel drops the context and the uffd-wp bits
in the child); mremap moves a range out of its registration (no UFFD_FEATURE_EVENT_REMAP),
so it shows as unregistered at its new place.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

from ..errors import CaptureError
from .proc import MappingInfo, read_proc
from .remote_syscall import CannotRunSyscall, RemoteSyscalls, find_syscall_insn, usable_thread

# linux/userfaultfd.h (the system headers are 6.1: the WP_ASYNC bits are defined here)
UFFDIO_API = 0xC018AA3F
UFFDIO_REGISTER = 0xC020AA00
UFFD_API = 0xAA
UFFD_FEATURE_WP_UNPOPULATED = 1 << 13
UFFD_FEATURE_WP_ASYNC = 1 << 15
NEED_FEATURES = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED
UFFDIO_REGISTER_MODE_WP = 2
UFFD_USER_MODE_ONLY = 1
# linux/fs.h PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg)
PAGEMAP_SCAN = 0xC0606610
PM_SCAN_WP_MATCHING = 1
PAGE_IS_WPALLOWED = 1 << 0
PAGE_IS_WRITTEN = 1 << 1
PAGE_IS_PRESENT = 1 << 3
PAGE_IS_SWAPPED = 1 << 4
PM_SCAN_ARG = struct.Struct("<12Q")  # size flags start end walk_end vec vec_len max_pages
#                                       category_inverted category_mask anyof_mask return_mask
REGIONS_PER_SCAN = 4096  # struct page_region entries per PAGEMAP_SCAN call
NR_CLOSE = 3
NR_USERFAULTFD = 323
NR_PIDFD_GETFD = 438
UFFD_FLAGS = os.O_CLOEXEC | os.O_NONBLOCK


class CannotTrack(CaptureError):
    """The kernel cannot track this process's writes; the message says why, in a few words."""


class TrackerLost(CaptureError):
    """The armed tracking no longer describes the process: it ran exec, or it is gone."""


class _PageRegion(ctypes.Structure):
    _fields_ = [
        ("start", ctypes.c_uint64),
        ("end", ctypes.c_uint64),
        ("categories", ctypes.c_uint64),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def wanted_features() -> int:
    """The userfaultfd features asked for; TTD_UFFD_FEATURES_MASK (hex) pretends the
    kernel offers only these (tests of the fallback), as ttd-pageserver does."""
    mask = os.environ.get("TTD_UFFD_FEATURES_MASK")
    return NEED_FEATURES & int(mask, 16) if mask else NEED_FEATURES


def pagemap_scan_missing() -> str | None:
    """Why PAGEMAP_SCAN cannot be used here, or None. TTD_NO_PAGEMAP_SCAN=1 pretends it is
    missing."""
    if os.environ.get("TTD_NO_PAGEMAP_SCAN") == "1":
        return "the kernel has no PAGEMAP_SCAN"
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        _scan(fd, 0, 0, 0, 0, 0, 0)  # an empty range: 0 regions where the ioctl exists
    except OSError as exc:
        return f"the kernel has no PAGEMAP_SCAN ({exc.strerror})"
    finally:
        os.close(fd)
    return None


_VEC = (_PageRegion * REGIONS_PER_SCAN)()


def _scan(
    pagemap_fd: int, start: int, end: int, flags: int, inverted: int, mask: int, return_mask: int
) -> list[tuple[int, int]]:
    """PAGEMAP_SCAN over [start, end): the runs of matching pages, in address order."""
    runs: list[tuple[int, int]] = []
    while True:  # a full vector: go on from where the walk stopped
        arg = bytearray(
            PM_SCAN_ARG.pack(
                PM_SCAN_ARG.size,
                flags,
                start,
                end,
                0,
                ctypes.addressof(_VEC),
                REGIONS_PER_SCAN,
                0,
                inverted,
                mask,
                0,
                return_mask,
            )
        )
        count = fcntl.ioctl(pagemap_fd, PAGEMAP_SCAN, arg)
        for region in _VEC[:count]:
            if runs and runs[-1][1] == region.start:
                runs[-1] = (runs[-1][0], region.end)
            else:
                runs.append((region.start, region.end))
        walk_end = PM_SCAN_ARG.unpack(arg)[4]
        if count < REGIONS_PER_SCAN or walk_end >= end:
            return runs
        start = walk_end


def holds_userfaultfd(pid: int) -> bool:
    """Does the process hold a userfaultfd of its own (it then registers memory itself)?"""
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == "anon_inode:[userfaultfd]":
                return True
        except OSError:
            continue
    return False


def under_seccomp(pid: int) -> bool:
    status = read_proc(pid, "status").decode()
    return any(
        line.split()[1:] not in (["0"], [])
        for line in status.splitlines()
        if line.startswith("Seccomp:")
    )


class WriteTracker:
    """The armed tracking of one live process. close() releases it (also when dropped)."""

    def __init__(self, pid: int, uffd: int, pagemap_fd: int):
        self.pid = pid
        self.uffd = uffd
        self.pagemap_fd = pagemap_fd

    @classmethod
    def arm(cls, pid: int, tids: list[int], mappings: list[MappingInfo]) -> WriteTracker:
        """Arm tracking of process `pid` (stopped, traced by this thread); `tids` in the order
        to try them for the system calls. CannotTrack with the reason when it cannot."""
        problem = pagemap_scan_missing()
        if problem:
            raise CannotTrack(problem)
        if under_seccomp(pid):
            raise CannotTrack("the program runs under a seccomp filter")
        if holds_userfaultfd(pid):
            raise CannotTrack("the program uses userfaultfd itself")
        uffd = _take_userfaultfd(pid, tids, mappings)
        try:
            _enable_features(uffd)
            # bound to the process's memory as it is now: after an exec it fails (ESRCH)
            pagemap_fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
        except BaseException:
            os.close(uffd)
            raise
        return cls(pid, uffd, pagemap_fd)

    def unregistered(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of [start, end) (within mappings) that are not registered."""
        return self._scan(start, end, 0, PAGE_IS_WPALLOWED, PAGE_IS_WPALLOWED, PAGE_IS_WPALLOWED)

    def register(self, start: int, end: int) -> bool:
        """Register [start, end) for write-protection; False when the kernel refuses it
        (a mapping another userfaultfd holds, or one of a kind it cannot protect)."""
        arg = bytearray(struct.pack("<4Q", start, end - start, UFFDIO_REGISTER_MODE_WP, 0))
        try:
            fcntl.ioctl(self.uffd, UFFDIO_REGISTER, arg)
        except OSError as exc:
            if exc.errno in (errno.ESRCH, errno.EFAULT) and not self._same_memory():
                raise TrackerLost(f"process {self.pid} ran exec or ended") from None
            return False
        return True

    def written(self, start: int, end: int) -> list[tuple[int, int]]:
        """Runs of registered pages in [start, end) written since the last call, each
        write-protected again by the same call."""
        return self._scan(
            start, end, PM_SCAN_WP_MATCHING, 0, PAGE_IS_WRITTEN | PAGE_IS_WPALLOWED, PAGE_IS_WRITTEN
        )

    def unpopulated(self, start: int, end: int) -> list[tuple[int, int]]:
        """Runs of registered pages in [start, end) that are neither present nor swapped
        out: they read as zeros."""
        absent = PAGE_IS_PRESENT | PAGE_IS_SWAPPED
        return self._scan(start, end, 0, absent, absent | PAGE_IS_WPALLOWED, PAGE_IS_WPALLOWED)

    def _scan(self, start, end, flags, inverted, mask, return_mask) -> list[tuple[int, int]]:
        try:
            return _scan(self.pagemap_fd, start, end, flags, inverted, mask, return_mask)
        except OSError as exc:
            if exc.errno == errno.ESRCH:
                raise TrackerLost(f"process {self.pid} ran exec or ended") from None
            raise CaptureError(
                f"PAGEMAP_SCAN of process {self.pid} failed: {exc.strerror}."
            ) from None

    def _same_memory(self) -> bool:
        try:
            _scan(self.pagemap_fd, 0, 0, 0, 0, 0, 0)
        except OSError:
            return False
        return True

    def close(self) -> None:
        for fd in (self.uffd, self.pagemap_fd):
            if fd >= 0:
                os.close(fd)
        self.uffd = self.pagemap_fd = -1

    def __del__(self) -> None:
        if getattr(self, "uffd", -1) >= 0:
            self.close()


def _take_userfaultfd(pid: int, tids: list[int], mappings: list[MappingInfo]) -> int:
    """A userfaultfd made inside process `pid` and closed there again; ours is the copy."""
    insn = find_syscall_insn(pid, mappings)
    if insn is None:
        raise CannotTrack("no syscall instruction is mapped in the program")
    tid, why = usable_thread(tids)
    if tid is None:
        raise CannotRunSyscall(f"no thread can make a system call now ({why})")
    with RemoteSyscalls(pid, tid, insn) as remote:
        target_fd = remote.call(NR_USERFAULTFD, UFFD_FLAGS)
        if target_fd == -errno.EPERM:  # vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE
            target_fd = remote.call(NR_USERFAULTFD, UFFD_FLAGS | UFFD_USER_MODE_ONLY)
        if target_fd < 0:
            raise CannotTrack(f"userfaultfd() in the program failed: {os.strerror(-target_fd)}")
        try:
            pidfd = os.pidfd_open(pid)
            try:
                uffd = _libc.syscall(NR_PIDFD_GETFD, pidfd, target_fd, 0)
                err = ctypes.get_errno()
            finally:
                os.close(pidfd)
        finally:
            remote.call(NR_CLOSE, target_fd)
    if uffd < 0:
        raise CannotTrack(f"pidfd_getfd() failed: {os.strerror(err)}")
    return uffd


def _enable_features(uffd: int) -> None:
    """UFFDIO_API asking for WP_ASYNC and WP_UNPOPULATED; CannotTrack when not offered."""
    features = wanted_features()
    arg = bytearray(struct.pack("<3Q", UFFD_API, features, 0))
    try:
        if features != NEED_FEATURES:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        fcntl.ioctl(uffd, UFFDIO_API, arg)
    except OSError:
        raise CannotTrack("the kernel offers no userfaultfd UFFD_FEATURE_WP_ASYNC") from None
    if struct.unpack("<3Q", arg)[1] & NEED_FEATURES != NEED_FEATURES:
        raise CannotTrack("the kernel offers no userfaultfd UFFD_FEATURE_WP_ASYNC")
