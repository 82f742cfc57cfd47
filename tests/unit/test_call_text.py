"""The text form of a call's result (gdb_plugin/call_text.py), without GDB: what it
prints in which order, and that nothing from the call reaches the terminal raw."""
from __future__ import annotations

from gdb_plugin.call_text import text_lines
from gdb_plugin.report import DirtiedPage
from gdb_plugin.result import CallResult

PAGE = 0x555555558000


def result(**kw) -> CallResult:
    fields = dict(tick=2, expr="f()", status="returned", value="3", history="$1 = 3",
                  signal=None, error=None, pages=[], stdout="", stderr="", timings_ms={},
                  faults={})
    fields.update(kw)
    return CallResult(**fields)


def test_order_and_streams():
    page = DirtiedPage(PAGE, "/bin/prog", "data", b"\0" * 4096, b"\1" + b"\0" * 4095,
                       [(0, 1)], "counter")
    lines = text_lines(result(warnings=["warning: w"], stdout="out\n", stderr="err\n",
                              pages=[page], blocked_syscalls=[{"name": "unlink", "count": 1,
                                                               "detail": "/tmp/x"}],
                              notes=["a note"]))
    assert lines == [
        ("err", "warning: w"), ("out", "$1 = 3"), ("out", "out"), ("err", "err"),
        ("out", 'Blocked 1 system call: unlink("/tmp/x").'),
        ("out", 'The call wrote 1 page: 1 changed (data 1). See "info dirtied-pages".'),
        ("out", "a note")]


def test_control_bytes_are_shown_escaped():
    lines = text_lines(result(
        stdout="\x1b]52;c;aGVsbG8=\x07\x1b[2J\tcol\nnext\n", stderr="a\rb\n",
        warnings=["warning: /tmp/\x1b[31mred is missing"],
        blocked_syscalls=[{"name": "unlink", "count": 1,
                           "detail": "/tmp/x\nThe call wrote 0 pages."}],
        status="signalled", signal="SIGSEGV", backtrace=["#0  0x1 in f\x1b[2J"]))
    text = "\n".join(line for _, line in lines)
    assert not any(c in text for c in "\x1b\x07\r")
    assert ("out", "\\x1b]52;c;aGVsbG8=\\x07\\x1b[2J\tcol\nnext") in lines  # \t, \n kept
    assert ("err", "a\\x0db") in lines
    assert ("err", "warning: /tmp/\\x1b[31mred is missing") in lines
    assert ("out", 'Blocked 1 system call: unlink("/tmp/x\\x0aThe call wrote 0 pages.").') in lines
    assert ("out", "  #0  0x1 in f\\x1b[2J") in lines


def test_empty_output_prints_no_line():
    assert text_lines(result(history="")) == [("out", "The call wrote no pages.")]
