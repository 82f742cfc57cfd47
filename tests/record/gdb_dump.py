"""Run inside GDB (gdb -batch -x gdb_dump.py): stop the target at stop_here, take a
`ttd snapshot`, write a gcore of the same moment, and dump what GDB itself reads:
every thread's registers (regs.json) and every readable mapping (mem-START.bin).

Run with `-ex 'source gdb_plugin/ttd.py'` first. Environment: TTD_DB, TTD_OUT (a directory).
"""

import json
import os
import re

import gdb

from snapshotdb.regs import GPREG_NAMES  # the plugin, sourced first, put snapshotdb on the path

out = os.environ["TTD_OUT"]


def vector_bytes(frame, name, count):
    value = frame.read_register(name)[f"v{count}_int8"]
    return bytes(int(value[i]) & 0xFF for i in range(count)).hex()


def st_raw(i):
    text = gdb.execute(f"info registers st{i}", to_string=True)
    return int(re.search(r"raw (0x[0-9a-f]+)", text).group(1), 16).to_bytes(10, "little").hex()


def thread_registers(thread):
    thread.switch()
    frame = gdb.newest_frame()
    regs = {name: int(frame.read_register(name)) & (2**64 - 1) for name in GPREG_NAMES}
    regs["xmm"] = [vector_bytes(frame, f"xmm{i}", 16) for i in range(16)]
    regs["ymm"] = [vector_bytes(frame, f"ymm{i}", 32) for i in range(16)]
    regs["st"] = [st_raw(i) for i in range(8)]
    regs["mxcsr"] = int(frame.read_register("mxcsr"))
    return regs


gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute(f"ttd open --create {os.environ['TTD_DB']}")
gdb.execute("break stop_here")
gdb.execute("run")
gdb.execute("ttd snapshot fidelity")
gdb.execute(f"gcore {out}/gcore.core")
inferior = gdb.selected_inferior()
stopped = gdb.selected_thread()
result = {"pid": inferior.pid, "stop_tid": stopped.ptid[1], "threads": {}, "mappings": []}
for thread in inferior.threads():
    result["threads"][str(thread.ptid[1])] = thread_registers(thread)
stopped.switch()
with open(f"/proc/{inferior.pid}/maps") as maps:
    for line in maps:
        bounds, perms = line.split()[:2]
        start, end = (int(x, 16) for x in bounds.split("-"))
        path = line.split(maxsplit=5)[5].strip() if len(line.split()) > 5 else ""
        entry = {"start": start, "end": end, "perms": perms, "path": path, "dumped": False}
        if "r" in perms and start < 1 << 63:
            try:
                data = bytes(inferior.read_memory(start, end - start))
            except gdb.MemoryError:
                data = None
            if data is not None:
                with open(f"{out}/mem-{start:x}.bin", "wb") as f:
                    f.write(data)
                entry["dumped"] = True
        result["mappings"].append(entry)
with open(f"{out}/regs.json", "w") as f:
    json.dump(result, f)
gdb.execute("kill")
