"""A call session: the rematerialized process at one tick, attached as a temporary
inferior, and the calls made in it, each with its report.

    rematerialize(db, tick, tid) -> stopped process   (gdb_plugin/remat)
    TempInferior: attach through gdbserver             (gdb_plugin/inferior.py)
    clear_written(); call EXPR; written_pages()        (gdb_plugin/evaluate.py)
    -> CallResult: the value, how the call ended, the dirtied pages (report.py,
       symbolize.py), the output, the blocked system calls

A CallSession can stay alive between calls at the same tick: after each call
the pages whose bytes changed are written back from the recording and the
written set is cleared, so every call starts from the recorded state. When
that is not possible (the call mapped memory, crashed, or timed out) the
session is not reusable and its owner closes it (gdb_plugin/sessions.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import time

import gdb

from gdb_plugin import files, one_cpu, report, symbolize
from gdb_plugin.errors import SessionError
from gdb_plugin.evaluate import Outcome, UserBreakpointsDisabled, evaluate
from gdb_plugin.inferior import TempInferior
from gdb_plugin.per_call import PerCall
from gdb_plugin.procmem import read_runs, write_pages
from gdb_plugin.procstate import ProcessState
from gdb_plugin.replay import this_thread_only
from gdb_plugin.result import CallResult
from gdb_plugin.settings import SANDBOX_OFF_WARNING
from gdb_plugin.ticks import TickInfo, page_reader
from gdb_plugin.watchdog import kill_gdbserver


def _rematerialize(info: TickInfo, sandbox: bool, tracker: str):
    """rematerialize() on the open recording's handle."""
    from gdb_plugin.remat import rematerialize

    return rematerialize(info.recording, info.tick, tid=info.tid, sandbox=sandbox, tracker=tracker)


def _registers() -> tuple:
    """GDB's general registers of the selected (temporary) inferior's newest frame, as
    (name, value): what a call leaves as it found them unless an expression set one."""
    frame = gdb.newest_frame()
    return tuple(
        (reg.name, int(frame.read_register(reg.name)))
        for reg in frame.architecture().registers("general")
    )


def _recording_error():
    """snapshotdb's RecordingError (RematerializeError is one), imported when needed:
    sourcing the plugin does not load SQLAlchemy."""
    from snapshotdb.errors import RecordingError

    return RecordingError


def _server_unavailable():
    from snapshotdb.errors import ServerUnavailable

    return ServerUnavailable


START_LIMIT_S = 90.0  # remat bounds its own start (60 s); this bounds the wait for it


class _Starting(threading.Thread):
    """rematerialize(...).__enter__() in a thread; result() gives the process or raises
    SessionError with the page server's one-line message. A start that outlives
    START_LIMIT_S is given up: if it ever succeeds, the thread ends that process."""

    def __init__(self, remat_cm) -> None:
        super().__init__(daemon=True, name="ttd-rematerialize")
        self.remat_cm = remat_cm
        self.proc = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._abandoned = False
        self.start()

    def run(self) -> None:
        try:
            proc = self.remat_cm.__enter__()
        except BaseException as exc:  # handed to the GDB thread in result()
            self.error = exc
            return
        with self._lock:
            self.proc = proc
            abandoned = self._abandoned
        if abandoned:  # nobody waits for it any more: end it here
            self.remat_cm.__exit__(None, None, None)

    def wait(self) -> None:
        """Wait for the start to end (bounded); a start still going is abandoned."""
        if self._abandoned:
            return
        self.join(START_LIMIT_S)
        with self._lock:
            self._abandoned = self.proc is None and self.error is None

    def result(self):
        self.wait()
        if self._abandoned:
            raise SessionError(
                f"The page server did not start the process within {START_LIMIT_S:g} s."
            )
        if self.error is not None:
            if isinstance(self.error, _recording_error()):  # RematerializeError and friends
                raise SessionError(str(self.error)) from self.error
            raise self.error
        return self.proc


