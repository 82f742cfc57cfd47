"""Rematerialize a recorded process at a tick: a stopped process whose memory is
filled lazily from the recording and whose written pages are tracked exactly.

    from gdb_plugin.remat import rematerialize, RematerializeError
    with rematerialize(recording, tick, sandbox=True, tracker="auto") as proc:
        proc.pid              # stopped (SIGSTOP), untraced: ready for `gdbserver --attach`
        proc.tracker          # "wp-async" or "diff": how written pages are found
        proc.notice           # one line when "auto" fell back to the diff tracker, else None
        proc.written_pages()  # sorted page addresses written since start (or clear_written)
        proc.clear_written()  # forget the writes so far (wp-async: write-protect every
                              # page again; diff: the current bytes become the baseline)
        proc.stats()          # faults, pages served, bytes, serve latency, blocked_syscalls,
                              # brk_calls (None: the sandbox is off, brk is not seen)
        proc.break_moved(stats)  # whether brk was called since the last look or move
        proc.take_blocked()   # the blocked system calls since the last take (one call's
                              # share); the list starts again
        proc.output()         # (stdout, stderr) bytes the process wrote so far: of each,
                              # the first and last MiB (output_keep)
        proc.output_dropped() # (stdout, stderr) bytes left out between them
        proc.drain_output()   # output(), once the pipes are empty (process stopped)
        proc.take_output()    # (Captured, Captured) since the last take: one call's output
                              # with its dropped count; output() starts again
        proc.stack_growth_range()  # (lo, hi) mapped below the recorded [stack], or None
        proc.layout           # the TickLayout it is at (layout.py): threads, map, break
        proc.threads()        # the id of each of layout.threads (the recorded one when free)
        proc.move(layout, ran, call_apply)  # to another tick (see move())
        proc.mem_preload      # native/libttdmem.so: LD_PRELOAD it into gdbserver
        proc.prefill(lo, hi)  # fill [lo, hi) now, clean (e.g. the stack before a call)
        proc.wait_exit(s)     # after someone continued it: its wait status
    # leaving the block kills the process and the page server and reaps both

The sandbox (on by default) refuses, with EPERM, every system call that could
reach outside the process (files and looking at them, sockets, other processes,
fork/clone: new threads too, fcntl commands that signal others, madvise advice
that reaches past the process, system calls of another ABI: int $0x80, x32;
native/pageserver/sandbox_filter.c has the list); the called code runs without
capabilities, as uid and gid 65534 when ttd runs as root.
stats()["blocked_syscalls"] lists what it refused as
[{"name": "unlink", "count": 1, "detail": "/tmp/x"}, ...], grouped by (name,
detail) in first-seen order, the first 100 pairs; stats()["blocked_syscalls_left_out"]
= {"distinct": N, "calls": M} counts the rest. detail is the path(s) ("old -> new"
for rename, link, symlink), "SIGKILL to pid N" for signals, "AF_INET 127.0.0.1:9"
for socket addresses, "AF_INET SOCK_STREAM" for socket(), "F_SETOWN pid N on fd 3"
for fcntl, "MADV_HWPOISON" for madvise, or None; name is "i386 system call 11
(execve)" or "x32 system call 59 (execve)" for another ABI's calls. Details keep
their bytes (control characters too: escape them before printing).

The process may map the recording's size plus mem_margin (1 GiB): past that an
allocation fails with ENOMEM.

Trackers: "wp-async" (exact: every write counts, even one that leaves the bytes
equal) needs UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN (Linux 6.7+); "diff" works
with any userfaultfd: the written set is every filled page whose bytes differ
from its baseline (what it was filled with, or what it held at the last
clear_written()), plus non-zero pages of memory outside the recorded mappings;
a write that leaves the bytes equal is not seen. "auto" (default) takes
wp-async when the kernel has it.

The recorded [stack] gets room to grow below it, as a live stack has: zero pages
filled on demand, down to 8 MiB in all or a guard page above the next mapping
below. stack_growth_range() says where: pages written there are stack, though no
recorded mapping holds them.

Every recorded thread of the tick is there, stopped, with its recorded registers
and name, the thread-group leader as the process itself; each has its recorded id
when that id is free. The called code cannot make threads (the sandbox refuses
clone).

Errors (RematerializeError, one line) come from the `with` statement, or from a
request once the server has stopped the process (e.g. a corrupt page).
The process is in a group stop: after `gdbserver --attach` the first resume
reports a SIGSTOP that GDB must swallow (`handle SIGSTOP nostop noprint nopass`).
Never detach gdbserver from it (DESIGN.md); kill it, or leave the block.

`recording` is a snapshotdb.db.Recording (open_recording(); it stays open) or a
path (opened and closed here).

This module does not import gdb. The work is done by native/ttd-pageserver (see
native/pageserver/main.c for the control protocol): this side reads the layout and
the registers from snapshotdb, sends them in one binary spec (spec.py, the contract),
and talks to the server over a socket. The server reads page contents from the
recording itself: the SQLite file, or the PostgreSQL database (libpq). Modes other
than "lazy" run native/ttd-pageserver-bench.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gdb_plugin.remat import spec
from gdb_plugin.remat.errors import MoveRefused, RematerializeError
from gdb_plugin.remat.layout import (
    TickLayout,
    _stack_growth,  # noqa: F401 (its tests import it from here)
    pack_maps,
    read_layout,
)
from gdb_plugin.remat.output import KEEP_HEAD, Captured, Drain
from snapshotdb.db import Recording, open_recording
from snapshotdb.errors import RecordingError

NATIVE = Path(__file__).resolve().parents[2] / "native"
PAGESERVER = NATIVE / "ttd-pageserver"
PAGESERVER_BENCH = NATIVE / "ttd-pageserver-bench"  # with the modes but lazy
STUB = NATIVE / "ttd-stub"
MEM_PRELOAD = NATIVE / "libttdmem.so"

PAGE_SIZE = 4096
MODES = spec.MODES
DEFAULT_FAULT_AROUND_PAGES = 16  # 64 KiB; bench/lazy_fill.py measures whether it pays
DEFAULT_MEM_MARGIN = 1 << 30  # bytes the process may map past the recording's size
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0

SPEC_TRACKER = spec.TRACKER_FLAGS  # the tracker asked for: auto, diff, wp-async
NOTICE = (
    "ttd: this kernel lacks {missing} (Linux >= 6.7); using the diff tracker: "
    "writes that leave bytes unchanged are not seen."
)


@dataclass(frozen=True)
class Options:
    """How rematerialize() builds the process (see its docstring)."""

    tid: int | None = None  # no longer picks anything: every thread is there
    mode: str = "lazy"
    fault_around_pages: int = DEFAULT_FAULT_AROUND_PAGES
    sandbox: bool = True
    tracker: str = "auto"
    mem_margin: int = DEFAULT_MEM_MARGIN
    output_keep: int = KEEP_HEAD


def _build_spec(recording: Recording, layout: TickLayout, opts: Options) -> bytes:
    """The layout and every thread's registers, packed for ttd-pageserver."""
    path = os.fsencode(recording.pageserver_location)  # a file, or a server's libpq URI
    flags = (spec.FLAGS["SPEC_SANDBOX"] if opts.sandbox else 0) | SPEC_TRACKER[opts.tracker]
    head = spec.pack_head(
        tick=layout.tick,
        nr_maps=len(layout.regions),
        auxv_size=len(layout.auxv),
        nr_threads=len(layout.threads),
        db_path_size=len(path),
        mode=MODES[opts.mode],
        fault_around_pages=opts.fault_around_pages,
        flags=flags,
        mem_margin=opts.mem_margin,
        mm=layout.mm,
    )
    threads = b"".join(
        spec.pack_thread(t.tid, t.name, t.gpregs, t.fpregs, t.xstate) for t in layout.threads
    )
    return head + pack_maps(layout) + layout.auxv + threads + path


