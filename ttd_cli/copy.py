"""`ttd copy SRC DST`: a recording from one store to another (a SQLite file, a recording
in a PostgreSQL database: postgresql://...?recording=NAME), either way.

Pages and files already at DST (another recording's, an interrupted try's) are not sent
again. On a terminal a progress line shows what is sent; an interrupted copy (Ctrl-C,
a crash, a lost connection) leaves DST incomplete, never listed or opened as a
recording, and the same command again finishes it (snapshotdb/copy.py).
"""

from __future__ import annotations

import sys
import time

MIB = 1 << 20


class ProgressLine:
    """The progress line on stderr when it is a terminal, at most ten times a second."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.last = 0.0
        self.drawn = False

    def __call__(self, p) -> None:
        now = time.monotonic()
        if not self.shown or (now - self.last < 0.1 and p.done_rows < p.total_rows):
            return
        self.last = now
        rate = p.done_bytes / MIB / max(now - self.t0, 1e-3)
        share = 100 * p.done_bytes // p.total_bytes if p.total_bytes else 100
        print(
            f"\r\033[Kttd copy: {p.done_bytes / MIB:.1f} of {p.total_bytes / MIB:.1f} MiB "
            f"({share}%), {rate:.1f} MiB/s",
            end="",
            file=sys.stderr,
            flush=True,
        )
        self.drawn = True

    def end(self) -> None:
        if self.drawn:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def run(args) -> int:
    from gdb_plugin.report import printable
    from snapshotdb.copy import copy_recording

    line = ProgressLine()
    try:
        result = copy_recording(args.src, args.dst, line)
    except KeyboardInterrupt:
        line.end()
        print("ttd copy: interrupted; run the same ttd copy again to finish it.", file=sys.stderr)
        raise
    finally:
        line.end()
    there = result.pages - result.pages_sent
    print(
        printable(
            f"Copied '{result.source}' to '{result.destination}'"
            f"{' (resumed)' if result.resumed else ''}: {result.snapshots} snapshots, "
            f"{result.pages} pages ({result.pages_sent} sent, {there} there already), "
            f"{result.files} files, {result.bytes_sent / MIB:.1f} MiB in {result.seconds:.1f} s.",
            keep="",
        )
    )
    return 0
