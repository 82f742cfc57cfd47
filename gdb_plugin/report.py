"""The dirtied-pages report: which pages a call wrote, what they are, what changed.

Pure logic on plain data (no GDB): the caller gives the written page addresses,
the recorded layout at the tick, the recorded stack pointer and the old (recorded)
and new (final) bytes of each page; this module classifies, diffs and formats.

Kinds of a written page:
    new-mapping    no recorded mapping holds it (the call mapped or grew memory)
    heap           the recorded [heap]
    stack          the stack that holds the recorded stack pointer (or [stack]),
                   at or above the page holding rsp - 128 (the red zone)
    stack-scratch  a stack page entirely below rsp - 128: dead at the tick, so
                   what the call leaves there (GDB's dummy frame, callee frames)
                   is scratch
    data           a writable file mapping (.data), the anonymous mapping right
                   after one (.bss), or the thread's static TLS (page of fs_base
                   and the one below it, x86-64 TLS variant II)
    other          anything else (anonymous mmap, code pages GDB wrote breakpoints to)
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

PAGE_SIZE = 4096
RED_ZONE = 128  # x86-64 SysV ABI: 128 bytes below rsp are the leaf function's

KINDS = ("data", "heap", "stack", "stack-scratch", "new-mapping", "other")

# in the notes of every call the diff tracker watched (kernels without WP_ASYNC)
DIFF_TRACKER_NOTE = (
    "Tracker diff: pages are compared with the recording, so writes "
    "that leave a page's bytes equal cannot be seen."
)


@dataclass(frozen=True)
class Region:
    """A recorded mapping: [start, end) with /proc/PID/maps perms and path."""

    start: int
    end: int
    perms: str
    path: str

    def holds(self, rec_addr: int) -> bool:
        return self.start <= rec_addr < self.end


MAX_RANGES = 32  # changed ranges kept per page; the rest only counted (ranges_left_out)
KEEP_BYTES_PAGES = 4096  # pages of a report that keep their old and new bytes (16 MiB each)


@dataclass
class DirtiedPage:
    rec_addr: int
    mapping: str
    kind: str
    old: bytes  # b"" when not kept (a call that changed more than KEEP_BYTES_PAGES)
    new: bytes
    changed_ranges: list[tuple[int, int]] = field(default_factory=list)  # (offset, length)
    symbol: str | None = None  # what lives at the first changed byte (or the page start)
    range_symbols: list[str | None] = field(default_factory=list)  # one per changed range
    ranges_left_out: int = 0  # changed ranges beyond MAX_RANGES, counted only
    bytes_kept: bool = True  # old and new hold the page's bytes

    @property
    def changed(self) -> bool:
        return bool(self.changed_ranges) or self.ranges_left_out > 0

    @property
    def changed_bytes(self) -> int:
        """Bytes changed in the ranges kept (all of them unless ranges_left_out)."""
        return sum(n for _, n in self.changed_ranges)

    def to_json(self) -> dict:
        return {
            "address": f"{self.rec_addr:#x}",
            "mapping": self.mapping,
            "kind": self.kind,
            "changed": self.changed,
            "changed_ranges": [{"offset": o, "length": n} for o, n in self.changed_ranges],
            "symbol": self.symbol,
            "changed_ranges_left_out": self.ranges_left_out,
        }


def regions_of(mappings) -> list[Region]:
    """Regions from snapshotdb Mapping rows (or anything with start/end/perms/path)."""
    return sorted(
        (Region(m.start, m.end, m.perms, m.path) for m in mappings), key=lambda r: r.start
    )


def region_at(regions: list[Region], rec_addr: int) -> Region | None:
    for region in regions:
        if region.holds(rec_addr):
            return region
    return None


def _is_bss(regions: list[Region], region: Region) -> bool:
    """An anonymous writable mapping that starts where a file mapping ends."""
    if region.path or "w" not in region.perms:
        return False
    return any(r.end == region.start and r.path.startswith("/") for r in regions)


def _is_tls(rec_page: int, fs_base: int | None) -> bool:
    if not fs_base:
        return False
    tcb_page = fs_base & ~(PAGE_SIZE - 1)
    return rec_page in (tcb_page, tcb_page - PAGE_SIZE)


def classify(
    regions: list[Region], rec_page: int, rsp: int, fs_base: int | None = None
) -> tuple[str, str]:
    """(mapping name, kind) of the page at rec_page, given the recorded rsp."""
    region = region_at(regions, rec_page)
    if region is None:
        return "", "new-mapping"
    name = region.path or "[anon]"
    if region.path == "[heap]":
        return name, "heap"
    if _is_tls(rec_page, fs_base) and rec_page != rsp & ~(PAGE_SIZE - 1):
        return name, "data"  # a thread's TLS sits right above its stack, same mapping
    if region.path == "[stack]" or region.holds(rsp):
        if rec_page + PAGE_SIZE <= rsp - RED_ZONE:
            return name, "stack-scratch"
        return name, "stack"
    if "w" in region.perms and (region.path.startswith("/") or _is_bss(regions, region)):
        return name, "data"
    return name, "other"


_NONZERO = bytes([0] + [1] * 255)  # byte -> 0 when zero, else 1 (bytes.translate)
_RUN = re.compile(rb"\x01+")


def diff_ranges(
    old: bytes, new: bytes, limit: int | None = MAX_RANGES
) -> tuple[list[tuple[int, int]], int]:
    """Maximal runs of differing bytes as (offset, length), the first `limit` of them
    (None: all), and how many more there are. In C speed: XOR of the pages as integers,
    then a regular expression over the bytes that differ."""
    size = min(len(old), len(new))
    if old[:size] == new[:size]:
        return [], 0
    xor = int.from_bytes(old[:size], "little") ^ int.from_bytes(new[:size], "little")
    mask = xor.to_bytes(size, "little").translate(_NONZERO)
    runs = _RUN.finditer(mask)
    ranges = [(m.start(), m.end() - m.start()) for m in itertools.islice(runs, limit)]
    return ranges, sum(1 for _ in runs)


def changed_ranges(old: bytes, new: bytes) -> list[tuple[int, int]]:
    """Every maximal run of differing bytes, as (offset, length)."""
    return diff_ranges(old, new, None)[0]


def build_page(
    rec_page: int,
    regions: list[Region],
    rsp: int,
    old: bytes,
    new: bytes,
    fs_base: int | None = None,
    keep_bytes: bool = True,
) -> DirtiedPage:
    """The DirtiedPage of one written page from its recorded and final bytes; its bytes
    are dropped unless keep_bytes (the ranges and counts stay)."""
    name, kind = classify(regions, rec_page, rsp, fs_base)
    ranges, left_out = diff_ranges(old, new)
    if not keep_bytes:
        old, new = b"", b""
    return DirtiedPage(
        rec_page, name, kind, old, new, ranges, ranges_left_out=left_out, bytes_kept=keep_bytes
    )


def build_pages(
    written: list[int], regions: list[Region], rsp: int, old_of, new_of, fs_base: int | None = None
) -> list[DirtiedPage]:
    """One DirtiedPage per written page; old_of/new_of map a page address to its bytes.
    The first KEEP_BYTES_PAGES keep their bytes."""
    return [
        build_page(
            rec_page,
            regions,
            rsp,
            old_of(rec_page),
            new_of(rec_page),
            fs_base,
            keep_bytes=i < KEEP_BYTES_PAGES,
        )
        for i, rec_page in enumerate(sorted(written))
    ]


def summary(pages: list[DirtiedPage]) -> str:
    """One line: how many pages were written, changed, and of which kinds."""
    if not pages:
        return "The call wrote no pages."
    changed = [p for p in pages if p.changed]
    kinds: dict[str, int] = {}
    for page in changed:
        kinds[page.kind] = kinds.get(page.kind, 0) + 1
    by_kind = ", ".join(f"{k} {kinds[k]}" for k in KINDS if k in kinds)
    plural = "s" if len(pages) != 1 else ""
    line = f"The call wrote {len(pages)} page{plural}: {len(changed)} changed"
    if by_kind:
        line += f" ({by_kind})"
    unchanged = len(pages) - len(changed)
    if unchanged:
        line += f", {unchanged} left unchanged"
    return line + "."


ROWS_SHOWN = 20  # pages listed by default (call-at-time, info dirtied-pages)
MORE = "info dirtied-pages --all"


def table(
    pages: list[DirtiedPage],
    show_all: bool = False,
    limit: int | None = None,
    changed_column: bool = True,
) -> list[str]:
    """Rows for `info dirtied-pages`: header then one line per changed page (show_all:
    per written page), at most `limit` of them and then how many more and where.
    Without changed_column (only changed pages listed) the yes/no column is left out."""
    shown = [p for p in pages if show_all or p.changed]
    if not shown:
        return []
    more = len(shown) - limit if limit is not None and len(shown) > limit else 0
    shown = shown[:limit] if more else shown
    width = max([len("Symbol")] + [len(p.symbol or "-") for p in shown])
    changed = f"{'Changed':<7}  " if changed_column else ""
    rows = [f"{'Address':<18}  {'Kind':<13}  {changed}{'Bytes':>5}  {'Symbol':<{width}}  Mapping"]
    for p in shown:
        nbytes = f"{p.changed_bytes}{'+' if p.ranges_left_out else ''}"
        changed = f"{'yes' if p.changed else 'no':<7}  " if changed_column else ""
        rows.append(
            f"{p.rec_addr:#018x}  {p.kind:<13}  {changed}"
            f"{nbytes:>5}  {p.symbol or '-':<{width}}  {p.mapping}"
        )
    if more:
        rows.append(f"{more} more: {MORE}")
    return rows


def by_mapping(pages: list[DirtiedPage]) -> str | None:
    """'Changed pages by mapping: [anon] 65536, [stack] 2.' (most first), or None when
    nothing changed."""
    counts: dict[str, int] = {}
    for page in pages:
        if page.changed:
            name = page.mapping or "no recorded mapping"
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    parts = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return "Changed pages by mapping: " + ", ".join(f"{n} {c}" for n, c in parts) + "."


def hex_diff(page: DirtiedPage, width: int = 16) -> list[str]:
    """Old -> new hex dump of the lines holding changed bytes, `width` bytes per line,
    each line once even when several ranges share it; none when the bytes were not kept."""
    if not page.bytes_kept:
        return []
    starts: list[int] = []
    for offset, length in page.changed_ranges:
        for line_start in range(offset - offset % width, offset + length, width):
            if not starts or starts[-1] != line_start:
                starts.append(line_start)
    lines: list[str] = []
    for line_start in starts:
        end = min(line_start + width, PAGE_SIZE)
        lines.append(f"{page.rec_addr + line_start:#018x}  -{page.old[line_start:end].hex(' ')}")
        lines.append(f"{'':18}  +{page.new[line_start:end].hex(' ')}")
    return lines


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}


def printable(text: str, keep: str = "\n\t") -> str:
    """`text` safe to print on a terminal: every control character (ESC, CR, BEL, the C1
    range, DEL) but those in `keep` becomes a visible escape such as \\x1b. Text that
    came from a call (its output, paths in blocked-call details) goes through this
    before it is printed; JSON output escapes by itself."""
    table = {c: v for c, v in _CONTROL.items() if chr(c) not in keep}
    return text.translate(table)


def has_control(text: str) -> bool:
    """Whether `text` holds a control character (a line break would end a GDB command
    built from it and start another)."""
    return any(ord(c) in _CONTROL for c in text)


def _quoted(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _syscall_text(entry: dict) -> str:
    """'unlink("/tmp/x")', 'rename("/tmp/a", "/tmp/b")', 'kill(SIGKILL to pid 12) 2 times',
    'fork()': paths quoted (the page server gives "FROM -> TO" for two)."""
    detail = entry.get("detail") or ""
    paths = detail.split(" -> ")
    if detail and all(p.startswith(("/", ".")) for p in paths):
        detail = ", ".join(_quoted(p) for p in paths)
    count = int(entry.get("count", 1))
    return f"{entry['name']}({detail})" + (f" {count} times" if count != 1 else "")


BLOCKED_SHOWN = 10  # distinct blocked system calls named in the text


def blocked_summary(
    blocked_syscalls: list[dict], left_out: dict | None = None, limit: int = BLOCKED_SHOWN
) -> str | None:
    """One line naming the system calls the sandbox blocked, or None when none was:
    'Blocked 2 system calls: unlink("/tmp/x"), fork().' The first `limit` distinct
    ones with their counts, then 'and M more' (M distinct ones, those the page server
    left out of its list, left_out {"distinct", "calls"}, included)."""
    left_out = left_out or {}
    if not blocked_syscalls and not left_out.get("calls"):
        return None
    total = sum(int(e.get("count", 1)) for e in blocked_syscalls) + int(left_out.get("calls", 0))
    more = max(len(blocked_syscalls) - limit, 0) + int(left_out.get("distinct", 0))
    calls = ", ".join(_syscall_text(e) for e in blocked_syscalls[:limit])
    if more:
        calls += f"{', and' if calls else ''} {more} more"
    return f"Blocked {total} system call{'s' if total != 1 else ''}: {calls.strip()}."


def report_json(
    *,
    tick: int,
    expr: str,
    status: str,
    value: str,
    signal: str | None,
    pages: list[DirtiedPage],
    stdout: str,
    stderr: str,
    blocked_syscalls: list[dict],
    error: str | None,
    timings_ms: dict,
    faults: dict,
    fault_address: int | None = None,
    backtrace: list[str] | None = None,
    exit_code: int | None = None,
    tracker: str = "wp-async",
    notes: list[str] | None = None,
    stdout_left_out: int = 0,
    stderr_left_out: int = 0,
    blocked_left_out: dict | None = None,
) -> dict:
    """The `ttd call --json` object, keys in DESIGN.md's order, then those of the
    containment work: the faulting address and backtrace of a crash (the backtrace
    also where a timeout interrupted the call), the exit code, the tracker that saw
    the writes and notes on what it cannot see; then what was left out to keep the
    report bounded: bytes of stdout and stderr between their first and last MiB, and
    the blocked system calls past the page server's list ({"distinct", "calls"})."""
    return {
        "tick": tick,
        "expr": expr,
        "status": status,
        "value": value,
        "signal": signal,
        "dirtied_pages": [p.to_json() for p in pages],
        "stdout": stdout,
        "stderr": stderr,
        "blocked_syscalls": blocked_syscalls,
        "error": error,
        "timings_ms": timings_ms,
        "faults": faults,
        "fault_address": None if fault_address is None else f"{fault_address:#x}",
        "backtrace": list(backtrace or []),
        "exit_code": exit_code,
        "tracker": tracker,
        "notes": list(notes or []),
        "stdout_left_out": stdout_left_out,
        "stderr_left_out": stderr_left_out,
        "blocked_syscalls_left_out": dict(blocked_left_out or {"distinct": 0, "calls": 0}),
    }
