"""Benchmark: a recording on a PostgreSQL server beside the same recording in a SQLite file.

    .venv/bin/python bench/team.py [--size-mib 1024] [--first 3] [--probe-pages 20]

A throwaway cluster (tests/team/pg_cluster.py: Unix socket) holds the recordings, with
the server's default settings (fsync on, as a user's server has it; the tests' cluster
turns durability off for speed). The target (bench/targets/team_heap.c) fills a heap of SIZE MiB
with random bytes and stops at ready(); `ttd record --break ready` records it into a
SQLite file and straight into PostgreSQL (record_s_*); `ttd copy` copies the file into
an empty database on the server (copy_s_1gib, MiB/s; copy_s_1gib_one_stream: the same
on one connection, TTD_COPY_STREAMS=1, just before), and again beside the recording of
the same pages (what is there already is not sent). Then `ttd call --json 'probe(K)'`
(K heap pages spread over the heap, each in a fault-around window of its own) in fresh
processes:

    first_call_ms_*     nothing cached: the page cache (TTD_PAGE_CACHE) is a new
                        directory for each call; median of --first calls; the sum of
                        the call's own timings (rematerialize, attach, symbols, call,
                        report), GDB's start not counted; *_wall_ms: the whole command
    repeat_call_ms_*    the same call again with the cache of the call before: SQLite's
                        verified-page cache serves it; on a server the pages are fetched
                        again (no cache there): what a local cache of fetched pages
                        would save per call is repeat_call_ms_pg - repeat_call_ms_sqlite
    fetched_bytes_pg    what left the server for the page server during one call,
                        counted by a proxy on the socket (tagged by application_name);
                        fetched_bytes_pg_all adds the GDB side's reads (layout, files)

Goals (issue 13): first_call_ms_pg <= 1.5 x first_call_ms_sqlite; fetched_bytes_pg <=
2 MiB for a call touching fewer than 50 pages; copy >= 100 MiB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from tests.team.pg_cluster import SERVER_DEFAULTS, running_cluster  # noqa: E402

TTD = TOP / ".venv" / "bin" / "ttd"
MIB = 1 << 20
TIMING_PARTS = ("rematerialize", "attach", "symbols", "call", "report")


def ttd(*args: str, env: dict | None = None, timeout: float = 1800) -> tuple[str, float]:
    """Run ttd; its stdout and wall seconds (a failure raises with its stderr)."""
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(TTD), *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"ttd {args[0]} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout, seconds


def call(db: str, expr: str, cache_dir: str) -> dict:
    """One `ttd call --at 1 --json EXPR` with the page cache in cache_dir."""
    out, wall = ttd(
        "call", db, "--at", "1", "--json", expr, env=dict(os.environ, TTD_PAGE_CACHE=cache_dir)
    )
    result = json.loads(out)
    if result["status"] != "returned":
        raise RuntimeError(f"{expr} at {db}: {result['status']}: {result['error']}")
    result["own_ms"] = sum(result["timings_ms"].get(part, 0) for part in TIMING_PARTS)
    result["wall_ms"] = wall * 1e3
    return result


def calls(db: str, expr: str, first: int, tmp: str) -> dict:
    """`first` cold calls, each followed by a repeat with the cache the cold one left."""
    cold, warm, walls = [], [], []
    for k in range(first):
        cache = tempfile.mkdtemp(prefix=f"cache{k}-", dir=tmp)
        one = call(db, expr, cache)
        cold.append(one["own_ms"])
        walls.append(one["wall_ms"])
        warm.append(call(db, expr, cache)["own_ms"])
        shutil.rmtree(cache)
    return {
        "first_call_ms": round(statistics.median(cold), 1),
        "first_call_wall_ms": round(statistics.median(walls), 1),
        "repeat_call_ms": round(statistics.median(warm), 1),
        "value": one["value"],
        "faults": one["faults"],
    }


class CountingProxy:
    """A Unix-socket proxy in front of the cluster's socket: bytes from the server to each
    client, summed by the client's application_name (from its startup message)."""

    def __init__(self, target_dir: Path, tmp: str):
        self.dir = Path(tempfile.mkdtemp(prefix="proxy-", dir=tmp))
        self.target = str(target_dir / ".s.PGSQL.5432")
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(self.dir / ".s.PGSQL.5432"))
        self.listener.listen(64)
        self.bytes: dict[str, int] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.bytes.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.socket(socket.AF_UNIX)
        server.connect(self.target)
        head = client.recv(8, socket.MSG_WAITALL)
        length = struct.unpack("!I", head[:4])[0]
        body = client.recv(length - 8, socket.MSG_WAITALL) if length > 8 else b""
        server.sendall(head + body)
        words = body.split(b"\0")
        params = dict(zip(words[0::2], words[1::2], strict=False))
        app = params.get(b"application_name", b"?").decode()
        threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
        self._pump(server, client, app)

    def _pump(self, src: socket.socket, dst: socket.socket, app: str | None) -> None:
        try:
            while data := src.recv(1 << 16):
                if app is not None:  # counted before the client can have it
                    with self.lock:
                        self.bytes[app] = self.bytes.get(app, 0) + len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--first", type=int, default=3)
    parser.add_argument("--probe-pages", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ttd-bench-team-")
    os.chmod(tmp, 0o711)
    out: dict = {"size_mib": args.size_mib}
    try:
        exe = os.path.join(tmp, "team_heap")
        subprocess.run(
            ["gcc", "-g", "-O0", "-o", exe, str(TOP / "bench/targets/team_heap.c")], check=True
        )
        with running_cluster("ttd-pg-bench-", SERVER_DEFAULTS) as pg:
            pg.create_database("bench")
            db = os.path.join(tmp, "heap.db")
            record = ("--break", "ready", "--", exe, str(args.size_mib))
            _, seconds = ttd("record", "-o", db, *record)
            out["record_s_sqlite"] = round(seconds, 2)
            _, seconds = ttd("record", "-o", pg.url("bench", "recorded"), *record)
            out["record_s_pg"] = round(seconds, 2)
            out["sqlite_file_mib"] = round(os.path.getsize(db) / MIB, 1)
            # into a database of its own: every page is sent (the recording made above
            # holds the same random pages, which a copy beside it would share); first on
            # one connection (what two at once save), then as ttd copies
            pg.create_database("one")
            one_stream = dict(os.environ, TTD_COPY_STREAMS="1")
            _, seconds = ttd("copy", db, pg.url("one", "copied"), env=one_stream)
            out["copy_s_1gib_one_stream"] = round(seconds * 1024 / args.size_mib, 2)
            pg.sql('DROP DATABASE "one"')
            pg.create_database("copy")
            copied = pg.url("copy", "copied")
            _, seconds = ttd("copy", db, copied)
            out["copy_s_1gib"] = round(seconds * 1024 / args.size_mib, 2)
            out["copy_mib_s"] = round(out["sqlite_file_mib"] / seconds, 1)
            size = pg.sql("SELECT pg_database_size('copy')")[0][0]
            out["copy_database_mib"] = round(size / MIB, 1)  # beside sqlite_file_mib
            _, seconds = ttd("copy", db, pg.url("bench", "shared"))
            out["copy_s_beside_a_recording_of_the_same_pages"] = round(seconds, 2)
            note(out)
            expr = f"probe({args.probe_pages})"
            on_file = calls(db, expr, args.first, tmp)
            note(on_file)
            on_server = calls(copied, expr, args.first, tmp)
            if on_file["value"] != on_server["value"]:
                raise RuntimeError(
                    f"{expr}: {on_file['value']} on the file, {on_server['value']} on the server"
                )
            for key in ("first_call_ms", "first_call_wall_ms", "repeat_call_ms"):
                out[f"{key}_pg"] = on_server[key]
                out[f"{key}_sqlite"] = on_file[key]
            out["first_call_ratio"] = round(
                on_server["first_call_ms"] / on_file["first_call_ms"], 2
            )
            out["faults_served"] = on_server["faults"]
            proxy = CountingProxy(pg.dir, tmp)
            try:
                through = copied.replace(str(pg.dir), str(proxy.dir))
                proxy.reset()
                call(through, expr, tempfile.mkdtemp(dir=tmp))
                with proxy.lock:
                    counted = dict(proxy.bytes)
            finally:
                proxy.close()
            out["fetched_bytes_pg"] = counted.get("ttd-pageserver", 0)
            out["fetched_bytes_pg_all"] = sum(counted.values())
            out["probe_pages"] = args.probe_pages
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=1))


def note(out: dict) -> None:
    """What is measured so far, on stderr (a long run that fails later keeps it)."""
    print(json.dumps(out), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
