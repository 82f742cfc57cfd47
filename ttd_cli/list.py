"""`ttd list URL [--json]`: the recordings of a PostgreSQL database (or the one of a SQLite
file): name, state (complete, or copying: a copy not finished), snapshots, ticks, the
program, when made; the URL that opens each is the list's URL with ?recording=NAME."""

from __future__ import annotations

import json


def run(args) -> int:
    from gdb_plugin.report import printable
    from snapshotdb.listing import list_recordings

    rows = list_recordings(args.url)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("No recordings.")
        return 0
    table = [("NAME", "STATE", "SNAPSHOTS", "TICKS", "PROGRAM", "MADE")]
    for r in rows:
        ticks = f"{r['ticks'][0]}-{r['ticks'][1]}" if r["ticks"] else "-"
        table.append(
            (
                r["name"],
                r["state"],
                str(r["snapshots"]),
                ticks,
                r["program"] or "-",
                r["made"] or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print(printable("  ".join(cells + [row[-1]]), keep=""))
    return 0
