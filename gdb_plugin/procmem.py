"""Pages of a stopped process read and written through /proc/PID/mem.

Written pages are present, so reading them never faults; a write through
/proc/PID/mem works on read-only pages too. Importable without GDB.
"""

from __future__ import annotations

import os

from gdb_plugin.report import PAGE_SIZE


def write_pages(pid: int, contents: dict[int, bytes]) -> None:
    """Write page contents back through /proc/PID/mem (works on read-only pages too)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    try:
        for rec_page, data in contents.items():
            os.pwrite(fd, data, rec_page)
    finally:
        os.close(fd)


RUN_PAGES = 256  # pages read with one pread (1 MiB)


def read_runs(pid: int, rec_pages: list[int]):
    """(page, bytes) of each page of `rec_pages` (sorted), read a run of contiguous pages
    at a time: one pread per MiB instead of one per page. A page that cannot be read
    gives b"". Raises OSError when the process is gone."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for run in _runs(rec_pages):
            try:
                data = os.pread(fd, len(run) * PAGE_SIZE, run[0])
            except OSError:
                data = b""
            if len(data) == len(run) * PAGE_SIZE:
                for i, rec_page in enumerate(run):
                    yield rec_page, data[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]
                continue
            for rec_page in run:  # a hole in the run: page by page
                try:
                    yield rec_page, os.pread(fd, PAGE_SIZE, rec_page)
                except OSError:
                    yield rec_page, b""
    finally:
        os.close(fd)


def _runs(rec_pages: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for rec_page in rec_pages:
        if runs and rec_page == runs[-1][-1] + PAGE_SIZE and len(runs[-1]) < RUN_PAGES:
            runs[-1].append(rec_page)
        else:
            runs.append([rec_page])
    return runs
