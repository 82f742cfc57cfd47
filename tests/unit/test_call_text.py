"""The text form of a call's result (gdb_plugin/call_text.py), without GDB: what it
prints in which order, and that nothing from the call reaches the terminal raw."""

from __future__ import annotations

from gdb_plugin.call_text import text_lines
from gdb_plugin.report import DirtiedPage
from gdb_plugin.result import CallResult

PAGE = 0x555555558000


def result(**kw) -> CallResult:
    fields = dict(
        tick=2,
        expr="f()",
        status="returned",
        value="3",
        history="$1 = 3",
        signal=None,
        error=None,
        pages=[],
        stdout="",
        stderr="",
        timings_ms={},
        faults={},
    )
    fields.update(kw)
    return CallResult(**fields)


def test_order_and_streams():
    page = DirtiedPage(
        PAGE, "/bin/prog", "data", b"\0" * 4096, b"\1" + b"\0" * 4095, [(0, 1)], "counter"
    )
    lines = text_lines(
        result(
            warnings=["warning: w"],
            stdout="out\n",
            stderr="err\n",
            pages=[page],
            blocked_syscalls=[{"name": "unlink", "count": 1, "detail": "/tmp/x"}],
            notes=["a note"],
        )
    )
    assert lines == [
        ("err", "warning: w"),
        ("out", "$1 = 3"),
        ("out", "out"),
        ("err", "err"),
        ("out", 'Blocked 1 system call: unlink("/tmp/x").'),
        ("out", "The call wrote 1 page: 1 changed (data 1)."),
        ("out", "Address             Kind           Bytes  Symbol   Mapping"),
        ("out", "0x0000555555558000  data               1  counter  /bin/prog"),
        ("out", "a note"),
    ]


def test_control_bytes_are_shown_escaped():
    lines = text_lines(
        result(
            stdout="\x1b]52;c;aGVsbG8=\x07\x1b[2J\tcol\nnext\n",
            stderr="a\rb\n",
            warnings=["warning: /tmp/\x1b[31mred is missing"],
            blocked_syscalls=[
                {"name": "unlink", "count": 1, "detail": "/tmp/x\nThe call wrote 0 pages."}
            ],
            status="signalled",
            signal="SIGSEGV",
            backtrace=["#0  0x1 in f\x1b[2J"],
        )
    )
    text = "\n".join(line for _, line in lines)
    assert not any(c in text for c in "\x1b\x07\r")
    assert ("out", "\\x1b]52;c;aGVsbG8=\\x07\\x1b[2J\tcol\nnext") in lines  # \t, \n kept
    assert ("err", "a\\x0db") in lines
    assert ("err", "warning: /tmp/\\x1b[31mred is missing") in lines
    assert ("out", 'Blocked 1 system call: unlink("/tmp/x\\x0aThe call wrote 0 pages.").') in lines
    assert ("out", "  #0  0x1 in f\\x1b[2J") in lines


def test_empty_output_prints_no_line():
    assert text_lines(result(history="")) == [("out", "The call wrote no pages.")]


def _changed_page(i: int, mapping: str = "[anon]") -> DirtiedPage:
    return DirtiedPage(PAGE + i * 4096, mapping, "other", b"\0" * 4096, b"\1" * 4096, [(0, 4096)])


def test_short_by_default_with_how_many_more_and_counts_per_mapping():
    pages = [_changed_page(i) for i in range(23)] + [_changed_page(30, "/bin/prog")]
    pages.append(
        DirtiedPage(PAGE + 40 * 4096, "[anon]", "other", b"\0" * 4096, b"\0" * 4096, [])
    )  # written back unchanged: not listed
    lines = [line for _, line in text_lines(result(history="", pages=pages))]
    assert lines[0] == "The call wrote 25 pages: 24 changed (other 24), 1 left unchanged."
    assert lines[1].split() == ["Address", "Kind", "Bytes", "Symbol", "Mapping"]
    assert len(lines[2:22]) == 20 and all(line.startswith("0x0000") for line in lines[2:22])
    assert lines[22:] == [
        "4 more: info dirtied-pages --all",
        "Changed pages by mapping: [anon] 23, /bin/prog 1.",
    ]


def test_output_left_out_is_said_where_it_was():
    lines = text_lines(
        result(stdout="BEGIN\nxx" + "yy\nEND\n", stdout_left_out=14 << 20, stdout_cut=8)
    )
    assert lines[1:4] == [
        ("out", "BEGIN\nxx"),
        ("out", "[... 14680064 bytes of stdout left out ...]"),
        ("out", "yy\nEND"),
    ]


def test_blocked_calls_past_the_first_ten_are_counted():
    blocked = [{"name": f"syscall {n}", "count": 2, "detail": None} for n in range(12)]
    lines = text_lines(
        result(blocked_syscalls=blocked, blocked_left_out={"distinct": 88, "calls": 100})
    )
    assert lines[1] == (
        "out",
        "Blocked 124 system calls: "
        + ", ".join(f"syscall {n}() 2 times" for n in range(10))
        + ", and 90 more.",
    )
