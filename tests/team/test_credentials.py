"""A password given in the URL (or in its query) is used and never shown: not by ttd
record, copy, list, call, nor in GDB, nor in an error, nor stored in a recording."""

from __future__ import annotations

import json

from tests.conftest import run_ttd
from tests.e2e.harness import call, gdb_with_recording
from tests.team.conftest import record_bank
from tests.team.pg_cluster import PASSWORD, PASSWORD_ROLE


def shown(done) -> str:
    return done.stdout + done.stderr


def rows_text(pg, database: str) -> str:
    """Every row of every table of the database's ttd schemas, as text."""
    tables = pg.sql(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema LIKE 'ttd%'",
        database,
    )
    return "\n".join(str(pg.sql(f"SELECT t::text FROM {name} t", database)) for (name,) in tables)


def test_a_password_is_used_and_never_shown(pg, pg_database, bank_binary, tmp_path):
    db = pg_database
    url = pg.url(db, "bank", user=PASSWORD_ROLE, password=PASSWORD)
    in_query = (
        f"postgresql:///{db}?host={pg.dir}&user={PASSWORD_ROLE}&password={PASSWORD}&recording=bank"
    )
    record_bank(bank_binary, url)
    outputs = [
        run_ttd("list", pg.url(db, user=PASSWORD_ROLE, password=PASSWORD), timeout=60),
        run_ttd("list", pg.url(db, user=PASSWORD_ROLE, password=PASSWORD), "--json", timeout=60),
        run_ttd(
            "record", "-o", url, "--break", "transfer", "--", str(bank_binary), timeout=180
        ),  # refused: the name exists
        run_ttd("copy", url, str(tmp_path / "back.db"), timeout=300),
        run_ttd("copy", str(tmp_path / "back.db"), url.replace("=bank", "=again"), timeout=300),
        run_ttd("call", in_query, "--at", "3", "--json", "balance_of(1)", timeout=180),
        run_ttd("call", url, "--at", "3", "balance_of(1)", timeout=180),
        run_ttd("call", url.replace("=bank", "=nope"), "--at", "3", "balance_of(1)", timeout=180),
        run_ttd("call", url.replace(PASSWORD, "wrong-" + PASSWORD), "--at", "3", "x", timeout=180),
        run_ttd(
            "call", in_query.replace(str(pg.dir), str(tmp_path)), "--at", "3", "x", timeout=180
        ),  # no server there
    ]
    assert "bank" in outputs[0].stdout and json.loads(outputs[1].stdout)
    assert outputs[2].returncode != 0 and "exists" in outputs[2].stderr
    assert [o.returncode for o in outputs[3:5]] == [0, 0]
    assert json.loads(outputs[5].stdout)["value"] == "9900"
    assert "9900" in outputs[6].stdout
    assert "No recording 'nope'" in outputs[7].stderr
    assert "password authentication failed" in outputs[8].stderr
    assert "cannot be reached" in outputs[9].stderr
    for done in outputs:
        assert PASSWORD not in shown(done), shown(done)
    with gdb_with_recording(in_query) as gdb:
        gdb_text = (
            gdb.cli("ttd timeline")
            + json.dumps(call(gdb, 3, "balance_of(1)"))
            + gdb.cli("ttd close")
            + gdb.cli(f"ttd open {in_query}")
        )
    assert "ttd_pw:***@" in gdb_text or "password=***" in gdb_text
    assert PASSWORD not in gdb_text
    assert PASSWORD not in rows_text(pg, db)  # nothing stored
    assert PASSWORD.encode() not in (tmp_path / "back.db").read_bytes()
