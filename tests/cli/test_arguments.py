"""Bad arguments get argparse's error or one line that says what is wrong (issue 8,
item 13): timeouts that are not a finite number above 0, a symlink loop, a read-only
directory; `ttd call --help` states the exit status; `ttd --help` loads nothing heavy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.cli.conftest import one_line_error, read_only_dir, symlink_loop
from tests.conftest import TOP, run_ttd

pytestmark = pytest.mark.timeout(180)

BAD_TIMEOUTS = [
    ("nan", "must be a finite number of seconds above 0, not 'nan'"),
    ("inf", "must be a finite number of seconds above 0, not 'inf'"),
    ("0", "must be a finite number of seconds above 0, not '0'"),
    ("-1", "must be a finite number of seconds above 0, not '-1'"),
    ("soon", "'soon' is not a number of seconds"),
]


@pytest.mark.parametrize("value, why", BAD_TIMEOUTS, ids=[v for v, _ in BAD_TIMEOUTS])
def test_call_timeout_must_be_a_finite_number_above_zero(tmp_path, value, why):
    done = run_ttd(
        "call", str(tmp_path / "x.db"), "--at", "1", f"--timeout={value}", "f()", timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"ttd call: error: argument --timeout: {why}"


@pytest.mark.parametrize("value, why", BAD_TIMEOUTS, ids=[v for v, _ in BAD_TIMEOUTS])
def test_record_timeout_must_be_a_finite_number_above_zero(tmp_path, value, why):
    done = run_ttd(
        "record", "-o", str(tmp_path / "x.db"), f"--timeout={value}", "--", "true", timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"ttd record: error: argument --timeout: {why}"
    assert list(tmp_path.iterdir()) == []


def test_call_help_states_the_exit_status():
    done = run_ttd("call", "--help", timeout=60)
    assert done.returncode == 0
    assert done.stdout.endswith(
        "exit status:\n"
        "  0  the call returned\n"
        "  1  the call did not return: it was signalled, it exited, or it timed out\n"
        "  2  an error before or around the call (bad input, no such recording, GDB failed)\n"
        "With --json the JSON object is printed in all three cases.\n"
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["timeline", "{loop}"], "No recording at '{loop}': it is a symlink loop."),
        (["call", "{loop}", "--at", "1", "f()"], "No recording at '{loop}': it is a symlink loop."),
        (["gdb", "{loop}"], "No recording at '{loop}': it is a symlink loop."),
        (
            ["import-core", "{tmp}/x.db", "{loop}"],
            "No core file at '{loop}': it is a symlink loop.",
        ),
        (["record", "-o", "{tmp}/x.db", "--", "{loop}"], "Program '{loop}': it is a symlink loop."),
    ],
    ids=["timeline", "call", "gdb", "import-core", "record"],
)
def test_a_symlink_loop_is_named_as_one(tmp_path, args, message):
    loop = symlink_loop(tmp_path)
    done = run_ttd(*(a.format(loop=loop, tmp=tmp_path) for a in args), timeout=60)
    assert done.returncode == 2
    assert one_line_error(done) == "ttd: " + message.format(loop=loop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop"]


def test_record_into_a_read_only_directory(target_db, tmp_path):
    _, binary = target_db
    with read_only_dir(tmp_path / "ro") as ro:
        done = run_ttd("record", "-o", str(ro / "x.db"), "--", str(binary), timeout=120)
    assert done.returncode == 2
    assert one_line_error(done) == (
        f"ttd: Cannot create '{ro}/x.db': the directory '{ro}' "
        "does not take new files (Read-only file system)."
    )


def test_help_loads_nothing_heavy():
    """`ttd --help` builds the parser only: no SQLAlchemy, pygdbmi, pyelftools, zstd."""
    code = (
        "import sys; from ttd_cli import main; main.build_parser().format_help(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'pygdbmi', 'elftools', 'zstandard', 'snapshotdb', 'gdb_plugin'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=TOP, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_a_recording_at_a_path_with_uri_characters(target_db, tmp_path):
    """'?', '#' and '%' in a recording's path are the file's name, not parts of an SQLite
    URI: unquoted, 'a?b.db' was opened (and created, empty) as 'a'."""
    db, _ = target_db
    odd = tmp_path / "rec?mode=rw#x%41.db"
    shutil.copy(db, odd)
    timeline = run_ttd("timeline", str(odd), "--json", timeout=60)
    assert timeline.returncode == 0, timeline.stderr
    assert [e["tick"] for e in json.loads(timeline.stdout)] == [1, 2, 3, 4]
    called = run_ttd("call", str(odd), "--at", "2", "value()", timeout=120)
    assert called.returncode == 0, called.stderr
    assert called.stdout.splitlines()[0] == "value() = 200"
    assert sorted(p.name for p in tmp_path.iterdir()) == [odd.name]
