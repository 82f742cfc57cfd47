"""The dirtied-pages report: classification, changed ranges, summary, JSON shape."""

import json

import pytest

from gdb_plugin import report
from gdb_plugin.report import PAGE_SIZE, Region
from tests.call_json import CALL_KEYS

EXE = "/usr/bin/prog"
REGIONS = [
    Region(0x555555554000, 0x555555555000, "r--p", EXE),
    Region(0x555555555000, 0x555555556000, "r-xp", EXE),
    Region(0x555555557000, 0x555555558000, "r--p", EXE),
    Region(0x555555558000, 0x55555555A000, "rw-p", EXE),
    Region(0x55555555A000, 0x55555555C000, "rw-p", ""),  # .bss continued
    Region(0x55555555C000, 0x55555557D000, "rw-p", "[heap]"),
    Region(0x7FFFF7D80000, 0x7FFFF7D84000, "rw-p", ""),  # TLS + TCB of thread
    Region(0x7FFFF7F00000, 0x7FFFF7F10000, "rw-p", ""),  # some anonymous mmap
    Region(0x7FFFF7F10000, 0x7FFFF7F20000, "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
    Region(0x7FFFFFFDE000, 0x7FFFFFFFF000, "rw-p", "[stack]"),
]
RSP = 0x7FFFFFFFE4C8  # in page 0x7fffffffe000
FS_BASE = 0x7FFFF7D83740


@pytest.mark.parametrize(
    "rec_page, expected",
    [
        (0x555555558000, (EXE, "data")),
        (0x555555559000, (EXE, "data")),
        (0x55555555A000, ("[anon]", "data")),
        (0x55555555C000, ("[heap]", "heap")),
        (0x55555557C000, ("[heap]", "heap")),
        (0x7FFFFFFFE000, ("[stack]", "stack")),  # holds rsp
        (0x7FFFFFFFF000 - PAGE_SIZE, ("[stack]", "stack")),  # above rsp
        (0x7FFFFFFFD000, ("[stack]", "stack-scratch")),  # entirely below rsp - 128
        (0x7FFFF7D83000, ("[anon]", "data")),  # TCB page
        (0x7FFFF7D82000, ("[anon]", "data")),  # static TLS below it
        (0x7FFFF7D80000, ("[anon]", "other")),
        (0x7FFFF7F00000, ("[anon]", "other")),
        (0x7FFFF7F10000, ("/usr/lib/x86_64-linux-gnu/libc.so.6", "other")),  # breakpoint writes
        (0x555555556000, ("", "new-mapping")),  # a hole
        (0x7FFFF0000000, ("", "new-mapping")),
    ],
    ids=lambda v: hex(v) if isinstance(v, int) else v[1],
)
def test_classify(rec_page, expected):
    assert report.classify(REGIONS, rec_page, RSP, FS_BASE) == expected


@pytest.mark.parametrize(
    "rsp, kind",
    [
        (0x7FFFFFFFE000 + 128, "stack-scratch"),  # rsp - 128 is exactly the page's end
        (0x7FFFFFFFE000 + 127, "stack"),  # the red zone dips into the page
        (0x7FFFFFFFE000 + 4000, "stack-scratch"),
        (0x7FFFFFFFE000, "stack"),
    ],
    ids=["red-zone-ends-at-page-end", "red-zone-overlaps", "far-below", "rsp-at-page-start"],
)
def test_stack_scratch_respects_red_zone(rsp, kind):
    assert report.classify(REGIONS, 0x7FFFFFFFD000, rsp) == ("[stack]", kind)


WORKER_STACK = Region(0x7FFFF7500000, 0x7FFFF7D00000, "rw-p", "")
WORKER_FS_BASE = 0x7FFFF7CFF6C0  # glibc: the TCB at the top of the thread's stack mapping


@pytest.mark.parametrize(
    "rec_page, rsp, kind",
    [
        (0x7FFFF7CFF000, 0x7FFFF7CFEE00, "data"),  # TCB page, rsp a page below
        (0x7FFFF7CFE000, 0x7FFFF7CFDE00, "data"),  # static TLS below the TCB
        (0x7FFFF7CFE000, 0x7FFFF7CFEE00, "stack"),  # shares the page with rsp
        (0x7FFFF7CFD000, 0x7FFFF7CFEE00, "stack-scratch"),
    ],
    ids=["tcb-page", "tls-page", "tls-page-holding-rsp", "below"],
)
def test_second_thread_tls_above_its_stack(rec_page, rsp, kind):
    regions = sorted(REGIONS + [WORKER_STACK], key=lambda r: r.start)
    assert report.classify(regions, rec_page, rsp, WORKER_FS_BASE) == ("[anon]", kind)


def page(fill=0, changes=()):
    data = bytearray([fill]) * PAGE_SIZE
    for offset, value in changes:
        data[offset] = value
    return bytes(data)


@pytest.mark.parametrize(
    "changes, ranges",
    [
        ((), []),
        (((0, 1),), [(0, 1)]),
        (((4095, 1),), [(4095, 1)]),
        (((16, 1), (17, 2), (18, 3), (19, 4)), [(16, 4)]),
        (((16, 1), (20, 1)), [(16, 1), (20, 1)]),
        (tuple((i, 9) for i in range(PAGE_SIZE)), [(0, PAGE_SIZE)]),
    ],
    ids=["none", "first-byte", "last-byte", "run", "two-runs", "whole-page"],
)
def test_changed_ranges(changes, ranges):
    assert report.changed_ranges(page(), page(0, changes)) == ranges


def test_build_pages_written_but_equal_is_unchanged():
    old = {0x555555558000: page(1), 0x55555555C000: page(2)}
    new = {0x555555558000: page(1, [(16, 7)]), 0x55555555C000: page(2)}
    pages = report.build_pages(
        [0x55555555C000, 0x555555558000], REGIONS, RSP, old.__getitem__, new.__getitem__, FS_BASE
    )
    assert [(p.rec_addr, p.kind, p.changed, p.changed_ranges) for p in pages] == [
        (0x555555558000, "data", True, [(16, 1)]),
        (0x55555555C000, "heap", False, []),
    ]
    assert report.summary(pages) == "The call wrote 2 pages: 1 changed (data 1), 1 left unchanged."
    assert report.table(pages)[1].split()[:4] == ["0x0000555555558000", "data", "yes", "1"]
    assert len(report.table(pages)) == 2
    assert len(report.table(pages, show_all=True)) == 3


def test_summary_of_nothing():
    assert report.summary([]) == "The call wrote no pages."
    assert report.table([]) == []


def test_hex_diff_old_and_new_lines():
    p = report.DirtiedPage(0x1000, "[heap]", "heap", page(0), page(0, [(17, 0xAB)]), [(17, 1)])
    lines = report.hex_diff(p)
    assert lines[0].startswith("0x0000000000001010  -00 00")
    assert lines[1].split()[0] == "+00" and "ab" in lines[1]
    assert len(lines) == 2


def test_json_shape_matches_design():
    p = report.DirtiedPage(
        0x555555558000, EXE, "data", page(0), page(0, [(16, 1)]), [(16, 1)], symbol="counter+16"
    )
    obj = report.report_json(
        tick=5,
        expr="bump(1)",
        status="returned",
        value="1",
        signal=None,
        pages=[p],
        stdout="",
        stderr="",
        blocked_syscalls=[],
        error=None,
        timings_ms={"call": 1.0},
        faults={"served": 12, "bytes": 49152},
    )
    assert list(obj) == CALL_KEYS
    assert obj["dirtied_pages"] == [
        {
            "address": "0x555555558000",
            "mapping": EXE,
            "kind": "data",
            "changed": True,
            "changed_ranges": [{"offset": 16, "length": 1}],
            "symbol": "counter+16",
            "changed_ranges_left_out": 0,
        }
    ]
    json.dumps(obj)  # serializable as it is


def test_json_of_a_crash():
    obj = report.report_json(
        tick=1,
        expr="f()",
        status="signalled",
        value="",
        signal="SIGSEGV",
        pages=[],
        stdout="",
        stderr="",
        blocked_syscalls=[],
        error="crashed",
        timings_ms={},
        faults={},
        fault_address=0x8,
        backtrace=["#0  0x8 in ??"],
        tracker="diff",
        notes=["a note"],
    )
    assert obj["fault_address"] == "0x8" and obj["exit_code"] is None
    assert obj["backtrace"] == ["#0  0x8 in ??"]
    assert (obj["tracker"], obj["notes"]) == ("diff", ["a note"])


@pytest.mark.parametrize(
    "blocked, line",
    [
        ([], None),
        (
            [{"name": "unlink", "count": 1, "detail": "/tmp/victim"}],
            'Blocked 1 system call: unlink("/tmp/victim").',
        ),
        (
            [
                {"name": "kill", "count": 2, "detail": "SIGKILL to pid 12"},
                {"name": "fork", "count": 1, "detail": None},
            ],
            "Blocked 3 system calls: kill(SIGKILL to pid 12) 2 times, fork().",
        ),
        (
            [{"name": "openat", "count": 1, "detail": '/tmp/a"b'}],
            'Blocked 1 system call: openat("/tmp/a\\"b").',
        ),
        (
            [{"name": "rename", "count": 1, "detail": "/tmp/a -> /tmp/b"}],
            'Blocked 1 system call: rename("/tmp/a", "/tmp/b").',
        ),
    ],
    ids=["none", "one-path", "counted-and-no-detail", "quote-in-path", "two-paths"],
)
def test_blocked_summary(blocked, line):
    assert report.blocked_summary(blocked) == line


def test_hex_diff_shows_a_shared_line_once():
    p = report.DirtiedPage(
        0x1000, "[heap]", "heap", page(0), page(0, [(80, 2), (88, 3)]), [(80, 1), (88, 1)]
    )
    lines = report.hex_diff(p)
    assert len(lines) == 2
    assert lines[1].split()[0] == "+02" and lines[1].split()[8] == "03"


def test_hex_diff_range_across_lines():
    p = report.DirtiedPage(
        0x1000, "[heap]", "heap", page(0), page(0, [(i, 1) for i in range(10, 40)]), [(10, 30)]
    )
    assert [line.split()[0] for line in report.hex_diff(p)[::2]] == [
        "0x0000000000001000",
        "0x0000000000001010",
        "0x0000000000001020",
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain text\n\tindented", "plain text\n\tindented"),
        ("\x1b]52;c;SGVsbG8=\x07", "\\x1b]52;c;SGVsbG8=\\x07"),  # OSC 52: set the clipboard
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear the screen
        ("over\rwrite", "over\\x0dwrite"),
        ("c1 \u009b31m", "c1 \\x9b31m"),
        ("del\x7f", "del\\x7f"),
    ],
)
def test_printable_escapes_control_bytes(text, expected):
    assert report.printable(text) == expected


