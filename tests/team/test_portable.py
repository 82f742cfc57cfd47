"""A recording answers from its own pages and its own ELF files, not from the files of
the machine that calls: examples/bank rebuilt with a change at the same path, deleted,
and its recording copied to a server and called with the program gone give the values
of the recording, with a one-line note."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import TOP, compile_c, run_ttd
from tests.team.calls import ttd_call
from tests.team.conftest import copy, record_bank

# examples/bank with a function before the others: every address after it moves
CHANGED = "static long pad(long x) { return x * 3 + 1; }\nlong use_pad(void) { return pad(2); }\n"


def build_id(path) -> str:
    notes = subprocess.run(
        ["readelf", "-n", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return notes.split("Build ID: ")[1].split()[0]


def check_values(db) -> list[str]:
    """balance_of(1) at tick 3 and total_cents() at tick 6, as recorded; the notes ttd
    call printed (stderr)."""
    done = run_ttd("call", str(db), "--at", "3", "--json", "balance_of(1)", timeout=180)
    first = json.loads(done.stdout)
    assert (first["status"], first["value"]) == ("returned", "9900"), first
    assert ttd_call(db, 6, "total_cents()")["value"] == "13200"
    return done.stderr.splitlines()


def test_rebuilt_deleted_and_called_from_a_server(tmp_path, pg, pg_database):
    source, binary, db = tmp_path / "bank.c", tmp_path / "bank", tmp_path / "bank.db"
    original = (TOP / "examples/bank.c").read_text()
    source.write_text(original)
    compile_c(source, binary)
    recorded_id = build_id(binary)
    record_bank(binary, db)
    assert check_values(db) == []  # the local file is the recorded one: no note

    source.write_text(
        original.replace("struct account *find_account", CHANGED + "struct account *find_account")
    )
    compile_c(source, binary)  # rebuilt at the same path
    rebuilt_id = build_id(binary)
    assert rebuilt_id != recorded_id
    notes = check_values(db)
    assert notes == [
        f"ttd: warning: {binary} has build-id {rebuilt_id}, the recording "
        f"{recorded_id}: symbols from the recorded copy."
    ]

    binary.unlink()
    gone = [f"ttd: warning: {binary} is missing: symbols from the recorded copy."]
    assert check_values(db) == gone

    url = pg.url(pg_database, "bank")
    copy(db, url)
    db.unlink()  # the program and its file recording gone: the server's copy answers
    assert check_values(url) == gone
