"""The diff tracker (for kernels without WP_ASYNC), forced here where the default one
works: the same calls at the same ticks give the same values and the same pages whose
bytes changed; its report says what it cannot see."""

from __future__ import annotations

import json

import pytest

from gdb_plugin.report import DIFF_TRACKER_NOTE
from tests.e2e.harness import call

pytestmark = pytest.mark.timeout(180)

CALLS = [
    "list_length()",
    "push(7)",
    "bump_all(1)",
    "make_pair(5)",
    "average()",
    "bump_tls(1)",
    "say(4) + fflush(0)",
    "depth(300)",
    "bump_int(&step)",
    "(long)list_sum() * 2 + $rdi",
]
TICKS = [1, 2, 3]


def _call(gdb, tick: int, expr: str, tracker: str) -> dict:
    return call(gdb, tick, expr, f"--tracker {tracker}")


def _changed(obj: dict) -> list[tuple[str, list | None]]:
    """Pages whose bytes changed, with the ranges; not the ranges of stack-scratch pages,
    whose old bytes are dead garbage that printf's frames may leave equal or not."""
    return [
        (p["address"], None if p["kind"] == "stack-scratch" else p["changed_ranges"])
        for p in obj["dirtied_pages"]
        if p["changed"]
    ]


@pytest.fixture(scope="module")
def both_trackers(targets_db):
    """{(tick, expr): (wp-async result, diff result)}, each tracker's calls in a row at a
    tick (the process is kept between them)."""
    from tests.e2e.harness import gdb_with_recording

    results: dict = {}
    with gdb_with_recording(targets_db[0]) as gdb:
        for tick in TICKS:
            for tracker in ("wp-async", "diff"):
                for expr in CALLS:
                    results.setdefault((tick, expr), []).append(_call(gdb, tick, expr, tracker))
    return results


@pytest.mark.parametrize(
    "tick, expr",
    [(t, e) for t in TICKS for e in CALLS],
    ids=[f"tick{t}-{e}" for t in TICKS for e in CALLS],
)
def test_diff_tracker_matches_the_default(both_trackers, tick, expr):
    default, diff = both_trackers[(tick, expr)]
    assert (default["status"], diff["status"]) == ("returned", "returned")
    assert (default["tracker"], diff["tracker"]) == ("wp-async", "diff")
    assert diff["value"] == default["value"]
    assert (diff["stdout"], diff["stderr"]) == (default["stdout"], default["stderr"])
    assert _changed(diff) == _changed(default)
    assert (default["notes"], diff["notes"]) == ([], [DIFF_TRACKER_NOTE])


def test_tracker_setting_and_text_note(plugin_gdb):
    gdb = plugin_gdb
    assert gdb.cli("show ttd tracker").strip().splitlines()[-1] == "The ttd tracker is auto."
    gdb.cli("set ttd tracker diff")
    try:
        assert gdb.cli("show ttd tracker").strip().splitlines()[-1] == "The ttd tracker is diff."
        lines = gdb.cli("call-at-time 2 bump_all(1)").splitlines()
    finally:
        gdb.cli("set ttd tracker auto")
    assert lines[-1] == DIFF_TRACKER_NOTE  # after the summary and the changed pages
    summary = [i for i, line in enumerate(lines) if line.startswith("The call wrote ")]
    assert len(summary) == 1 and lines[summary[0] + 1].split()[:2] == ["Address", "Kind"]
    obj = call(gdb, 2, "bump_all(1)")  # auto on this kernel: wp-async
    assert (obj["tracker"], obj["notes"]) == ("wp-async", [])


def test_bad_tracker_is_refused(plugin_gdb):
    from ttd_cli.mi import GdbFailed

    with pytest.raises(GdbFailed) as info:
        plugin_gdb.cli("call-at-time --tracker soft-dirty 1 list_length()")
    assert str(info.value) == (
        "Invalid tracker 'soft-dirty': the trackers are auto, wp-async, diff."
    )
    with pytest.raises(GdbFailed) as info:
        plugin_gdb.cli("set ttd tracker soft-dirty")
    assert str(info.value).startswith('Undefined item: "soft-dirty".')


def test_cli_tracker_option(targets_db):
    from tests.conftest import run_ttd

    done = run_ttd(
        "call", str(targets_db[0]), "--at", "2", "--tracker", "diff", "bump_all(1)", timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == DIFF_TRACKER_NOTE


def test_auto_falls_back_with_a_notice(targets_db, monkeypatch):
    """A kernel without PAGEMAP_SCAN (the page server's testing knob): auto takes the diff
    tracker and says so once, in one line; the answers stay right."""
    from tests.conftest import run_ttd
    from tests.e2e.harness import gdb_with_recording

    monkeypatch.setenv("TTD_NO_PAGEMAP_SCAN", "1")
    with gdb_with_recording(targets_db[0]) as gdb:
        first = gdb.cli("call-at-time 2 bump_all(1)").splitlines()
        again = gdb.cli("call-at-time 2 bump_all(1)").splitlines()
    notices = [line for line in first if "diff tracker" in line]
    assert len(notices) == 1
    assert notices[0].startswith("warning: this kernel lacks the PAGEMAP_SCAN ioctl")
    assert first[-1] == again[-1] == DIFF_TRACKER_NOTE
    assert not any("this kernel lacks" in line for line in again)  # once per process
    done = run_ttd("call", str(targets_db[0]), "--at", "2", "--json", "bump_all(1)", timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("ttd: warning: this kernel lacks the PAGEMAP_SCAN ioctl")
    obj = json.loads(done.stdout)
    assert (obj["tracker"], obj["notes"]) == ("diff", [DIFF_TRACKER_NOTE])
