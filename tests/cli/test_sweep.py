"""`ttd sweep DB EXPR`: one GDB calls EXPR at each tick of tests/cli/target.c's recording
(counter 1, 2, 3 at ticks 1-3, 4 at the exit, tick 4); the table, --json (the objects
of `ttd call --json`), --csv, --changes, --plot, and the one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess

import pytest

from tests.cli.conftest import one_line_error
from tests.conftest import TTD, run_ttd

pytestmark = pytest.mark.timeout(600)

VALUES = ["100", "200", "300", "400"]  # value() at ticks 1-4


@pytest.fixture(scope="module")
def swept(target_db):
    """`ttd sweep DB value() --json` over every tick: (the run, its list)."""
    done = run_ttd("sweep", str(target_db[0]), "value()", "--json", timeout=400)
    assert done.returncode == 0, done.stderr
    return done, json.loads(done.stdout)


def test_json_is_one_call_object_per_tick(target_db, swept):
    _, objs = swept
    assert [(o["tick"], o["status"], o["value"]) for o in objs] == [
        (t, "returned", v) for t, v in zip([1, 2, 3, 4], VALUES, strict=True)
    ]
    call = run_ttd("call", str(target_db[0]), "--at", "2", "--json", "value()", timeout=300)
    assert call.returncode == 0, call.stderr
    alone = json.loads(call.stdout)
    assert list(objs[1]) == list(alone)  # the keys of ttd call --json, in its order
    for key in ("tick", "expr", "status", "value", "dirtied_pages", "error", "tracker"):
        assert objs[1][key] == alone[key], key


def test_table_csv_and_changes(target_db):
    db = str(target_db[0])
    text = run_ttd("sweep", db, "--ticks", "1-2", "value()", timeout=300)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["TICK", "VALUE", "PAGES", "CHANGED"]
    assert [line.split()[:2] for line in lines[1:3]] == [["1", "100"], ["2", "200"]]
    assert lines[3] == "Swept 2 ticks: 2 returned."
    assert "Sweeping" not in text.stderr  # not a terminal: no progress line
    done = run_ttd("sweep", db, "--ticks", "2,4", "--csv", "value()", timeout=300)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["tick", "status", "value", "pages_changed", "error"]
    assert [r[:3] for r in rows[1:]] == [["2", "returned", "200"], ["4", "returned", "400"]]
    done = run_ttd("sweep", db, "--changes", "--ticks", "1-3", "--json", "value() * 0", timeout=300)
    assert [o["tick"] for o in json.loads(done.stdout)] == [1]  # 0 at every tick


def test_a_call_that_does_not_return_is_a_row_and_exit_status_1(target_db):
    done = run_ttd(
        "sweep", str(target_db[0]), "--ticks", "3", "--timeout", "1", "spin()", timeout=300
    )
    assert done.returncode == 1, done.stderr
    row = done.stdout.splitlines()[1]
    assert row.startswith("3     timed out: ") and "spin" in row
    assert done.stdout.splitlines()[2] == "Swept 1 tick: 1 timed out."


def test_plot(target_db, swept, tmp_path):
    png = tmp_path / "value.png"
    done = run_ttd(
        "sweep", str(target_db[0]), "--ticks", "1-2", "--plot", str(png), "value()", timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert done.stderr == f"ttd: wrote the plot of value() to {png}\n"
    done = run_ttd(
        "sweep",
        str(target_db[0]),
        "--ticks",
        "1",
        "--plot",
        str(tmp_path / "p.png"),
        "&counter",
        timeout=300,
    )
    assert done.returncode == 2
    assert one_line_error(done).startswith("ttd: Cannot plot: the value at tick 1 is '(int *) 0x")
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ticks", "0"], "ttd: Invalid tick '0': ticks start at 1."),
        (["--ticks", "3-1"], "ttd: Invalid range '3-1': it starts after it ends."),
        (
            ["--ticks", "1,,2"],
            "ttd: Invalid ticks '1,,2': an empty item between commas; a SPEC is "
            "3, 3-40, 3-, 1,5,9 or all.",
        ),
        (["--ticks", "9"], "ttd: No tick 9: valid ticks are 1 to 4."),
        (
            ["--plot", "out.jpg"],
            "ttd: --plot out.jpg: the plot is a PNG file, its name must end in .png.",
        ),
        (
            ["--plot", "/nonexistent/dir/p.png"],
            "ttd: --plot /nonexistent/dir/p.png: no directory /nonexistent/dir.",
        ),
    ],
)
def test_bad_input_is_one_line_before_gdb(target_db, args, message):
    done = run_ttd("sweep", str(target_db[0]), *args, "value()", timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert one_line_error(done) == message


def test_json_and_csv_exclude_each_other(target_db):
    done = run_ttd("sweep", str(target_db[0]), "--json", "--csv", "value()", timeout=60)
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


@pytest.mark.parametrize(
    "verb",
    [
        ["sweep", "{db}", "--ticks", "1-2", "value()"],
        ["call", "{db}", "--at", "1", "touch_pages(30)"],
    ],
    ids=["sweep", "call"],
)
def test_head_ends_it_quietly(target_db, verb):
    """`ttd ... | head -1`: the first line, then ttd ends by SIGPIPE without a word."""
    argv = [str(TTD), *(a.format(db=target_db[0]) for a in verb)]
    ttd = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=ttd.stdout, capture_output=True, timeout=300)
    ttd.stdout.close()
    err = ttd.stderr.read()
    ttd.wait(timeout=60)
    assert head.stdout.decode().count("\n") == 1
    assert err == b""


def test_a_progress_line_on_a_terminal(target_db):
    """stderr a terminal: one line rewritten at each tick, cleared at the end; stdout as
    without it."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [str(TTD), "sweep", str(target_db[0]), "--ticks", "1-2", "value()"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=300,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert done.returncode == 0
    assert b"\rSweeping: tick 1 (1/2)\rSweeping: tick 2 (2/2)\r" in shown
    assert shown.endswith(b"\r")  # cleared: the table starts on a clean line
    assert done.stdout.splitlines()[1].split()[:2] == ["1", "100"]
