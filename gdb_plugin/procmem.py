"""Pages of a stopped process read and written through /proc/PID/mem.

Written pages are present, so reading them never faults; a write through
/proc/PID/mem works on read-only pages too. Importable without GDB.
"""
from __future__ import annotations

import os

from gdb_plugin.report import PAGE_SIZE


def read_pages(pid: int, rec_pages: list[int]) -> dict[int, bytes]:
    """Current bytes of pages of a stopped process; written pages are present, so
    /proc/PID/mem reads them without a fault. Unreadable pages read as empty."""
    out = {}
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for rec_page in rec_pages:
            try:
                out[rec_page] = os.pread(fd, PAGE_SIZE, rec_page)
            except OSError:
                out[rec_page] = b""
    finally:
        os.close(fd)
    return out


def write_pages(pid: int, contents: dict[int, bytes]) -> None:
    """Write page contents back through /proc/PID/mem (works on read-only pages too)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    try:
        for rec_page, data in contents.items():
            os.pwrite(fd, data, rec_page)
    finally:
        os.close(fd)
