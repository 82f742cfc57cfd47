"""ttd copy SRC DST and ttd list URL: both directions, a progress line on a terminal, an
interrupted copy never listed complete nor opened, and the same command resuming it."""

from __future__ import annotations

import json
import os
import select
import sqlite3
import subprocess

import pytest

from tests.conftest import TTD, run_ttd
from tests.record.memory import digest_table_problems
from tests.team.calls import comparable, ttd_call
from tests.team.conftest import copy, schema


def listed(url: str) -> dict[str, dict]:
    done = run_ttd("list", url, "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    return {r["name"]: r for r in json.loads(done.stdout)}


def test_copied_back_to_a_file_calls_the_same(bank_pg, tmp_path):
    back = tmp_path / "back.db"
    summary = copy(bank_pg, back)
    assert summary.startswith(f"Copied '{bank_pg}' to '{back}': 6 snapshots")
    for tick in (1, 4, 6):
        on_server = comparable(ttd_call(bank_pg, tick, "transfer(1, 2, 7)"))
        assert on_server["status"] == "returned"
        assert comparable(ttd_call(back, tick, "transfer(1, 2, 7)")) == on_server
    assert list(listed(str(back)).values())[0]["state"] == "complete"
    assert digest_table_problems(back) == []  # the file's writers find its contents


def test_list_names_the_recordings_of_a_database(pg, bank_pg, bank_pg_copy):
    rows = listed(pg.url("bank"))
    for name in ("recorded", "copied"):
        assert rows[name]["state"] == "complete"
        assert rows[name]["snapshots"] == 6 and rows[name]["ticks"] == [1, 6]
        assert rows[name]["program"].endswith("bank")


CONTENT_KEY = "fk_page_version_content_id_page_content"


def content_keys(pg, database: str, name: str) -> int:
    """How many foreign keys named CONTENT_KEY the recording's page_version has."""
    where = f"'{schema(pg, database, name)}.page_version'::regclass"
    statement = f"SELECT count(*) FROM pg_constraint WHERE conrelid = {where} AND conname = %s"
    return pg.sql(statement, database, (CONTENT_KEY,))[0][0]


def versions_in_file(db) -> set[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT v.address, v.first_tick, c.digest FROM page_version v "
            "LEFT JOIN page_content c ON c.id = v.content_id"
        )
        return {(a, t, None if d is None else bytes(d)) for a, t, d in rows}


def versions_on_server(pg, database: str, name: str) -> set[tuple]:
    rows = pg.sql(
        "SELECT v.address, v.first_tick, c.digest "
        f"FROM {schema(pg, database, name)}.page_version v "
        "LEFT JOIN ttd.page_content c ON c.id = v.content_id",
        database,
    )
    return {(a, t, None if d is None else bytes(d)) for a, t, d in rows}


@pytest.mark.parametrize("streams", ["1", "3"])
def test_every_page_version_names_its_own_content(pg, pg_database, bank_sqlite, streams):
    """Many small batches sent on several connections at once: each version still names
    the content it had in the file, and the foreign key to the contents is there."""
    url = pg.url(pg_database, "many")
    env = dict(os.environ, TTD_COPY_BATCH_ROWS="8", TTD_COPY_STREAMS=streams)
    done = run_ttd("copy", str(bank_sqlite), url, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    expected = versions_in_file(bank_sqlite)
    assert len(expected) > 100 and any(d is not None for _, _, d in expected)
    assert versions_on_server(pg, pg_database, "many") == expected
    assert content_keys(pg, pg_database, "many") == 1


def test_two_copies_of_one_recording_at_once(pg, pg_database, bank_sqlite):
    """Two copies of the same pages into one database at once, in small batches on three
    connections each: they meet on the same digests (unique), both complete, and every
    content is stored once."""
    env = dict(os.environ, TTD_COPY_BATCH_ROWS="8", TTD_COPY_STREAMS="3")
    argv = [str(TTD), "copy", str(bank_sqlite)]
    names = ("left", "right")
    copies = [
        subprocess.Popen(
            [*argv, pg.url(pg_database, n)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in names
    ]
    for one in copies:
        _, err = one.communicate(timeout=300)
        assert one.returncode == 0, err
    for name in names:
        assert versions_on_server(pg, pg_database, name) == versions_in_file(bank_sqlite)
    contents = pg.sql("SELECT count(*), count(DISTINCT digest) FROM ttd.page_content", pg_database)
    used = {d for _, _, d in versions_in_file(bank_sqlite) if d is not None}
    assert contents == [(len(used), len(used))]


def test_an_interrupted_copy_is_resumed(pg, pg_database, bank_sqlite):
    url = pg.url(pg_database, "half")
    env = dict(os.environ, TTD_COPY_BATCH_ROWS="16", TTD_COPY_KILL_AFTER_BATCHES="3")
    killed = run_ttd("copy", str(bank_sqlite), url, env=env, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert listed(pg.url(pg_database))["half"]["state"] == "copying"
    assert content_keys(pg, pg_database, "half") == 0  # added by the last transaction
    refused = run_ttd("call", url, "--at", "3", "balance_of(1)", timeout=120)
    assert refused.returncode != 0
    assert "is incomplete: a copy into it was interrupted" in refused.stderr
    summary = copy(bank_sqlite, url)
    assert "(resumed)" in summary
    there = int(summary.split(" sent, ")[1].split(" there already")[0])
    assert there >= 3 * 16  # the batches committed before the kill were not sent again
    assert listed(pg.url(pg_database))["half"]["state"] == "complete"
    assert content_keys(pg, pg_database, "half") == 1
    assert ttd_call(url, 3, "balance_of(1)")["value"] == "9900"


def test_an_interrupted_copy_into_a_file_is_resumed(bank_pg, tmp_path):
    dst = tmp_path / "half.db"
    env = dict(os.environ, TTD_COPY_BATCH_ROWS="16", TTD_COPY_KILL_AFTER_BATCHES="2")
    assert run_ttd("copy", bank_pg, str(dst), env=env, timeout=300).returncode == -9
    refused = run_ttd("call", str(dst), "--at", "3", "balance_of(1)", timeout=120)
    assert refused.returncode != 0 and "incomplete" in refused.stderr
    assert "(resumed)" in copy(bank_pg, dst)
    assert ttd_call(dst, 3, "balance_of(1)")["value"] == "9900"


def test_a_progress_line_on_a_terminal(pg, pg_database, bank_sqlite):
    leader, follower = os.openpty()
    try:
        done = subprocess.run(
            [str(TTD), "copy", str(bank_sqlite), pg.url(pg_database, "shown")],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=300,
        )
        assert done.returncode == 0
        shown = b""
        while select.select([leader], [], [], 0)[0]:
            shown += os.read(leader, 65536)
    finally:
        os.close(leader)
        os.close(follower)
    assert b"ttd copy: " in shown and b"MiB/s" in shown and b"(100%)" in shown
