"""The text form of a call's result, as call-at-time prints it (pure: no GDB).

text_lines() gives (stream, text) pairs, stream "out" or "err": the warnings, the
value as GDB printed it, what the call wrote, where it crashed or was interrupted,
what the sandbox blocked, the summary of the dirtied pages and notes on the tracker.
Every text that came from the call or the recording (its output, paths, names) is
made printable (report.printable): control bytes become visible escapes, so nothing
a call writes can move the cursor, set the clipboard or forge a line of the report;
the call's output keeps its newlines and tabs.
"""

from __future__ import annotations

from gdb_plugin import report
from gdb_plugin.report import printable


def text_lines(result) -> list[tuple[str, str]]:
    """Everything call-at-time prints for `result` (a CallResult), in order: short by
    default (the pages that changed, at most report.ROWS_SHOWN rows)."""
    out: list[tuple[str, str]] = [("err", printable(w, keep="")) for w in result.warnings]
    if result.history:
        out.append(("out", printable(result.history, keep="")))
    out.extend(
        ("out", text)
        for text in output_texts(result.stdout, result.stdout_left_out, result.stdout_cut, "stdout")
    )
    out.extend(
        ("err", text)
        for text in output_texts(result.stderr, result.stderr_left_out, result.stderr_cut, "stderr")
    )
    out.extend(("out", printable(line, keep="")) for line in fault_lines(result))
    blocked = report.blocked_summary(result.blocked_syscalls, result.blocked_left_out)
    if blocked:
        out.append(("out", printable(blocked, keep="")))
    out.append(("out", report.summary(result.pages)))
    rows = report.table(result.pages, limit=report.ROWS_SHOWN, changed_column=False)
    out.extend(("out", printable(row, keep="")) for row in rows)
    if rows and rows[-1].endswith(report.MORE):
        out.append(("out", report.by_mapping(result.pages)))
    out.extend(("out", note) for note in result.notes)
    return out


def output_texts(text: str, left_out: int, cut: int, name: str) -> list[str]:
    """A stream's kept output, printable, with newlines and tabs kept; when bytes were
    left out between its first and last MiB, a line saying how many, where they were."""
    if not text:
        return []
    if not left_out:
        return [printable(text.removesuffix("\n"))]
    head, tail = text[:cut], text[cut:]
    return [
        printable(head.removesuffix("\n")),
        f"[... {left_out} bytes of {name} left out ...]",
        printable(tail.removesuffix("\n")),
    ]


def fault_lines(result) -> list[str]:
    """For a crash, an exit or a timeout: the signal, the faulting address, the exit
    code, the backtrace."""
    lines = []
    if result.status == "signalled" and result.signal:
        line = f"The call received {result.signal}"
        if result.fault_address is not None:
            line += f", fault address {result.fault_address:#x}"
        lines.append(line + ".")
    elif result.status == "exited" and result.exit_code is not None:
        lines.append(f"The call exited with code {result.exit_code}.")
    if result.backtrace:
        lines.append("Backtrace where it stopped:")
        lines.extend("  " + frame for frame in result.backtrace)
    return lines