class RematerializedProcess:
    """A running ttd-pageserver and the stopped process it serves."""

    mem_preload = str(MEM_PRELOAD)

    def __init__(self, server: subprocess.Popen, ctl: socket.socket, out: Drain, err: Drain):
        self._server = server
        self._ctl = ctl
        self._ctl_file = ctl.makefile("rb")
        self._out, self._err = out, err
        self.pid: int = 0
        self.exit_status: int | None = None  # wait status once the process has ended
        self._final_stats: dict | None = None
        self._error: str | None = None
        self.tracker: str = ""  # "wp-async" or "diff", once ready
        self.notice: str | None = None  # why "auto" fell back to the diff tracker
        self.layout: TickLayout | None = None  # the tick it is at
        self._brk_calls: int | None = 0  # the sandbox's count at the last look (break_moved)
        self._tids: list[int] | None = None

    @property
    def server_pid(self) -> int:
        return self._server.pid

    # -- the control channel --------------------------------------------------------
    def _readline(self, timeout: float) -> str:
        self._ctl.settimeout(timeout)
        try:
            line = self._ctl_file.readline()
        except TimeoutError:
            raise RematerializeError(
                f"ttd-pageserver did not answer within {timeout:.0f} s (pid {self._server.pid})."
            ) from None
        except ConnectionError:  # reset: the server was killed with a request unread
            line = b""
        if not line:
            raise RematerializeError(
                "ttd-pageserver ended without a word: run it with TTD_DEBUG=1 to see why."
            )
        return line.decode(errors="replace").rstrip("\n")

    def _reply(self, line: str) -> str:
        """The payload of an OK reply; unasked GONE/ERROR lines become state or errors."""
        if line.startswith("OK"):
            return line[3:]
        if line.startswith("GONE "):
            status, _, stats = line[5:].partition(" ")
            self.exit_status = int(status)
            self._final_stats = json.loads(stats)
            raise RematerializeError(self._ended())
        if line.startswith("ERROR "):
            self._error = line[6:]
            raise RematerializeError(self._error)
        raise RematerializeError(f"ttd-pageserver said something unexpected: {line!r}")

    def _ended(self) -> str:
        return f"The process has ended ({_describe_status(self.exit_status)})."

    def _request(
        self,
        what: str,
        timeout: float = REQUEST_TIMEOUT_S,
        payload: bytes = b"",
        refusal: str | None = None,
    ) -> str:
        """The payload of the OK reply to `what`; MoveRefused for a reply starting with
        `refusal` (a request the server declined, nothing changed)."""
        if self._error:
            raise RematerializeError(self._error)
        if self.exit_status is not None:
            raise RematerializeError(self._ended())
        try:
            self._ctl.sendall(what.encode() + b"\n" + payload)
        except OSError:
            pass  # the server is gone: its last line explains why
        line = self._readline(timeout)
        if refusal and line.startswith(refusal):
            raise MoveRefused(line[len(refusal) :])
        return self._reply(line)

    def _wait_ready(self) -> None:
        line = self._readline(READY_TIMEOUT_S)
        if not line.startswith("READY "):
            self._reply(line)  # raises with the server's message
        # READY <pid> <tracker> [what the kernel lacks, when auto fell back]
        words = line.split(" ", 3)
        self.pid = int(words[1])
        self.tracker = words[2] if len(words) > 2 else "wp-async"
        if len(words) > 3:
            self.notice = NOTICE.format(missing=words[3])

    # -- the contract ---------------------------------------------------------------
    def written_pages(self) -> list[int]:
        """Page addresses written since start (or the last clear_written), sorted."""
        count = int(self._request("WRITTEN"))
        pages: list[int] = []
        for _ in range(count):
            start, end = (int(x, 16) for x in self._readline(REQUEST_TIMEOUT_S).split())
            pages.extend(range(start, end, PAGE_SIZE))
        return pages

    def clear_written(self) -> None:
        """Write-protect every recorded page again, so later writes alone count."""
        self._request("CLEAR")

    def stats(self) -> dict:
        """faults, pages_served, zero_pages, bytes, serve_us_p50/p99/max/mean (server side).

        Still answers after the process has ended (the server's last word carries them)."""
        live = self._live_json("STATS")
        return live if live is not None else dict(self._final_stats)

    def _live_json(self, request: str) -> dict | None:
        """The JSON answer to `request`, or None when the process has ended (then the
        server's last word, self._final_stats, holds what there is)."""
        if self._final_stats is None:
            try:
                return json.loads(self._request(request))
            except RematerializeError:
                if self._final_stats is None:
                    raise
        return None

    def break_moved(self, stats: dict | None) -> bool:
        """Whether the program break may have moved since the last look or move, told by
        `stats` (from stats(), None when there are none): the sandbox hands every brk
        to the page server, which counts them; without the sandbox nothing tells."""
        calls = stats.get("brk_calls") if stats else None
        moved = calls is None or calls != self._brk_calls
        self._brk_calls = calls
        return moved

    def take_blocked(self) -> dict:
        """What the sandbox refused since the last take (one call's share):
        {"sandbox": bool, "blocked_syscalls": [...], "blocked_syscalls_left_out":
        {"distinct": N, "calls": M}}; the list starts again (stats() shows it too).
        After the process's end: what its last word had, once."""
        live = self._live_json("TAKE_BLOCKED")
        if live is not None:
            return live
        final = self._final_stats
        taken = {
            "sandbox": final.get("sandbox", False),
            "blocked_syscalls": final.get("blocked_syscalls", []),
            "blocked_syscalls_left_out": final.get(
                "blocked_syscalls_left_out", {"distinct": 0, "calls": 0}
            ),
        }
        final["blocked_syscalls"] = []
        final["blocked_syscalls_left_out"] = {"distinct": 0, "calls": 0}
        return taken

    def prefill(self, rec_start: int, rec_end: int) -> None:
        """Fill the pages of [rec_start, rec_end) now, as faults would (clean, not written)."""
        self._request(f"FILL {rec_start:x} {rec_end:x}")

    def output(self) -> tuple[bytes, bytes]:
        """What the process wrote to fds 1 and 2 so far (since the last take_output()):
        of each, the first and the last output_keep bytes (output_dropped() counts what
        was left out between them)."""
        return self._out.captured().data, self._err.captured().data

    def output_dropped(self) -> tuple[int, int]:
        """Bytes of stdout and stderr left out of output() (0 when it has everything)."""
        return self._out.captured().dropped, self._err.captured().dropped

    def drain_output(self, timeout: float = 1.0) -> tuple[bytes, bytes]:
        """output(), once the pipes are empty.

        Call it while the process is stopped (or gone): what it wrote is then in the
        pipes or taken already; this takes the rest itself (waiting at most `timeout`
        seconds for a drain thread in the middle of a read)."""
        for drain in (self._out, self._err):
            drain.take_now(timeout)
        return self.output()

    def take_output(self, timeout: float = 1.0) -> tuple[Captured, Captured]:
        """What was written to fds 1 and 2 since the last take (one call's output), once
        the pipes are empty (as drain_output), each with its count of bytes left out;
        output() starts again from here."""
        for drain in (self._out, self._err):
            drain.take_now(timeout)
        return self._out.take(), self._err.take()

    def stack_growth_range(self) -> tuple[int, int] | None:
        """[lo, hi) mapped below the recorded [stack] so that it can grow (zero pages,
        filled on demand; hi is the recorded [stack]'s start), or None. Pages written
        there belong to the stack although no recorded mapping holds them."""
        return self.layout.stack_growth if self.layout else None

    def threads(self) -> list[int]:
        """The id of each thread of self.layout.threads, in that order (the leader's is
        self.pid); the recorded id where it was free."""
        if self._tids is None:
            self._tids = [int(word) for word in self._request("THREADS").split()]
        return self._tids

    def move(self, layout: TickLayout, ran: bool, call_apply) -> dict:
        """Make the process what it was at layout.tick (native/pageserver/move.h): its
        memory map, program break and memory; registers are the tracer's business. `ran`:
        the process ran code since it was built or last moved (its break may have moved
        inside a page, where nothing shows it). call_apply(fn, arg) must call fn(arg) in
        the process, as its tracer (GDB: an inferior call), when the memory map must
        change; it is not called otherwise. The threads must be the same
        (layout.same_process_as). Returns the page server's counts. Raises MoveRefused
        when the server would not move it (the process is as it was: the diff tracker,
        a layout it cannot make), RematerializeError when the move failed (the process
        is not to be used any more)."""
        head = f"MOVE {layout.tick} {len(layout.regions)} {layout.brk:x} {int(ran)}"
        reply = self._request(head, payload=pack_maps(layout), refusal="NO ")
        fn, arg = (int(word, 16) for word in reply.split())
        if fn:
            call_apply(fn, arg)
        counts = json.loads(self._request("MOVED"))
        self.layout = layout
        self._brk_calls = counts.get("brk_calls")  # the stub's own brk calls are the move's
        return counts

    def wait_exit(self, timeout: float) -> int:
        """Wait until the process ends (after someone continued it); return its wait status."""
        if self.exit_status is None:
            try:
                self._reply(self._readline(timeout))
            except RematerializeError:
                if self.exit_status is None:
                    raise
        self._out.join(timeout)
        self._err.join(timeout)
        return self.exit_status

    def close(self) -> None:
        """Kill the process and the server; reap both. Safe to call twice."""
        if self._server.poll() is None:
            try:
                self._ctl.sendall(b"KILL\n")
                self._readline(10.0)
            except (OSError, RematerializeError):
                pass
            try:
                self._server.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        self._ctl_file.close()
        self._ctl.close()
        self._out.join(10.0)
        self._err.join(10.0)


