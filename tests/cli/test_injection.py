"""No input becomes a GDB command it was not meant to be (issue 8, item 2): a newline in
an expression, a recording's file name, a breakpoint location, the program's path or
its arguments never starts a new GDB command; `shell touch F` would create F in ttd's
working directory, so every test asserts F is not there."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.cli.conftest import one_line_error, timeline
from tests.conftest import TTD, run_ttd

pytestmark = pytest.mark.timeout(180)

INJECTED = "\nshell touch F\n"  # what each hostile input carries


def test_expression_with_a_newline_is_refused(target_db, tmp_path):
    db, _ = target_db
    done = run_ttd("call", str(db), "--at", "1", f"value(){INJECTED}", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert one_line_error(done) == (
        "ttd: EXPR holds the control character \\x0a at offset 7: GDB reads an expression "
        'as one line. In a string literal, write it as an escape ("\\n").'
    )
    assert not (tmp_path / "F").exists()


def test_expression_with_a_newline_gives_the_error_json(target_db, tmp_path):
    db, _ = target_db
    done = run_ttd(
        "call", str(db), "--at", "1", "--json", f"value(){INJECTED}", cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2
    obj = json.loads(done.stdout)
    assert (obj["status"], obj["expr"], obj["tick"]) == ("error", f"value(){INJECTED}", 1)
    assert obj["error"].startswith("EXPR holds the control character \\x0a at offset 7")
    assert not (tmp_path / "F").exists()


def hostile_copy(db, tmp_path) -> str:
    """The recording under a name that holds a GDB command between newlines."""
    name = f"x{INJECTED}y.db"
    shutil.copy(db, tmp_path / name)
    return name


def test_call_on_a_recording_whose_name_holds_a_command(target_db, tmp_path):
    name = hostile_copy(target_db[0], tmp_path)
    done = run_ttd("call", name, "--at", "2", "--json", "value()", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == "200"
    assert not (tmp_path / "F").exists()


def test_gdb_on_a_recording_whose_name_holds_a_command(target_db, tmp_path):
    name = hostile_copy(target_db[0], tmp_path)
    done = subprocess.run(
        [str(TTD), "gdb", name, "--at", "3"],
        input="print value()\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    shown = str(tmp_path / name).replace("\n", "\\x0a")  # escaped for the terminal
    assert f"Opened recording '{shown}'." in done.stdout, done.stdout + done.stderr
    assert "$1 = 300" in done.stdout
    assert not (tmp_path / "F").exists()


def test_record_into_a_file_whose_name_holds_a_command(target_db, tmp_path):
    _, binary = target_db
    name = f"out{INJECTED}.db"
    done = run_ttd(
        "record",
        "-o",
        name,
        "--break",
        "checkpoint",
        "--hits",
        "1",
        "--",
        str(binary),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == [name]  # that file and nothing else
    assert [e["reason"] for e in timeline(name, cwd=tmp_path)] == ["breakpoint", "exit"]


def test_breakpoint_location_that_holds_a_command(target_db, tmp_path):
    _, binary = target_db
    done = run_ttd(
        "record",
        "-o",
        "x.db",
        "--break",
        f"main{INJECTED}",
        "--",
        str(binary),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    assert one_line_error(done) == (
        "ttd: Breakpoint location 'main\\x0ashell touch F\\x0a' does not resolve: "
        'Function "main\\x0ashell touch F" not defined.'
    )
    assert list(tmp_path.iterdir()) == []


def test_breakpoint_location_that_starts_like_an_option(target_db, tmp_path):
    _, binary = target_db
    done = run_ttd(
        "record", "-o", "x.db", "--break=-t", "--", str(binary), cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2
    assert one_line_error(done) == (
        "ttd: Breakpoint location '-t' does not resolve: Function \"-t\" not defined."
    )


def test_program_whose_path_holds_a_command(target_db, tmp_path):
    _, binary = target_db
    program = tmp_path / f"prog{INJECTED}x"
    shutil.copy(binary, program)
    done = run_ttd("record", "-o", "p.db", "--", str(program), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "target done\n"
    assert not (tmp_path / "F").exists()


def test_program_arguments_that_hold_commands(tmp_path):
    args = [f"a{INJECTED}", "'quoted'", "$HOME", "back\\slash", "semi;colon", ""]
    done = run_ttd("record", "-o", "a.db", "--", "printf", "[%s]", *args, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "".join(f"[{a}]" for a in args)
    assert not (tmp_path / "F").exists()


def test_call_on_a_recording_of_a_program_whose_path_holds_a_command(target_db, tmp_path):
    """The recording keeps the executable's path; the plugin gives it to GDB's `file`.
    A bystander file at the path's first line would let `file` succeed and the next line
    run: ttd call refuses such a recording before GDB sees it."""
    _record_injected_path(target_db[1], tmp_path)
    done = run_ttd("call", "p.db", "--at", "1", "value()", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert one_line_error(done) == (
        f"ttd: The recording's executable path '{tmp_path}/prog\\x0ashell touch F\\x0ax' "
        "holds the control character \\x0a: refused (GDB would run what follows a line "
        "break as a command)."
    )
    assert not (tmp_path / "F").exists()


def test_call_at_time_on_a_recording_whose_executable_path_holds_a_command(target_db, tmp_path):
    """In GDB, call-at-time and ttd goto load the recorded executable's symbols with
    `file PATH`: a path holding a line break is never given to GDB, the rest of the
    call goes on (memory is the recorded one) and says why the symbols are missing."""
    from tests.e2e.harness import gdb_with_recording

    _record_injected_path(target_db[1], tmp_path)
    with gdb_with_recording(tmp_path / "p.db") as gdb:
        text = gdb.cli("call-at-time --json 1 (long)$rsp", timeout_s=120)
        assert "holds control characters: its symbols are not loaded." in text
        assert '"status": "returned"' in text
    assert not (tmp_path / "F").exists()
    assert not (tmp_path.parent / "F").exists()


def _record_injected_path(binary, tmp_path) -> None:
    """tmp_path/p.db: a recording of `binary` copied to a path holding a line break and a
    command (and to the path before the line break, which a split path would name)."""
    program = tmp_path / f"prog{INJECTED}x"
    shutil.copy(binary, program)
    shutil.copy(binary, tmp_path / "prog")
    done = run_ttd(
        "record",
        "-o",
        "p.db",
        "--break",
        "checkpoint",
        "--hits",
        "1",
        "--",
        str(program),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