class CallSession:
    """The rematerialized process at (recording, tick, thread), attached as a temporary
    inferior. requested_tid is the thread asked for (None: the one that stopped)."""

    def __init__(
        self, info: TickInfo, sandbox: bool, tracker: str, requested_tid: int | None = None
    ) -> None:
        self.info = info
        self.sandbox = sandbox
        self.tracker = tracker  # as asked: auto, wp-async or diff
        self.tracker_used = "wp-async"  # what the page server runs
        self.regions = info.regions  # and the stack's room to grow, once there is a process
        # gdbserver's log, and whatever else the process needs on disk: removed at close
        self.workdir = tempfile.mkdtemp(prefix=f"ttd-{os.getpid()}-")
        self.inferior = TempInferior(self.workdir)
        self._remat_cm = None
        self.proc = None
        self.open_ms: dict = {}
        self.warnings: list[str] = []
        self.per_call = PerCall()  # each call's share of the output and the counters
        self.calls = 0
        self.requested_tid = requested_tid
        # the recorded bytes at the tick never change: each page is read once per session
        self._old_pages: dict[int, bytes] = {}
        # what symbolize learns that a reset cannot change (frames, TLS addresses)
        self.symbol_cache: dict = {}
        self._clean = False  # True right after a reset: the written set is empty
        self._state: ProcessState | None = None  # as built, read before the first call
        self._registers: tuple | None = None
        self.reusable = False
        self.movable = False  # a move to any tick gives the recorded state (replay.py)
        self.reg_layout = None  # GDB's g packet layout, read at the first move
        self.g_packets: dict[int, bytes] = {}  # each thread's `g` reply at the first move
        self.user_visible = False  # ttd goto's: the user may set registers, run it
        # an expression named a register since the last move: the next writes them all
        self.registers_touched = False
        self._move_ms: float | None = None  # the move before the next call
        # the temporary inferior selected by the move, for the call that follows it
        self._held_selection: contextlib.ExitStack | None = None

    def matches(self, recording, tick: int, tid: int | None, sandbox: bool, tracker: str) -> bool:
        """Same recording, tick and thread (None: the thread that stopped), same sandbox
        and tracker."""
        return (
            self.info.recording is recording
            and self.info.tick == tick
            and tid in (self.requested_tid, self.info.tid)
            and (self.sandbox, self.tracker) == (sandbox, tracker)
        )

    def _old_page(self, reader, rec_page: int) -> bytes:
        """The recorded bytes of a page; the first KEEP_BYTES_PAGES read are kept for the
        next calls at this tick (they never change)."""
        old = self._old_pages.get(rec_page)
        if old is None:
            old = reader.page(rec_page)
            if len(self._old_pages) < report.KEEP_BYTES_PAGES:
                self._old_pages[rec_page] = old
        return old

    def open(self, keep_selected: bool = False) -> None:
        """Rematerialize and attach; keep_selected leaves the new inferior selected (goto).

        The page server builds the process in a thread while GDB prepares the new
        inferior and reads the executable's symbols: both take milliseconds, and the
        thread mostly waits on the server (no GIL held).
        """
        t0 = time.perf_counter()
        self._remat_cm = _rematerialize(self.info, self.sandbox, self.tracker)
        starting = _Starting(self._remat_cm)
        try:  # from here on, any failure must end the process and the page server
            exe = self._check_files()
            self.open_ms.update(self.inferior.prepare(exe))
            self.proc = starting.result()
            self.open_ms["rematerialize"] = (time.perf_counter() - t0) * 1e3
            self._note_process()
            with one_cpu.beside(self.proc.pid):  # gdbserver starts there, beside it
                self.open_ms.update(
                    self.inferior.connect(
                        self.proc.pid, getattr(self.proc, "mem_preload", None), keep_selected
                    )
                )
            self.movable = True  # as built: a move gives any tick of the same threads
            if keep_selected:  # ttd goto: what the user may change by running it
                self._state = ProcessState.read(self.proc.pid)
                self.user_visible = True
        except BaseException:
            starting.wait()
            self.close()
            raise

    def _note_process(self) -> None:
        """The tracker the page server chose, its notice (auto fell back), and the
        warning that the sandbox is off: once per process, with the file warnings."""
        self.tracker_used = self.proc.tracker
        growth = self.proc.stack_growth_range()
        if growth is not None:  # written there: the stack grew, below the recorded rsp
            self.regions = sorted(
                self.info.regions + [report.Region(*growth, "rw-p", "[stack]")],
                key=lambda r: r.start,
            )
        notice = self.proc.notice  # "ttd: this kernel lacks ...": a warning here
        if notice:
            self.warnings.append("warning: " + notice.removeprefix("ttd: "))
        if not self.sandbox:
            self.warnings.append(SANDBOX_OFF_WARNING)

    def notes(self) -> list[str]:
        """What the report of every call here must say about how it was made."""
        return [report.DIFF_TRACKER_NOTE] if self.tracker_used == "diff" else []

    def _check_files(self) -> str | None:
        """The executable to load symbols from (None when missing); warnings about files
        that are missing or differ from the recorded ones (by build-id)."""
        if report.has_control(self.info.exe_path):  # `file PATH` would run the rest
            self.warnings.append(
                f"warning: the recorded executable's path "
                f"{report.printable(self.info.exe_path, keep='')!r} holds "
                "control characters: its symbols are not loaded."
            )
            return None
        return files.choose(self.info, self.inferior, self.warnings)  # local or recorded

    def move_to(self, info: TickInfo, requested_tid: int | None) -> None:
        """The process becomes the recording at info's tick (replay.movable() said it
        can); what this session knew of the old tick is forgotten. Raises MoveRefused
        (the process is as it was) or SessionError and RecordingError (it is not to be
        used any more)."""
        from gdb_plugin import replay

        self.reusable = self.movable = False
        self._release_selection()  # a move never called after: none held, as a rule
        t0 = time.perf_counter()
        selection = contextlib.ExitStack()
        selection.enter_context(self.inferior.selected())
        selecting_ms = (time.perf_counter() - t0) * 1e3  # the move's time includes it
        try:
            with one_cpu.beside(self.proc.pid):
                moving_ms, counts = replay.move(self, info)
            self._move_ms = selecting_ms + moving_ms
        except BaseException:
            selection.close()
            raise
        if self.user_visible:
            selection.close()
        else:  # the call that follows runs in it: selecting once is a third of a move
            self._held_selection = selection
        self.info, self.requested_tid = info, requested_tid
        self.regions = info.regions
        growth = self.proc.stack_growth_range()
        if growth is not None:
            self.regions = sorted(
                info.regions + [report.Region(*growth, "rw-p", "[stack]")], key=lambda r: r.start
            )
        self._old_pages = {}
        self.symbol_cache = {}
        self._registers = None
        if self._state is not None and (counts.get("ops") or counts.get("called")):
            self._state = ProcessState.read(self.proc.pid)  # as moved: the next call's start
        self._clean = True  # the page server re-armed the tracking
        self.reusable = self.movable = True

    def _call_thread(self):
        """The GDB thread the call runs on: the recorded thread info.tid, or None."""
        from gdb_plugin.replay import thread_of

        layout = self.proc.layout
        if layout is None or self.inferior.num is None:
            return None
        for lwp, thread in zip(self.proc.threads(), layout.threads, strict=False):
            if thread.tid == self.info.tid:
                return thread_of(self.inferior.num, lwp)
        return None

    def moves_back(self) -> bool:
        """Whether a move undoes what was done in the process since it was built or
        moved (its memory, mappings and registers only changed: read from /proc)."""
        if not self.movable:
            return False
        if self._state is None:
            return True
        try:
            changed = self._state.changes(ProcessState.read(self.proc.pid))
        except OSError:
            return False
        return not [c for c in changed if c != "mappings"]

    def select_call_thread(self) -> None:
        """Select the temporary inferior's thread of the recorded thread info.tid (ttd
        goto: it stays selected)."""
        self.inferior._select()
        thread = self._call_thread()
        if thread is not None:
            thread.switch()

    def _selected(self) -> contextlib.AbstractContextManager:
        """The temporary inferior selected for a call: by the move just made, or now."""
        held, self._held_selection = self._held_selection, None
        return held if held is not None else self.inferior.selected()

    def _release_selection(self) -> None:
        """The user's selection and settings back, if a move left the inferior selected."""
        held, self._held_selection = self._held_selection, None
        if held is not None:
            held.close()

    def close(self) -> None:
        """Remove the temporary inferior, end the process and the page server, remove
        the session's directory."""
        try:
            try:
                self._release_selection()
            finally:
                self.inferior.close()
        finally:
            self.end_process()

    def end_process(self) -> None:
        """Kill the process and the page server and reap both, remove the session's
        directory (also when GDB is half gone)."""
        try:
            if self._remat_cm is not None:
                cm, self._remat_cm = self._remat_cm, None
                cm.__exit__(None, None, None)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def call(self, expr: str, timeout_s: float = 10.0) -> CallResult:
        """Evaluate EXPR at the tick; the temporary inferior is selected during the call.

        Afterwards self.reusable says whether the next call at this tick may use the
        process again: then the pages the call changed have been put back already.
        """
        timings = (
            dict(self.open_ms)
            if self.calls == 0
            else {"rematerialize": 0.0, "attach": 0.0, "symbols": 0.0}
        )
        if self._move_ms is not None:
            timings["move"], self._move_ms = self._move_ms, None
        self.calls += 1
        self.reusable = self.movable = False
        if "$" in expr:  # it may set a register (GDB puts back only what the call changed)
            self.registers_touched = True
        with one_cpu.beside(self.proc.pid), self._selected():
            thread = self._call_thread()
            if thread is not None:
                thread.switch()
            if self._state is None:  # as built: what every later call must find again
                self._state, self._registers = ProcessState.read(self.proc.pid), _registers()
            if not self._clean:
                self.proc.clear_written()
            self._clean = False
            t0 = time.perf_counter()
            nr_threads = len(self.proc.layout.threads) if self.proc.layout else 1
            with this_thread_only(nr_threads), UserBreakpointsDisabled():
                outcome = evaluate(
                    expr, self.proc.pid, timeout_s, on_resumed=self.inferior.mark_resumed
                )
            t1 = time.perf_counter()
            if nr_threads > 1 and outcome.status != "returned" and _ended(self.proc.pid):
                outcome = _exited(outcome, self.proc.pid)
            pages, server_error = self._report()
            stats = self._stats()
            if server_error is not None:  # the page server is gone or refused a page
                outcome = Outcome("error", error=server_error)
            if outcome.status == "exited":
                outcome = _with_wait_status(outcome, self._wait_status())
            t2 = time.perf_counter()
            clean_end = outcome.status in ("returned", "error") and not outcome.signals_sent
            changed = self.changes(expr, outcome.resumed) if clean_end else ["ended"]
            if self.proc.break_moved(stats) and outcome.resumed:
                changed.append("break")  # inside a page: a move puts it back
            if self._can_reset(outcome.status, pages, outcome.signals_sent) and not changed:
                self._reset(pages)
            # a move puts back memory, mappings, break and registers, not the rest
            self.movable = clean_end and not [
                c for c in changed if c not in ("registers", "mappings", "break")
            ]
        timings["call"] = (t1 - t0) * 1e3
        timings["report"] = (t2 - t1) * 1e3
        out, err = self.per_call.take_output(self.proc)
        faults, blocked, left_out = self._new_stats(stats)
        if self.sandbox and outcome.signal == "SIGSYS":
            outcome.error = _stopped_by_sandbox(blocked)
        return CallResult(
            tick=self.info.tick,
            expr=expr,
            status=outcome.status,
            value=outcome.value,
            history=outcome.history,
            signal=outcome.signal,
            error=outcome.error,
            pages=pages,
            stdout=out.text,
            stderr=err.text,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
            faults=faults,
            blocked_syscalls=blocked,
            warnings=list(self.warnings) if self.calls == 1 else [],
            fault_address=outcome.fault_address,
            backtrace=outcome.backtrace,
            exit_code=outcome.exit_code,
            tracker=self.tracker_used,
            notes=self.notes(),
            stdout_left_out=out.left_out,
            stderr_left_out=err.left_out,
            stdout_cut=out.cut,
            stderr_cut=err.cut,
            blocked_left_out=left_out,
        )

    def _wait_status(self) -> int | None:
        """The ended process's wait status, from the page server (its parent), which may
        learn of the end a moment after GDB did."""
        try:
            return self.proc.wait_exit(5.0)
        except _recording_error():
            return self.proc.exit_status

    def _can_reset(
        self, status: str, pages: list[report.DirtiedPage], signals_sent: list[str]
    ) -> bool:
        """Whether putting back the changed pages restores the recorded state: not after a
        crash or a timeout (nor when the timeout's signal came as the call returned: it
        may be pending), nor when the call mapped memory (brk, mmap)."""
        if status not in ("returned", "error") or signals_sent:
            return False
        return all(
            p.kind != "new-mapping" and p.bytes_kept and len(p.new) == report.PAGE_SIZE
            for p in pages
        )

    def changes(self, expr: str, resumed: bool) -> list[str]:
        """What differs from the process as it was built, besides memory, after a call
        of `expr`: what ProcessState reads from /proc, when the process ran; "registers"
        when the expression names one ($rsp = 0 sets it, and nothing puts it back: GDB
        restores the registers around a function call). With the temporary inferior
        selected."""
        changed = []
        if resumed:
            try:
                changed = self._state.changes(ProcessState.read(self.proc.pid))
            except OSError:
                return ["process"]  # gone
        if "$" in expr:
            try:
                if _registers() != self._registers:
                    changed.insert(0, "registers")
            except gdb.error:  # "No registers.": the process is gone
                changed.insert(0, "process")
        return changed

    def pending_signals(self) -> bool:
        """A signal arrived since the last call (a timer it set fired): the process is
        not as recorded any more."""
        if self._state is None:
            return False
        try:
            return "pending signals" in self._state.changes(ProcessState.read(self.proc.pid))
        except OSError:
            return True

    def _reset(self, pages: list[report.DirtiedPage]) -> None:
        """Put back the recorded bytes of every page the call changed; forget the writes.
        Runs with the temporary inferior selected."""
        try:
            write_pages(self.proc.pid, {p.rec_addr: p.old for p in pages if p.changed})
            self.proc.clear_written()
            gdb.execute("maintenance flush dcache", to_string=True)
        except (OSError, gdb.error, _recording_error()):
            return
        self._clean = True
        self.reusable = True

    def _report(self) -> tuple[list[report.DirtiedPage], str | None]:
        """The dirtied pages; none when the process is gone (the call made it exit).
        Second: the page server's error when it cannot tell (it ended, or stopped the
        process on a corrupt page), else None."""
        try:
            written = list(self.proc.written_pages())
        except _recording_error() as exc:
            return [], _server_error(str(exc), self.proc)
        except OSError:  # the control socket broke (ECONNRESET): the page server is gone
            return [], _server_error(SERVER_ENDED, self.proc)
        pages = []
        try:
            with page_reader(self.info.recording, self.info.tick) as reader:
                for i, (rec_page, new) in enumerate(read_runs(self.proc.pid, written)):
                    pages.append(
                        report.build_page(
                            rec_page,
                            self.regions,
                            self.info.rsp,
                            self._old_page(reader, rec_page),
                            new,
                            self.info.fs_base,
                            keep_bytes=i < report.KEEP_BYTES_PAGES,
                        )
                    )
        except OSError:  # the process is gone: the call made it exit
            return [], None
        except _server_unavailable() as exc:  # the server went away while pages were read
            return [], str(exc)
        symbolize.annotate(pages, self.proc.pid, self.info, self.symbol_cache)
        return pages, None

    def _stats(self) -> dict | None:
        """The page server's counters after a call, or None when they are gone with the
        process."""
        try:
            return self.proc.stats()
        except Exception:  # the process is gone and took its counters along
            return None

    def _new_stats(self, stats: dict | None) -> tuple[dict, list[dict], dict]:
        """This call's share of the page server's counters (`stats`): faults served, the
        system calls the sandbox blocked and those left out of its list."""
        if stats is None:
            return {"served": 0, "bytes": 0}, [], {}
        try:
            faults = self.per_call.take_faults(stats)
            blocked, left_out = self.per_call.take_blocked(self.proc, stats)
        except Exception:  # the process is gone and took its counters along
            return {"served": 0, "bytes": 0}, [], {}
        return faults, blocked, left_out