def _describe_status(status: int) -> str:
    """ "exited with code 3", "killed by signal 9"."""
    if os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"wait status {status:#x}"


class Rematerialization:
    """What rematerialize() returns. The process is built on __enter__, so every
    error (RematerializeError) comes from the `with` statement; __exit__ kills and
    reaps the process and the page server."""

    def __init__(self, recording: Recording | str, tick: int, opts: Options):
        self.recording, self.tick, self.opts = recording, tick, opts
        self.proc: RematerializedProcess | None = None

    def __enter__(self) -> RematerializedProcess:
        self.proc = _open(self.recording, self.tick, self.opts)
        return self.proc

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.close()


def rematerialize(
    recording: Recording | str | os.PathLike | None = None,
    tick: int | None = None,
    tid: int | None = None,
    *,
    mode: str = "lazy",
    fault_around_pages: int = DEFAULT_FAULT_AROUND_PAGES,
    sandbox: bool = True,
    tracker: str = "auto",
    mem_margin: int = DEFAULT_MEM_MARGIN,
    output_keep: int = KEEP_HEAD,
    db_path: str | os.PathLike | None = None,
) -> Rematerialization:
    """Rebuild the recorded process at `tick`, every thread of it (`tid`, the thread a
    caller means to use, changes nothing: they are all there).

    Use as `with rematerialize(...) as proc:`. `recording` is an open Recording (it
    stays open) or the path of one. mode "lazy" is what ttd uses; "eager"
    (fill everything first) and "workaround" (the soft-dirty workaround per fault)
    exist for bench/lazy_fill.py. sandbox (on by default) installs a seccomp filter:
    system calls that only affect the process pass, the others fail with EPERM and are
    listed in stats()["blocked_syscalls"]; sandbox=False lets the process reach
    outside (the user asked for side effects). tracker: "auto", "wp-async" or "diff"
    (see the module docstring). mem_margin: bytes the process may map past the
    recording's mapped size (RLIMIT_AS and RLIMIT_DATA; an allocation past it fails
    with ENOMEM). output_keep: bytes kept of the start and of the end of each of fds 1
    and 2 (output.py). db_path: the first argument's old name (a path), still taken.
    Raises RematerializeError with a one-line message.
    """
    if recording is None:
        recording = db_path
    if recording is None or tick is None:
        raise TypeError("rematerialize() needs a recording (or db_path) and a tick")
    if tracker not in SPEC_TRACKER:
        raise RematerializeError(
            f"Unknown tracker '{tracker}': use one of {', '.join(SPEC_TRACKER)}."
        )
    if mode not in MODES:
        raise RematerializeError(f"Unknown mode '{mode}': use one of {', '.join(MODES)}.")
    if mem_margin < 0:
        raise RematerializeError(f"Invalid memory margin {mem_margin}: a number of bytes >= 0.")
    if not isinstance(recording, Recording):
        recording = os.fspath(recording)
    return Rematerialization(
        recording,
        tick,
        Options(tid, mode, fault_around_pages, sandbox, tracker, mem_margin, output_keep),
    )


