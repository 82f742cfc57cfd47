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
    """Everything call-at-time prints for `result` (a CallResult), in order."""
    out: list[tuple[str, str]] = [("err", printable(w, keep="")) for w in result.warnings]
    if result.history:
        out.append(("out", printable(result.history, keep="")))
    if result.stdout:
        out.append(("out", printable(result.stdout.removesuffix("\n"))))
    if result.stderr:
        out.append(("err", printable(result.stderr.removesuffix("\n"))))
    out.extend(("out", printable(line, keep="")) for line in fault_lines(result))
    blocked = report.blocked_summary(result.blocked_syscalls)
    if blocked:
        out.append(("out", printable(blocked, keep="")))
    line = report.summary(result.pages)
    if any(p.changed for p in result.pages):
        line += ' See "info dirtied-pages".'
    out.append(("out", line))
    out.extend(("out", note) for note in result.notes)
    return out


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
