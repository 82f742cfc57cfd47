"""`info dirtied-pages [ADDRESS] [--all]`: the pages the last call-at-time wrote."""
from __future__ import annotations

import gdb

from gdb_plugin import args, report
from gdb_plugin.commands import parsed
from gdb_plugin.report import printable


def page_lines(page: report.DirtiedPage) -> list[str]:
    """The detail of one page: what it is, each changed range, then old -> new."""
    head = (f"Page {page.rec_addr:#x} ({page.kind}, {page.mapping or 'no recorded mapping'})"
            + (f" holds {page.symbol}" if page.symbol else ""))
    if not page.changed:
        return [head, "Written by the call, but its bytes are unchanged."]
    lines = [head]
    symbols = page.range_symbols or [None] * len(page.changed_ranges)
    for (offset, length), symbol in zip(page.changed_ranges, symbols, strict=False):
        where = f" ({symbol})" if symbol else ""
        lines.append(f"Changed {length} byte{'s' if length != 1 else ''} at "
                     f"{page.rec_addr + offset:#x}, offset {offset}{where}.")
    if page.ranges_left_out:
        lines.append(f"... and {page.ranges_left_out} more changed range"
                     f"{'s' if page.ranges_left_out != 1 else ''} (not kept).")
    if not page.bytes_kept:
        lines.append(f"Its bytes were not kept: the call wrote more than "
                     f"{report.KEEP_BYTES_PAGES} pages.")
    lines.extend("  " + line for line in report.hex_diff(page))
    return lines


class InfoDirtiedPages(gdb.Command):
    """List the pages the last call-at-time wrote, or show what changed in one of them.

Usage: info dirtied-pages [ADDRESS] [--all]
Without ADDRESS: one line per page whose bytes changed (address, kind, number of
changed bytes, symbol, mapping), at most 20, and a summary; --all lists every
page written, those left equal too. Kinds: data, heap, stack, stack-scratch (below the
recorded stack pointer and its red zone), new-mapping, other.
With ADDRESS (any expression, e.g. 0x5555555580a0 or &counter): the page holding
it, as a hex diff old -> new of each changed range.

Examples:
  info dirtied-pages
  info dirtied-pages --all
  info dirtied-pages 0x555555558010"""

    def __init__(self, ctx):
        super().__init__("info dirtied-pages", gdb.COMMAND_STATUS, gdb.COMPLETE_EXPRESSION)
        self.ctx = ctx

    def invoke(self, arg, from_tty):
        address_expr, show_all = parsed(args.parse_dirtied_pages, arg)
        result = self.ctx.last_result
        if result is None:
            raise gdb.GdbError("No call-at-time yet.")
        if address_expr is not None:
            self._one_page(result.pages, address_expr)
            return
        rows = report.table(result.pages, show_all,
                            limit=None if show_all else report.ROWS_SHOWN)
        for row in rows:
            gdb.write(printable(row, keep="") + "\n")
        if not rows:
            gdb.write("No changed pages." if result.pages else "No dirtied pages.")
            gdb.write("\n")
        line = f"Tick {result.tick}, {result.expr}: {report.summary(result.pages)}"
        gdb.write(printable(line, keep="") + "\n")

    def _one_page(self, pages, address_expr: str) -> None:
        target_addr = _address_of(address_expr, self.ctx)
        rec_page = target_addr & ~(report.PAGE_SIZE - 1)
        for page in pages:
            if page.rec_addr == rec_page:
                for line in page_lines(page):
                    gdb.write(printable(line, keep="") + "\n")
                return
        raise gdb.GdbError(f"The last call did not write the page at {rec_page:#x}.")


def _eval_address(address_expr: str) -> int:
    """64 bits whatever GDB's architecture (unsigned long is 32 bits in i386's)."""
    value = gdb.parse_and_eval(address_expr)
    return int(value.cast(gdb.lookup_type("unsigned long long"))) & (2**64 - 1)


def _address_of(address_expr: str, ctx) -> int:
    """ADDRESS evaluated in the user's inferior, else in the kept call-at-time inferior
    (which has the recorded program's symbols at their recorded addresses)."""
    try:
        return _eval_address(address_expr)
    except gdb.error as exc:
        kept = ctx.sessions.with_symbols()
        if kept is None:
            raise gdb.GdbError(str(exc)) from None
        first = exc
    with kept.inferior.selected():
        try:
            return _eval_address(address_expr)
        except gdb.error:
            raise gdb.GdbError(str(first)) from None


def register(ctx) -> None:
    InfoDirtiedPages(ctx)