def _open(recording: Recording | str, tick: int, opts: Options) -> RematerializedProcess:
    server = PAGESERVER if opts.mode == "lazy" else PAGESERVER_BENCH
    if not server.exists() or not STUB.exists():
        raise RematerializeError(f"{server} is not built: run make -C {NATIVE}")
    name = recording.name if isinstance(recording, Recording) else recording
    try:
        if isinstance(recording, Recording):
            spec_bytes, layout = _build_local(recording, tick, opts)
        else:
            with open_recording(recording) as opened:
                spec_bytes, layout = _build_local(opened, tick, opts)
    except RematerializeError:
        raise
    except RecordingError as exc:
        raise RematerializeError(str(exc)) from exc
    except OSError as exc:
        raise RematerializeError(f"Cannot read the recording '{name}': {exc.strerror}.") from exc
    proc = _start(server, spec_bytes, opts.output_keep)
    proc.layout = layout
    return proc


def _build_local(recording: Recording, tick: int, opts: Options) -> tuple[bytes, TickLayout]:
    """The tick's layout and its spec for the page server (which reads the recording's
    SQLite file or its PostgreSQL server itself)."""
    layout = read_layout(recording, tick)
    return _build_spec(recording, layout, opts), layout


def _start(server_path: Path, spec_bytes: bytes, output_keep: int) -> RematerializedProcess:
    ours, theirs = socket.socketpair()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        server = subprocess.Popen(
            [str(server_path), "--out-fd", str(out_w), "--err-fd", str(err_w)],
            stdin=theirs.fileno(),
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("TTD_DEBUG") else subprocess.DEVNULL,
            pass_fds=(out_w, err_w),
            close_fds=True,
        )
    finally:
        theirs.close()
        os.close(out_w)
        os.close(err_w)
    out, err = Drain(out_r, output_keep, output_keep), Drain(err_r, output_keep, output_keep)
    out.start()
    err.start()
    proc = RematerializedProcess(server, ours, out, err)
    try:
        ours.sendall(spec_bytes)
        proc._wait_ready()
    except BaseException:
        proc.close()
        raise
    return proc
