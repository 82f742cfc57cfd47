"""Every command that takes a recording takes a server URL: ttd timeline, ttd gdb,
ttd import-core (ttd record, call and copy: the other modules)."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.conftest import TTD, run_ttd
from tests.record.test_import_core import dump_core
from tests.team.calls import ttd_call


def test_timeline_of_a_server_recording(bank_pg, bank_sqlite):
    on_server = run_ttd("timeline", bank_pg, "--json", timeout=60)
    on_file = run_ttd("timeline", str(bank_sqlite), "--json", timeout=60)
    assert on_server.returncode == 0, on_server.stderr
    ticks = [s["tick"] for s in json.loads(on_server.stdout)]
    assert ticks == [s["tick"] for s in json.loads(on_file.stdout)] == list(range(1, 7))


def test_ttd_gdb_opens_a_server_recording(bank_pg):
    done = subprocess.run(
        [str(TTD), "gdb", bank_pg],
        input="call-at-time 3 balance_of(1)\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"Opened recording '{bank_pg}'." in done.stdout
    assert "$1 = 9900" in done.stdout, done.stdout


def test_a_core_imported_into_a_server(pg, pg_database, build_target, tmp_path):
    crash = build_target("tests/record/crash.c")
    shutil.copy(crash, tmp_path / "crash")
    proc, core = dump_core(["./crash", "first-arg"], tmp_path)
    assert proc.returncode == -11
    url = pg.url(pg_database, "core")
    done = run_ttd("import-core", url, str(core), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Imported '{core}' as tick 1: ")
    result = ttd_call(url, 1, "steps")
    assert result["status"] == "returned" and result["value"].isdigit(), result
