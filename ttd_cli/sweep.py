"""`ttd sweep DB EXPR [--ticks SPEC] [--changes] [--thread TID] [--timeout S]
             [--json | --csv] [--plot FILE.png]`

One GDB (ttd_cli.mi) loads the plugin, opens DB and runs the plugin's `ttd sweep --json`
(gdb_plugin/commands/ttd_sweep.py): every tick's call in that one GDB, never one GDB
per tick. Its JSON list (one `ttd call --json` object per tick) is printed as it is
(--json), as CSV (tick,status,value,pages_changed,error) or as the plugin's table;
--plot draws the numeric values against the tick into a PNG (matplotlib, Agg).
"""

from __future__ import annotations

import csv
import json
import os
import sys

from gdb_plugin import sweep, tick_spec
from gdb_plugin.report import printable

from . import call
from .errors import CliError
from .mi import GdbFailed, mi_quote
from .plugin import gdb_with_recording

GDB_MARGIN_S = 60  # per tick: how much longer than the call's timeout GDB may take


def run(args) -> int:
    expr = call.expression(args.expr)
    check_plot_path(args.plot)
    ticks = selected_ticks(args.db, args.ticks)
    objs = sweep_json(args.db, expr, args.ticks, ticks, args.changes, args.thread, args.timeout)
    rows = [sweep.row_of(obj) for obj in objs]
    if args.json:
        print(json.dumps(objs))
    elif args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(sweep.CSV_HEADER)
        writer.writerows(sweep.csv_rows(rows))
    else:
        for line in sweep.table(rows):
            print(line)
        print(sweep.summary(rows, len(ticks), args.changes))
    if args.plot:
        plot(rows, args.plot, expr)
        print(
            f"ttd: wrote the plot of {printable(expr, keep='')} to {printable(args.plot, keep='')}",
            file=sys.stderr,
        )
    return 0 if all(row.status == "returned" for row in rows) else 1


def selected_ticks(db: str, spec: str) -> list[int]:
    """The recorded ticks SPEC names (a bad SPEC or a missing recording: one line, before
    GDB starts)."""
    from snapshotdb.db import open_recording

    call.check_recording(db)
    with open_recording(db) as recording:
        recorded = sweep.recorded_ticks(recording)
    try:
        return tick_spec.ticks(spec, recorded)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def sweep_json(
    db: str,
    expr: str,
    spec: str,
    ticks: list[int],
    changes: bool,
    tid: int | None,
    timeout_s: float,
) -> list[dict]:
    """The plugin's `ttd sweep --json` in one fresh GDB: the list of call objects. SPEC
    was checked (digits, commas, dashes or "all"), so it is one word of the command."""
    options = f"--json --ticks {''.join(spec.split())}" + (" --changes" if changes else "")
    if tid is not None:
        options += f" --thread {tid}"
    progress = Progress() if sys.stderr.isatty() else None
    if progress is not None:
        options += " --progress"
    with gdb_with_recording(db) as gdb:
        gdb.cli(f"set ttd timeout {timeout_s!r}")
        try:
            text = cli_streaming(
                gdb,
                f"ttd sweep {options} -- {expr}",
                len(ticks) * (timeout_s + GDB_MARGIN_S),
                progress,
            )
        finally:
            if progress is not None:
                progress.clear()
    for warning in dict.fromkeys(call.file_warnings(text)):
        print(f"ttd: {printable(warning)}", file=sys.stderr)
    for line in text.splitlines():
        if line.startswith(('[{"tick"', "[]")):
            return json.loads(line)
    raise CliError("ttd sweep printed no result.")


def cli_streaming(gdb, command: str, timeout_s: float, progress) -> str:
    """gdb.cli(command), each progress line of the plugin's --progress shown by
    progress(I, N, TICK) as it arrives (None: as gdb.cli)."""
    if progress is None:
        return gdb.cli(command, timeout_s)

    def done(record: dict) -> bool:
        payload = record["payload"]
        if record["type"] == "console" and str(payload).startswith(sweep.PROGRESS_MARK + " "):
            progress(*str(payload).split()[1:4])
        return record["type"] == "result"

    gdb.send(f"-interpreter-exec console {mi_quote(command)}")
    record, text = gdb.wait(done, "'ttd'", timeout_s)
    if record["message"] == "error":
        raise GdbFailed((record["payload"] or {}).get("msg", "ttd sweep failed"))
    return text


class Progress:
    """'Sweeping: tick 12 (3/50)' on one line of the terminal (stderr), rewritten."""

    def __init__(self) -> None:
        self.width = 0

    def __call__(self, i: str, total: str, tick: str) -> None:
        text = f"Sweeping: tick {tick} ({i}/{total})"
        self.width = max(self.width, len(text))
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()

    def clear(self) -> None:
        if self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def check_plot_path(path: str | None) -> None:
    """A .png in a directory that exists, before the sweep runs."""
    if path is None:
        return
    if not path.lower().endswith(".png"):
        raise CliError(
            f"--plot {printable(path, keep='')}: the plot is a PNG file, its name must end in .png."
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(
            f"--plot {printable(path, keep='')}: no directory {printable(folder, keep='')}."
        )


def plot(rows: list[sweep.Row], path: str, expr: str) -> None:
    """The value of each tick whose call returned, against the tick, into PATH (PNG).
    Every value must be a number (GDB's integers, floats, chars)."""
    points = []
    for row in rows:
        if row.status != "returned":
            continue
        number = sweep.numeric(row.value)
        if number is None:
            raise CliError(
                f"Cannot plot: the value at tick {row.tick} is "
                f"'{printable(row.value, keep='')}', not a number."
            )
        points.append((row.tick, number))
    if not points:
        raise CliError("Cannot plot: no call returned a value.")
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib import pyplot, ticker

    figure, axes = pyplot.subplots(figsize=(8, 4.5))
    try:
        axes.plot([t for t, _ in points], [v for _, v in points], marker="o", markersize=3)
        axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axes.set_xlabel("tick")
        axes.set_ylabel(printable(expr, keep=""))
        axes.grid(True, alpha=0.3)
        figure.tight_layout()
        try:
            figure.savefig(path, format="png")
        except OSError as exc:
            raise CliError(
                f"Cannot write the plot to {printable(path, keep='')}: {exc.strerror}."
            ) from None
    finally:
        pyplot.close(figure)
