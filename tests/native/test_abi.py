"""One contract between Python and C: gdb_plugin/remat/spec.py against what the page
server is built from (`ttd-pageserver --abi`, native/pageserver/abi.c)."""

from __future__ import annotations

import json
import subprocess

import pytest

from gdb_plugin.remat import spec

pytestmark = pytest.mark.timeout(60)


def native_abi(native_build, program: str = "ttd-pageserver") -> dict:
    out = subprocess.run(
        [str(native_build / program), "--abi"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return json.loads(out)


@pytest.mark.parametrize("program", ["ttd-pageserver", "ttd-pageserver-bench"])
def test_spec_py_is_what_the_page_server_is_built_from(native_build, program):
    c_side = native_abi(native_build, program)
    assert c_side == spec.abi(), "native/ and gdb_plugin/remat/spec.py disagree"


def test_the_abi_says_enough_to_catch_a_change(native_build):
    """The comparison above is only as good as what --abi prints: every field of both
    structs with its offset and size, every flag, mode, mm field and request."""
    c_side = native_abi(native_build)
    head = {f["name"]: (f["offset"], f["size"]) for f in c_side["spec_head"]["fields"]}
    assert head["magic"] == (0, 8) and head["tick"] == (8, 8)
    assert head["mm"][1] == 8 * len(c_side["mm_fields"]) == 88
    thread = {f["name"]: (f["offset"], f["size"]) for f in c_side["spec_thread"]["fields"]}
    assert thread["gpregs"][1] == 216 and thread["fpregs"][1] == 512 and thread["name"][1] == 16
    assert (
        c_side["spec_thread"]["size"] == spec.SPEC_THREAD.size == sum(s for _, s in thread.values())
    )
    assert c_side["spec_head"]["size"] == spec.SPEC_HEAD.size == sum(s for _, s in head.values())
    assert c_side["stub_map"]["size"] == spec.STUB_MAP.size == 24
    assert c_side["mm_fields"][:2] == ["start_code", "end_code"]
    assert set(c_side["flags"]) == {"SPEC_SANDBOX", "SPEC_TRACKER_DIFF", "SPEC_TRACKER_WP_ASYNC"}
    assert c_side["modes"]["lazy"] == 0 and "KILL" in c_side["requests"]
    assert {"THREADS", "MOVE", "MOVED"} <= set(c_side["requests"])


def test_packing_follows_the_layout():
    head = spec.pack_head(
        tick=7,
        nr_maps=1,
        auxv_size=16,
        nr_threads=3,
        db_path_size=5,
        mode=spec.MODES["lazy"],
        fault_around_pages=16,
        flags=spec.FLAGS["SPEC_SANDBOX"],
        mem_margin=1 << 30,
        mm=range(1, 12),
    )
    offsets = {f["name"]: f["offset"] for f in spec.abi()["spec_head"]["fields"]}
    assert head[:8] == spec.SPEC_MAGIC and len(head) == spec.SPEC_HEAD.size
    assert int.from_bytes(head[offsets["tick"] : offsets["tick"] + 8], "little") == 7
    assert int.from_bytes(head[offsets["nr_threads"] : offsets["nr_threads"] + 4], "little") == 3
    margin = offsets["mem_margin"]
    assert int.from_bytes(head[margin : margin + 8], "little") == 1 << 30
    assert int.from_bytes(head[offsets["mm"] + 80 : offsets["mm"] + 88], "little") == 11
    assert spec.pack_map(0x1000, 0x3000, 3) == (0x1000).to_bytes(8, "little") + (0x3000).to_bytes(
        8, "little"
    ) + (3).to_bytes(4, "little") + (1).to_bytes(4, "little")


def test_a_thread_packs_its_name_cut_and_its_xstate_after_it():
    packed = spec.pack_thread(
        4242, "a-very-long-thread-name", bytes(range(216)), bytes(512), b"x" * 10
    )
    offsets = {f["name"]: f["offset"] for f in spec.abi()["spec_thread"]["fields"]}
    assert len(packed) == spec.SPEC_THREAD.size + 10 and packed.endswith(b"x" * 10)
    assert int.from_bytes(packed[:4], "little") == 4242
    assert (
        int.from_bytes(packed[offsets["xstate_size"] : offsets["xstate_size"] + 4], "little") == 10
    )
    assert packed[offsets["name"] : offsets["name"] + 16] == b"a-very-long-thr\0"
