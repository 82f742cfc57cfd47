"""Runs inside GDB (the test's user inferior, a live process): GDB's own `call` as the
reference for call-at-time. Reads every readable page before and after the call, reports
the value and the pages whose bytes changed, then writes the old bytes back so the
program goes on exactly as if the call never happened."""

import json

import gdb

PAGE = 4096
SKIP = ("[vvar]", "[vvar_vclock]", "[vsyscall]", "[vdso]")
MARK = "LIVE_REF "


def _regions(pid):
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5].strip() if len(parts) > 5 else ""
            if parts[1][0] == "r" and path not in SKIP:
                yield start, end


def snapshot_pages(pid):
    pages = {}
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end in _regions(pid):
            for target_addr in range(start, end, PAGE):
                try:
                    mem.seek(target_addr)
                    pages[target_addr] = mem.read(PAGE)
                except OSError:
                    pass
    return pages


def _rseq_area():
    """(target_addr, size) of the calling thread's struct rseq, or None. The kernel writes
    cpu_id there whenever the live thread runs: not a write of the called function (the
    rematerialized process registers no rseq)."""
    try:
        offset = int(gdb.parse_and_eval("*(long *)&__rseq_offset"))
        size = int(gdb.parse_and_eval("*(unsigned int *)&__rseq_size"))
        fs_base = int(gdb.parse_and_eval("(unsigned long)$fs_base"))
    except gdb.error:
        return None
    return (fs_base + offset, max(size, 32)) if size else None


def _ignore_rseq(before, after):
    area = _rseq_area()
    if area is None:
        return
    start, size = area
    for target_addr in range(start, start + size):
        page = target_addr & ~(PAGE - 1)
        if page in before and page in after:
            i = target_addr - page
            data = bytearray(after[page])
            data[i] = before[page][i]
            after[page] = bytes(data)


def call(expr, thread_num=None):
    """Print MARK + {"value", "changed", "tid"} for GDB's `call EXPR` on the live process."""
    inferior = gdb.selected_inferior()
    before_thread = gdb.selected_thread()
    if thread_num is not None:
        gdb.execute(f"thread {thread_num}", to_string=True)
    tid = gdb.selected_thread().ptid[1]
    pid = inferior.pid
    before = snapshot_pages(pid)
    # only the calling thread runs, as in the rematerialized process (which has no other)
    gdb.execute("set scheduler-locking on", to_string=True)
    try:
        out = gdb.execute(f"call {expr}", to_string=True)
    finally:
        gdb.execute("set scheduler-locking replay", to_string=True)
    after = snapshot_pages(pid)
    _ignore_rseq(before, after)
    zero = bytes(PAGE)  # a page mapped by the call was zeros before it
    changed = sorted(a for a, data in after.items() if before.get(a, zero) != data)
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as mem:
        for target_addr in changed:
            mem.seek(target_addr)
            mem.write(before.get(target_addr, zero))
    gdb.execute("maintenance flush dcache", to_string=True)
    before_thread.switch()
    value = out.split(" = ", 1)[1].rstrip("\n") if " = " in out else ""
    gdb.write(
        MARK + json.dumps({"value": value, "changed": [hex(a) for a in changed], "tid": tid}) + "\n"
    )