def test_printable_can_escape_newlines_too():
    assert report.printable("a\nb", keep="") == "a\\x0ab"


def test_diff_ranges_are_capped_and_counted():
    striped = bytes(0xFF if i % 2 == 0 else 0 for i in range(PAGE_SIZE))
    ranges, left_out = report.diff_ranges(page(), striped, limit=32)
    assert ranges == [(i, 1) for i in range(0, 64, 2)] and left_out == 2048 - 32
    assert report.diff_ranges(page(), striped, limit=None) == (
        [(i, 1) for i in range(0, PAGE_SIZE, 2)],
        0,
    )
    assert report.diff_ranges(page(), bytes([1]) * PAGE_SIZE) == ([(0, PAGE_SIZE)], 0)
    assert report.diff_ranges(page(), page()) == ([], 0)


def test_a_page_with_more_ranges_than_kept():
    striped = bytes(0xFF if i % 2 == 0 else 0 for i in range(PAGE_SIZE))
    p = report.build_page(0x555555558000, REGIONS, RSP, page(), striped)
    assert p.changed and len(p.changed_ranges) == report.MAX_RANGES
    assert p.to_json()["changed_ranges_left_out"] == 2048 - report.MAX_RANGES
    assert report.table([p])[1].split()[3] == f"{report.MAX_RANGES}+"  # bytes: at least


def test_pages_past_the_kept_ones_drop_their_bytes():
    late = report.build_page(
        0x55555555C000, REGIONS, RSP, page(), page(0, [(5, 1)]), keep_bytes=False
    )
    assert (late.old, late.new, late.changed_ranges, late.bytes_kept) == (b"", b"", [(5, 1)], False)
    assert report.hex_diff(late) == []