_PROCESS_ENDED = "The process has ended"
EXITED = "The program being debugged exited while in a function called from GDB."
SERVER_ENDED = "ttd-pageserver ended"  # how remat's messages start when the server is gone


def _ended(pid: int) -> bool:
    """The process has ended (a zombie, or reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _exited(outcome: Outcome, pid: int) -> Outcome:
    """A process of several threads that ended in a call: the threads kept stopped
    (scheduler-locking) end as zombies that gdbserver, their tracer, never reaps, and
    GDB may tell "signaled" without a signal. Without gdbserver they are reaped: the
    page server learns how the process ended (_with_wait_status says it)."""
    kill_gdbserver(pid)
    if outcome.status == "exited" or outcome.signal is not None:
        return outcome
    return Outcome("exited", error=EXITED, resumed=outcome.resumed)


def _with_wait_status(outcome: Outcome, wait_status: int | None) -> Outcome:
    """A call whose process GDB saw exit, told by the process's wait status (from the
    page server): killed by a signal nobody can catch (SIGKILL from outside), or the
    exit code when GDB's event had none."""
    if outcome.status != "exited" or wait_status is None:
        return outcome
    if os.WIFSIGNALED(wait_status):
        name = signal.Signals(os.WTERMSIG(wait_status)).name
        return Outcome(
            "signalled", signal=name, error=f"The process was killed by {name} during the call."
        )
    if outcome.exit_code is None and os.WIFEXITED(wait_status):
        outcome.exit_code = os.WEXITSTATUS(wait_status)
        if outcome.error == EXITED:
            outcome.error += f" (exit code {outcome.exit_code})"
    return outcome


def _stopped_by_sandbox(blocked: list[dict]) -> str:
    """What to say of a call that SIGSYS ended with the sandbox on: the filter ends a
    process for the system calls it does not answer (those of another ABI: int $0x80,
    x32), naming them when the page server listed them."""
    other_abi = [e["name"] for e in blocked if e["name"].startswith(("i386 ", "x32 "))]
    what = f" ({', '.join(other_abi)})" if other_abi else " (int $0x80 or x32)"
    return (
        "The call was stopped by the sandbox (SIGSYS): it made a system call of "
        f"another ABI{what}, which the sandbox refuses."
    )


def _server_error(message: str, proc) -> str | None:
    """The error to report when the page server could not say what the call wrote:
    None when only the process ended (the call exited or was killed, reported as
    such), else the server's own one-line message, or that it is gone."""
    if message.startswith(_PROCESS_ENDED):
        return None
    if message.startswith(SERVER_ENDED):
        return (
            f"The page server (pid {getattr(proc, 'server_pid', '?')}) ended during the "
            "call: what the call wrote is unknown."
        )
    return message
