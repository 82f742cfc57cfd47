"""Run inside GDB (gdb -batch -x gdb_ways.py PROGRAM ARGS): at every hit of checkpoint,
snapshot the program into two recordings, one per way of finding changed pages: TTD_SCAN
(reading all memory) and TTD_TRACKED (the kernel's write tracking, insisted on). Which one
goes first alternates from hit to hit. Writes TTD_OUT (JSON): per snapshot, the way each
recording says it used and its statistics.

Run with `-ex 'source gdb_plugin/ttd.py'` first (snapshotdb on the path).
"""

import json
import os

import gdb

from snapshotdb.capture import snapshot_live, writer_for_pid
from snapshotdb.db import open_engine

ways = {"scan": os.environ["TTD_SCAN"], "wp-async": os.environ["TTD_TRACKED"]}
engines = {way: open_engine(path, create=True) for way, path in ways.items()}
recorders = {}
log = []

gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("break checkpoint")
gdb.execute("run")
while gdb.selected_inferior().pid:
    pid = gdb.selected_inferior().pid
    order = list(ways) if len(log) % 2 == 0 else list(reversed(ways))
    entry = {}
    for way in order:
        if way not in recorders:
            recorders[way] = writer_for_pid(engines[way], pid)
        stats = snapshot_live(
            recorders[way],
            pid,
            reason="breakpoint",
            stop_tid=gdb.selected_thread().ptid[1],
            tracker=way,
        )
        entry[way] = {
            "tick": stats.tick,
            "tracker": stats.tracker,
            "bytes": stats.bytes_scanned,
            "versions": stats.versions_written,
        }
    log.append(entry)
    gdb.execute("continue")
with open(os.environ["TTD_OUT"], "w") as f:
    json.dump(log, f)
