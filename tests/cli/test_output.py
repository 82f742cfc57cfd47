"""What `ttd call` prints: text that came from the call escaped for the terminal (issue 8,
item 11), JSON as JSON; a short text report (the summary line, the changed pages, at most
20 rows); the JSON in all three exit statuses; a reader that went away ends ttd quietly."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

from tests.cli.conftest import one_line_error
from tests.conftest import TTD, run_ttd
from ttd_cli.call import MAX_ROWS, page_lines

pytestmark = pytest.mark.timeout(180)


def call(db, *args) -> subprocess.CompletedProcess:
    return run_ttd("call", str(db), *args, timeout=120)


def test_terminal_escapes_are_shown_escaped(target_db):
    db, _ = target_db
    done = call(db, "--at", "1", "shout()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["shout() = 7", "\\x1b]52;c;ZXZpbA==\\x07\\x1b[2Jout"]
    assert done.stderr == "\\x1b[31merr\\x0d\n"
    assert "\x1b" not in done.stdout + done.stderr and "\r" not in done.stderr


def test_json_keeps_the_bytes(target_db):
    db, _ = target_db
    done = call(db, "--at", "1", "--json", "shout()")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert (obj["stdout"], obj["stderr"]) == (
        "\x1b]52;c;ZXZpbA==\x07\x1b[2Jout\n",
        "\x1b[31merr\r\n",
    )
    assert "\x1b" not in done.stdout  # JSON escapes it


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("  0x")]


def test_text_lists_at_most_twenty_changed_pages(target_db):
    db, _ = target_db
    obj = json.loads(call(db, "--at", "2", "--json", "touch_pages(30)").stdout)
    changed = [p for p in obj["dirtied_pages"] if p["changed"]]
    assert len(changed) > MAX_ROWS + 5  # 30 pages of .bss, and the stack
    done = call(db, "--at", "2", "touch_pages(30)")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "touch_pages(30) = 30"
    assert lines[1].startswith(
        f"The call wrote {len(obj['dirtied_pages'])} pages: {len(changed)} changed (data "
    )
    assert len(rows(done.stdout)) == MAX_ROWS
    assert lines[2 + MAX_ROWS] == (
        f"  {len(changed) - MAX_ROWS} more: use --json or info dirtied-pages --all"
    )
    assert all(row.split()[0] in {p["address"] for p in changed} for row in rows(done.stdout))


def test_text_leaves_out_pages_written_back_unchanged(target_db):
    db, _ = target_db
    obj = json.loads(call(db, "--at", "3", "--json", "write_back()").stdout)
    unchanged = {p["address"] for p in obj["dirtied_pages"] if not p["changed"]}
    assert any(p["kind"] == "data" for p in obj["dirtied_pages"] if not p["changed"])
    done = call(db, "--at", "3", "write_back()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].endswith(f", {len(unchanged)} left unchanged.")
    assert not any(row.split()[0] in unchanged for row in rows(done.stdout))


@pytest.mark.parametrize(
    "pages, lines",
    [
        ([], ["The call wrote no pages."]),
        (
            [
                {
                    "address": "0x1000",
                    "mapping": "[heap]",
                    "kind": "heap",
                    "changed": False,
                    "changed_ranges": [],
                    "symbol": None,
                }
            ],
            ["The call wrote 1 page: 0 changed, 1 left unchanged."],
        ),
    ],
    ids=["no-pages", "one-unchanged"],
)
def test_summary_without_rows_has_no_dangling_colon(pages, lines):
    assert page_lines(pages) == lines


def test_exit_status_returned_with_json(target_db):
    done = call(target_db[0], "--at", "1", "--json", "value()")
    assert (done.returncode, json.loads(done.stdout)["status"]) == (0, "returned")


def test_exit_status_not_returned_with_json(target_db):
    done = call(target_db[0], "--at", "1", "--timeout", "0.5", "--json", "spin()")
    assert (done.returncode, json.loads(done.stdout)["status"]) == (1, "timeout")


def test_exit_status_error_with_json(target_db):
    done = call(target_db[0], "--at", "99", "--json", "value()")
    assert done.returncode == 2
    obj = json.loads(done.stdout)
    assert (obj["status"], obj["error"]) == ("error", "No tick 99: valid ticks are 1 to 4.")
    assert one_line_error(done) == "ttd: No tick 99: valid ticks are 1 to 4."


def closed_pipe() -> int:
    """A pipe's write end whose read end is closed: the first write gets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


@pytest.mark.parametrize(
    "args",
    [["timeline", "{db}"], ["call", "{db}", "--at", "1", "value()"], ["--help"]],
    ids=["timeline", "call", "help"],
)
def test_a_reader_gone_ends_ttd_by_sigpipe_quietly(target_db, args):
    stdout = closed_pipe()
    try:
        done = subprocess.run(
            [str(TTD), *(a.format(db=target_db[0]) for a in args)],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(stdout)
    assert (done.returncode, done.stderr) == (-signal.SIGPIPE, "")
