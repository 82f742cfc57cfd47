"""One rematerialized process as a temporary GDB inferior: attach, call, report, tear down.

    rematerialize(db, tick, tid) ─▶ stopped process (pid, mem_preload)
      add-inferior -no-connection; inferior N; set sysroot /; file EXE
      target remote | LD_PRELOAD=libttdmem.so gdbserver - --attach PID
      (GDB finds the libraries at their recorded addresses from the recorded
       auxv and r_debug; files come from the local disk)
    clear_written(); call EXPR; written_pages() ─▶ report
    kill (never detach: gdbserver re-delivers the call's last stop signal on
    detach), remove-inferiors N, back to the user's inferior, thread and frame.

A CallSession can stay alive between calls at the same tick: after each call
the pages whose bytes changed are written back from the recording and the
written set is cleared, so every call starts from the recorded state. When
that is not possible (the call mapped memory, crashed, or timed out) the
session closes itself.

The report itself is gdb_plugin/report.py (pure), the names in it gdb_plugin/symbolize.py.
"""
from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import struct
import threading
import time
from dataclasses import dataclass, field

import gdb

from gdb_plugin import report, symbolize
from snapshotdb.errors import RecordingError

# Settings of every call, changed by `set ttd sandbox|timeout|tracker`
# (gdb_plugin/commands/ttd_settings.py) and by call-at-time's options.
SANDBOX = True  # the seccomp sandbox (DESIGN.md "Containment")
TIMEOUT_S: float | None = 10.0  # None: no limit
TRACKER = "auto"
TRACKERS = ("auto", "wp-async", "diff")

SANDBOX_OFF_WARNING = ("warning: the sandbox is off: the called code can change files, "
                       "signal and start processes, and reach the network.")
DIFF_TRACKER_NOTE = report.DIFF_TRACKER_NOTE
# signals whose siginfo carries the faulting address (si_addr)
FAULT_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP")
BACKTRACE_FRAMES = 32

# struct user_regs_struct (sys/user.h): 27 unsigned longs
_GPREGS = struct.Struct("<27Q")
_RSP, _FS_BASE = 19, 21

def _where_stopped() -> str:
    """'at 0x401136 in f' for the newest frame, before GDB unwinds the call."""
    try:
        frame = gdb.newest_frame()
        return f"at {frame.pc():#x} in {frame.name() or '??'}"
    except gdb.error:
        return "at an unknown place"


def _frame_line(level: int, frame) -> str:
    """'#1  0x401136 in f at t.c:12' (GDB's backtrace, without arguments)."""
    line = f"#{level:<2} {frame.pc():#x} in {frame.name() or '??'}"
    try:
        sal = frame.find_sal()
        if sal.symtab is not None and sal.line:
            line += f" at {sal.symtab.filename}:{sal.line}"
    except gdb.error:
        pass
    return line


def _backtrace(limit: int = BACKTRACE_FRAMES) -> list[str]:
    """The stopped thread's frames, newest first, down to the call's dummy frame
    (what lies below it is GDB's, not the call's)."""
    lines: list[str] = []
    try:
        frame = gdb.newest_frame()
        while frame is not None and len(lines) < limit:
            if frame.type() == gdb.DUMMY_FRAME:
                break
            lines.append(_frame_line(len(lines), frame))
            frame = frame.older()
    except gdb.error:
        pass
    return lines


def _fault_address() -> int | None:
    """si_addr of the signal the thread stopped with ($_siginfo), or None."""
    try:
        return int(gdb.parse_and_eval("$_siginfo._sifields._sigfault.si_addr"))
    except (gdb.error, ValueError):
        return None


_VALUE_RE = re.compile(r"^\$(\d+) = (.*?)\n?\Z", re.DOTALL)


class SessionError(Exception):
    """A call-at-time setup or teardown problem; one-line message for the user."""


@dataclass
class TickInfo:
    """What the report needs from the recording at one tick (read once per session)."""

    db_path: str
    tick: int
    tid: int
    exe_path: str
    build_id: str | None
    regions: list[report.Region]
    rsp: int
    fs_base: int
    libraries: list[tuple[int, str]] = field(default_factory=list)  # (load address, path)
    engine: object = field(default=None, repr=False)  # read-only engine on db_path
    file_warnings: list[str] | None = None  # build-id checks, made once per tick


@dataclass
class CallResult:
    tick: int
    expr: str
    status: str  # returned | signalled | exited | timeout | error
    value: str
    history: str  # "$N = value" line as GDB printed it, or "" for void
    signal: str | None
    error: str | None
    pages: list[report.DirtiedPage]
    stdout: str
    stderr: str
    timings_ms: dict
    faults: dict
    warnings: list[str] = field(default_factory=list)
    blocked_syscalls: list[dict] = field(default_factory=list)  # [{"name", "count", "detail"}]
    fault_address: int | None = None  # si_addr of a crash
    backtrace: list[str] = field(default_factory=list)  # at a crash or a timeout
    exit_code: int | None = None  # status exited
    tracker: str = "wp-async"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return report.report_json(
            tick=self.tick, expr=self.expr, status=self.status, value=self.value,
            signal=self.signal, pages=self.pages, stdout=self.stdout, stderr=self.stderr,
            blocked_syscalls=self.blocked_syscalls, error=self.error,
            timings_ms=self.timings_ms, faults=self.faults, fault_address=self.fault_address,
            backtrace=self.backtrace, exit_code=self.exit_code, tracker=self.tracker,
            notes=self.notes)


_engines: dict[tuple, object] = {}
_owned: set[int] = set()  # ids of the engines opened (and so disposed) here


def engine_for(db_path: str):
    """A read-only engine on the recording, kept across calls (opening one checks the
    schema, a few milliseconds); a file replaced at the same path gets a new one."""
    from snapshotdb.db import open_engine

    try:
        key = (str(db_path), os.stat(db_path).st_ino)
    except OSError:
        key = (str(db_path), None)
    engine = _engines.get(key)
    if engine is None:
        engine = _engines[key] = open_engine(db_path, readonly=True)
        _owned.add(id(engine))
    return engine


def use_engine(db_path: str, engine) -> None:
    """Read `db_path` through `engine` (the open recording's, from `ttd open`) rather
    than opening another one."""
    try:
        key = (str(db_path), os.stat(db_path).st_ino)
    except OSError:
        return
    _engines.setdefault(key, engine)


def dispose_engines() -> None:
    """Forget every engine; dispose those opened here (not the open recording's)."""
    engines = list(_engines.values())
    _engines.clear()
    for engine in engines:
        if id(engine) in _owned:
            _owned.discard(id(engine))
            engine.dispose()
    _tick_infos.clear()


_tick_infos: dict[tuple, TickInfo] = {}


def read_tick_info(db_path: str, tick: int, tid: int | None) -> TickInfo:
    """Layout, registers and executable at `tick`; raises snapshotdb errors (one line).
    A snapshot never changes once written, so each is read once per GDB session."""
    engine = engine_for(db_path)
    key = (id(engine), tick, tid)
    info = _tick_infos.get(key)
    if info is None:
        info = _tick_infos[key] = _read_tick_info(engine, db_path, tick, tid)
    return info


def _read_tick_info(engine, db_path: str, tick: int, tid: int | None) -> TickInfo:
    from sqlalchemy.orm import Session

    from snapshotdb import queries

    with Session(engine) as session:
        snap = queries.snapshot_at(session, tick)
        thread = queries.thread_at(snap, tid)
        rec = queries.recording(session)
        regs = _GPREGS.unpack_from(thread.gpregs)
        libraries = [(m.start, m.path) for m in snap.mappings
                     if m.offset == 0 and m.path.startswith("/") and m.path != rec.exe_path]
        return TickInfo(db_path=str(db_path), tick=tick, tid=thread.tid,
                        exe_path=rec.exe_path, build_id=rec.build_id,
                        regions=report.regions_of(snap.mappings),
                        rsp=regs[_RSP], fs_base=regs[_FS_BASE],
                        libraries=sorted(set(libraries)), engine=engine)


def recorded_pages(engine, tick: int, rec_pages: list[int]) -> dict[int, bytes]:
    """The recorded bytes of each page at `tick`."""
    from sqlalchemy.orm import Session

    from snapshotdb import queries

    with Session(engine) as session:
        return {p: queries.page_at(session, p, tick) for p in rec_pages}


def read_pages(pid: int, rec_pages: list[int]) -> dict[int, bytes]:
    """Current bytes of pages of a stopped process; written pages are present, so
    /proc/PID/mem reads them without a fault. Unreadable pages read as empty."""
    out = {}
    fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    try:
        for rec_page in rec_pages:
            try:
                out[rec_page] = os.pread(fd, report.PAGE_SIZE, rec_page)
            except OSError:
                out[rec_page] = b""
    finally:
        os.close(fd)
    return out


def write_pages(pid: int, contents: dict[int, bytes]) -> None:
    """Write page contents back through /proc/PID/mem (works on read-only pages too)."""
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    try:
        for rec_page, data in contents.items():
            os.pwrite(fd, data, rec_page)
    finally:
        os.close(fd)


# --- GDB settings we change while a temporary inferior exists -------------------------

def _sigstop_handling() -> str:
    """'stop print pass' style words for SIGSTOP as GDB has them now."""
    out = gdb.execute("info signals SIGSTOP", to_string=True)
    for line in out.splitlines():
        if line.startswith("SIGSTOP"):
            flags = line.split()[1:4]
            words = [("stop" if flags[0] == "Yes" else "nostop"),
                     ("print" if flags[1] == "Yes" else "noprint"),
                     ("pass" if flags[2] == "Yes" else "nopass")]
            return " ".join(words)
    return "stop print pass"


class GdbSettings:
    """Global GDB settings changed for a while, and put back exactly as they were.

    While a call runs (CALL_SETTINGS):
    - unwindonsignal on: a call that crashes unwinds instead of leaving GDB in it;
    - SIGSTOP nostop/nopass: the rematerialized process is in a group stop; after
      gdbserver attaches, the first resume reports a SIGSTOP that must be swallowed;
    - suppress-cli-notifications on: no "[Switching to inferior ...]" noise;
    - confirm off: kill and remove-inferiors never ask.
    While attaching (ATTACH_SETTINGS): sysroot "/", library files from the local disk
    (0.4 s attach instead of 0.95 s). It is put back once the user's inferior is
    selected again (GDB re-reads the current inferior's libraries on a sysroot change).
    A `ttd goto` inferior keeps both until it closes: the user resumes it at will.
    """

    def __init__(self, values: list[tuple[str, str]], sigstop: bool = False) -> None:
        self.values = values
        self.sigstop = sigstop
        self.saved: list[tuple[str, str]] = []
        self.saved_sigstop: str | None = None

    def apply(self) -> None:
        for name, value in self.values:
            self.saved.append((name, _param_text(name)))
            gdb.execute(f"set {name} {value}", to_string=True)
        if self.sigstop:
            self.saved_sigstop = _sigstop_handling()
            gdb.execute("handle SIGSTOP nostop noprint nopass", to_string=True)

    def restore(self) -> None:
        if self.saved_sigstop is not None:
            gdb.execute(f"handle SIGSTOP {self.saved_sigstop}", to_string=True)
            self.saved_sigstop = None
        while self.saved:  # reverse order: suppress-cli-notifications (first set) last
            name, value = self.saved.pop()
            gdb.execute(f"set {name} {value}".rstrip(), to_string=True)


CALL_SETTINGS = [("suppress-cli-notifications", "on"), ("unwindonsignal", "on"),
                 ("confirm", "off")]
STEP_SETTINGS = [("unwindonsignal", "on")]  # for each call into a process already set up
ATTACH_SETTINGS = [("sysroot", "/")]


def _param_text(name: str) -> str:
    value = gdb.parameter(name)
    if isinstance(value, bool):
        return "on" if value else "off"
    return "" if value is None else str(value)


# --- the temporary inferior -----------------------------------------------------------

class TempInferior:
    """A GDB inferior attached to process PID through gdbserver, apart from the user's.

    attach() leaves the user's inferior selected (or, keep_selected=True for ttd
    goto, the new one); `with selected():` switches to it for a block, with the call
    settings; close() kills the process, removes the inferior and gives the user
    back their selection and settings.
    """

    def __init__(self) -> None:
        self.num: int | None = None
        self._user: tuple | None = None
        self._lifetime: list[GdbSettings] = []  # settings kept while it exists (ttd goto)
        self.gdbserver = ""
        self.gdbserver_log = ""
        self.resumed = False  # the first resume after attach reports the pending SIGSTOP

    def _save_user(self) -> None:
        inferior = gdb.selected_inferior()
        thread = gdb.selected_thread()
        try:
            frame = gdb.selected_frame() if thread is not None else None
        except gdb.error:
            frame = None
        self._user = (inferior.num, thread, frame)

    def _restore_user(self) -> None:
        """Select the user's inferior, thread and frame again; a thread switch alone
        when there is a thread (quieter under MI than the `inferior` command)."""
        if self._user is None:
            return
        num, thread, frame = self._user
        if thread is not None and thread.is_valid():
            thread.switch()
            if frame is not None and frame.is_valid():
                frame.select()
        else:
            _quietly(f"inferior {num}")

    def attach(self, pid: int, exe_path: str | None, preload: str | None,
               keep_selected: bool = False) -> dict:
        """Attach to `pid`; returns timings in ms: {"attach": ..., "symbols": ...}."""
        timings = self.prepare(exe_path)
        timings.update(self.connect(pid, preload, keep_selected))
        return timings

    def prepare(self, exe_path: str | None) -> dict:
        """The new inferior with the executable's symbols, before there is a process
        (so it can overlap the rematerialization); the inferior stays selected."""
        gdbserver = shutil.which("gdbserver")
        if gdbserver is None:
            raise SessionError("gdbserver is not installed: apt-get install gdbserver")
        self.gdbserver = gdbserver
        self._save_user()
        settings = [GdbSettings(CALL_SETTINGS, sigstop=True), GdbSettings(ATTACH_SETTINGS)]
        for group in settings:
            group.apply()
        self._lifetime = settings  # until the end of connect, or of the goto inferior
        before = {inf.num for inf in gdb.inferiors()}
        gdb.execute("add-inferior -no-connection", to_string=True)
        self.num = max({inf.num for inf in gdb.inferiors()} - before)
        gdb.execute(f"inferior {self.num}", to_string=True)
        t0 = time.perf_counter()
        if exe_path:
            gdb.execute(f"file {_quote(exe_path)}", to_string=True)
        return {"symbols": (time.perf_counter() - t0) * 1e3}

    def connect(self, pid: int, preload: str | None, keep_selected: bool = False) -> dict:
        """gdbserver attaches to `pid`; then the user's inferior is selected again (or
        this one stays selected, keep_selected, for ttd goto)."""
        t0 = time.perf_counter()
        self._target_remote(self.gdbserver, pid, preload)
        t1 = time.perf_counter()
        if not keep_selected:
            self._restore_user()
            self._restore_settings()
        return {"attach": (t1 - t0) * 1e3}

    def _target_remote(self, gdbserver: str, pid: int, preload: str | None) -> None:
        self.gdbserver_log = f"/tmp/ttd-gdbserver-{os.getpid()}-{pid}.log"
        env = f"LD_PRELOAD={shlex.quote(preload)} " if preload else ""
        command = (f"target remote | {env}exec {gdbserver} - --attach {pid} "
                   f"2>{self.gdbserver_log}")
        try:
            gdb.execute(command, to_string=True)
        except gdb.error as exc:
            raise SessionError(f"Cannot attach to the process at this tick: {exc} "
                               f"({self._log_tail()})") from exc

    def _restore_settings(self) -> None:
        while self._lifetime:
            self._lifetime.pop().restore()

    def _log_tail(self) -> str:
        try:
            with open(self.gdbserver_log) as f:
                lines = [line.strip() for line in f if line.strip()]
        except OSError:
            return "no gdbserver output"
        return lines[-1] if lines else "no gdbserver output"

    def _select(self) -> None:
        for inferior in gdb.inferiors():
            if inferior.num == self.num and inferior.threads():
                inferior.threads()[0].switch()
                return
        _quietly(f"inferior {self.num}")

    def mark_resumed(self) -> None:
        self.resumed = True

    @contextlib.contextmanager
    def selected(self):
        """The temporary inferior selected, with what a call needs, for a block: only
        unwindonsignal (thread switches from Python print nothing, and nothing asks),
        and the SIGSTOP handling until the process has been resumed once."""
        settings = None
        if not self._lifetime:
            settings = GdbSettings(STEP_SETTINGS, sigstop=not self.resumed)
            settings.apply()
        try:
            self._select()
            yield
        finally:
            try:
                self._restore_user()
            finally:
                if settings is not None:
                    settings.restore()

    def close(self) -> None:
        """Kill the process (never detach), remove the inferior, restore the user."""
        if self.num is None:
            self._restore_settings()
            return
        settings = GdbSettings(CALL_SETTINGS)
        settings.apply()
        try:
            if any(inf.num == self.num for inf in gdb.inferiors()):
                self._select()
                if gdb.selected_inferior().pid:
                    try:
                        gdb.execute("kill", to_string=True)
                    except gdb.error:
                        pass  # already gone
        finally:
            try:
                self._restore_user()
                gdb.execute(f"remove-inferiors {self.num}", to_string=True)
            finally:
                self.num = None
                settings.restore()
                self._restore_settings()
                if self.gdbserver_log:
                    try:
                        os.unlink(self.gdbserver_log)
                    except OSError:
                        pass


def _quietly(command: str) -> None:
    """Run a command that would announce "[Switching to inferior ...]"."""
    quiet = GdbSettings([("suppress-cli-notifications", "on")])
    quiet.apply()
    try:
        gdb.execute(command, to_string=True)
    finally:
        quiet.restore()


def _quote(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- evaluation -----------------------------------------------------------------------

class UserBreakpointsDisabled:
    """Disable the user's breakpoints for the length of a call-at-time, then put back
    exactly those that were enabled: GDB's breakpoints apply to every inferior, and the
    user's `break f` must not stop a call of f in the past. The user's inferior is not
    resumed meanwhile, so its memory is not touched."""

    def __enter__(self):
        self.disabled = [bp for bp in gdb.breakpoints() if bp.enabled and bp.visible]
        for bp in self.disabled:
            bp.enabled = False
        return self

    def __exit__(self, *exc):
        for bp in self.disabled:
            if bp.is_valid():
                bp.enabled = True


@dataclass
class Outcome:
    """How a call ended: status returned | signalled | exited | timeout | error."""

    status: str
    history: str = ""  # "$N = value" as GDB printed it, "" for void
    value: str = ""
    signal: str | None = None
    error: str | None = None
    fault_address: int | None = None
    backtrace: list[str] = field(default_factory=list)
    exit_code: int | None = None


class _CallWatch:
    """What GDB's events tell about a running call: the signal it stopped with, where,
    the faulting address and the backtrace (taken before GDB unwinds the call), the
    exit code when the process ended, and whether the process was resumed at all."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.where = ""
        self.fault_address: int | None = None
        self.backtrace: list[str] = []
        self.exit_code: int | None = None
        self.resumed = False

    def on_cont(self, _event) -> None:
        self.resumed = True

    def on_stop(self, event) -> None:
        if not isinstance(event, gdb.SignalEvent):
            return
        self.signal = event.stop_signal
        self.where = _where_stopped()
        self.fault_address = _fault_address() if self.signal in FAULT_SIGNALS else None
        self.backtrace = _backtrace()

    def on_exit(self, event) -> None:
        code = getattr(event, "exit_code", None)
        self.exit_code = None if code is None else int(code)

    def __enter__(self):
        gdb.events.stop.connect(self.on_stop)
        gdb.events.cont.connect(self.on_cont)
        gdb.events.exited.connect(self.on_exit)
        return self

    def __exit__(self, *exc) -> None:
        gdb.events.stop.disconnect(self.on_stop)
        gdb.events.cont.disconnect(self.on_cont)
        gdb.events.exited.disconnect(self.on_exit)


def evaluate(expr: str, pid: int, timeout_s: float | None, on_resumed=None) -> Outcome:
    """Evaluate EXPR as GDB's `call` does.

    on_resumed() is called when the call resumed the process (an expression without
    a function call does not).
    A guard against hangs: after `timeout_s` the process gets SIGINT, which GDB
    stops on (SIGSTOP would be swallowed: see GdbSettings) and, with unwindonsignal
    on, turns into an unwound, abandoned call.
    """
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        try:
            os.kill(pid, signal.SIGINT)
        except OSError:
            pass

    timer = threading.Timer(timeout_s or 0, interrupt)  # None: no limit
    timer.daemon = True
    with _CallWatch() as watch:
        if timeout_s:
            timer.start()
        try:
            out = gdb.execute(f"call {expr}", to_string=True)
        except gdb.error as exc:
            return _failed(str(exc), watch, timed_out.is_set(), timeout_s)
        finally:
            timer.cancel()
            if watch.resumed and on_resumed is not None:
                on_resumed()
    match = _VALUE_RE.match(out)
    if match:
        return Outcome("returned", out.rstrip("\n"), match.group(2))
    return Outcome("returned", out.rstrip("\n"))


def _failed(gdb_message: str, watch: _CallWatch, timed_out: bool, timeout_s: float) -> Outcome:
    """The Outcome of a call GDB answered with an error."""
    message = gdb_message.splitlines()[0] if gdb_message else "error"
    if timed_out and watch.signal == "SIGINT":
        return Outcome("timeout", error=f"The call did not return within {timeout_s:g} s: "
                       f"interrupted {watch.where}.", backtrace=watch.backtrace)
    if "signaled while in a function called from GDB" in message:
        if watch.signal:
            message += f" ({watch.signal} {watch.where}"
            if watch.fault_address is not None:
                message += f", fault address {watch.fault_address:#x}"
            message += ")"
        return Outcome("signalled", signal=watch.signal, error=message,
                       fault_address=watch.fault_address, backtrace=watch.backtrace)
    if "exited while in a function called from GDB" in message:
        if watch.exit_code is not None:
            message += f" (exit code {watch.exit_code})"
        return Outcome("exited", error=message, exit_code=watch.exit_code)
    return Outcome("error", error=message)


# --- a session at one tick ------------------------------------------------------------

class _Starting(threading.Thread):
    """rematerialize(...).__enter__() in a thread; result() gives the process or raises
    SessionError with the page server's one-line message."""

    def __init__(self, remat_cm) -> None:
        super().__init__(daemon=True, name="ttd-rematerialize")
        self.remat_cm = remat_cm
        self.proc = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.proc = self.remat_cm.__enter__()
        except BaseException as exc:  # handed to the GDB thread in result()
            self.error = exc

    def wait(self) -> None:
        self.join()

    def result(self):
        self.join()
        if self.error is not None:
            if isinstance(self.error, RecordingError):  # RematerializeError and friends
                raise SessionError(str(self.error)) from self.error
            raise self.error
        return self.proc


class CallSession:
    """The rematerialized process at (db, tick, tid), attached as a temporary inferior."""

    def __init__(self, info: TickInfo, sandbox: bool | None = None,
                 tracker: str | None = None) -> None:
        self.info = info
        self.sandbox = SANDBOX if sandbox is None else sandbox
        self.tracker = TRACKER if tracker is None else tracker  # as asked: auto, ...
        self.tracker_used = "wp-async"  # what the page server runs
        self.regions = info.regions  # and the stack's room to grow, once there is a process
        self.inferior = TempInferior()
        self._remat_cm = None
        self.proc = None
        self.open_ms: dict = {}
        self.warnings: list[str] = []
        self._stdout_seen = 0
        self._stderr_seen = 0
        self._faults_seen = {"served": 0, "bytes": 0}
        self._blocked_seen: dict[tuple, int] = {}
        self.calls = 0
        self.requested_tid: int | None = info.tid
        # the recorded bytes at the tick never change: each page is read once per session
        self._old_pages: dict[int, bytes] = {}
        # what symbolize learns that a reset cannot change (frames, TLS addresses)
        self.symbol_cache: dict = {}
        self._clean = False  # True right after a reset: the written set is empty
        self.reusable = False

    def matches(self, db_path: str, tick: int, tid: int | None, sandbox: bool | None = None,
                tracker: str | None = None) -> bool:
        """Same recording, tick and thread (None: the thread that stopped), same sandbox
        and tracker (None: the current settings)."""
        sandbox = SANDBOX if sandbox is None else sandbox
        tracker = TRACKER if tracker is None else tracker
        return (self.info.db_path == str(db_path) and self.info.tick == tick
                and tid in (self.requested_tid, self.info.tid)
                and (self.sandbox, self.tracker) == (sandbox, tracker))

    def old_pages(self, rec_pages: list[int]) -> dict[int, bytes]:
        missing = [p for p in rec_pages if p not in self._old_pages]
        if missing:
            self._old_pages.update(recorded_pages(self.info.engine, self.info.tick, missing))
        return {p: self._old_pages[p] for p in rec_pages}

    def open(self, keep_selected: bool = False) -> None:
        """Rematerialize and attach; keep_selected leaves the new inferior selected (goto).

        The page server builds the process in a thread while GDB prepares the new
        inferior and reads the executable's symbols: both take milliseconds, and the
        thread mostly waits on the server (no GIL held).
        """
        from gdb_plugin.remat import rematerialize

        t0 = time.perf_counter()
        self._remat_cm = rematerialize(self.info.db_path, self.info.tick, tid=self.info.tid,
                                       sandbox=self.sandbox, tracker=self.tracker)
        starting = _Starting(self._remat_cm)
        try:  # from here on, any failure must end the process and the page server
            exe = self._check_files()
            self.open_ms.update(self.inferior.prepare(exe))
            self.proc = starting.result()
            self.open_ms["rematerialize"] = (time.perf_counter() - t0) * 1e3
            self._note_process()
            self.open_ms.update(self.inferior.connect(
                self.proc.pid, getattr(self.proc, "mem_preload", None), keep_selected))
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
            self.regions = sorted(self.info.regions + [report.Region(*growth, "rw-p", "[stack]")],
                                  key=lambda r: r.start)
        notice = self.proc.notice  # "ttd: this kernel lacks ...": a warning here
        if notice:
            self.warnings.append("warning: " + notice.removeprefix("ttd: "))
        if not self.sandbox:
            self.warnings.append(SANDBOX_OFF_WARNING)

    def notes(self) -> list[str]:
        """What the report of every call here must say about how it was made."""
        return [DIFF_TRACKER_NOTE] if self.tracker_used == "diff" else []

    def _check_files(self) -> str | None:
        """The executable to load symbols from (None when missing); warnings about files
        that are missing or differ from the recorded ones (by build-id)."""
        exe = self.info.exe_path if os.path.exists(self.info.exe_path) else None
        if exe is None:
            self.warnings.append(f"warning: {self.info.exe_path} is missing: "
                                 "no symbols for the executable, memory is the recorded one.")
            return None
        if self.info.file_warnings is None:
            self.info.file_warnings = symbolize.build_id_warnings(self.info)
        self.warnings.extend(self.info.file_warnings)
        return exe

    def close(self) -> None:
        try:
            self.inferior.close()
        finally:
            if self._remat_cm is not None:
                cm, self._remat_cm = self._remat_cm, None
                cm.__exit__(None, None, None)

    def call(self, expr: str, timeout_s: float = 10.0) -> CallResult:
        """Evaluate EXPR at the tick; the temporary inferior is selected during the call.

        Afterwards self.reusable says whether the next call at this tick may use the
        process again: then the pages the call changed have been put back already.
        """
        timings = dict(self.open_ms) if self.calls == 0 else {
            "rematerialize": 0.0, "attach": 0.0, "symbols": 0.0}
        self.calls += 1
        self.reusable = False
        with self.inferior.selected():
            if not self._clean:
                self.proc.clear_written()
            self._clean = False
            t0 = time.perf_counter()
            with UserBreakpointsDisabled():
                outcome = evaluate(expr, self.proc.pid, timeout_s,
                                   on_resumed=self.inferior.mark_resumed)
            t1 = time.perf_counter()
            pages, server_error = self._report()
            if server_error is not None:  # the page server is gone or refused a page
                outcome = Outcome("error", error=server_error)
            if outcome.status == "exited":
                outcome = _with_wait_status(outcome, self._wait_status())
            t2 = time.perf_counter()
            if self._can_reset(outcome.status, pages):
                self._reset(pages)
        timings["call"] = (t1 - t0) * 1e3
        timings["report"] = (t2 - t1) * 1e3
        stdout, stderr = self._new_output()
        faults, blocked = self._new_stats()
        return CallResult(tick=self.info.tick, expr=expr, status=outcome.status,
                          value=outcome.value, history=outcome.history, signal=outcome.signal,
                          error=outcome.error, pages=pages, stdout=stdout, stderr=stderr,
                          timings_ms={k: round(v, 3) for k, v in timings.items()},
                          faults=faults, blocked_syscalls=blocked,
                          warnings=list(self.warnings) if self.calls == 1 else [],
                          fault_address=outcome.fault_address, backtrace=outcome.backtrace,
                          exit_code=outcome.exit_code, tracker=self.tracker_used,
                          notes=self.notes())

    def _wait_status(self) -> int | None:
        """The ended process's wait status, from the page server (its parent), which may
        learn of the end a moment after GDB did."""
        try:
            return self.proc.wait_exit(5.0)
        except RecordingError:
            return self.proc.exit_status

    def _can_reset(self, status: str, pages: list[report.DirtiedPage]) -> bool:
        """Whether putting back the changed pages restores the recorded state: not after a
        crash or a timeout, nor when the call mapped memory (brk, mmap)."""
        if status not in ("returned", "error"):
            return False
        return all(p.kind != "new-mapping" and len(p.new) == report.PAGE_SIZE for p in pages)

    def _reset(self, pages: list[report.DirtiedPage]) -> None:
        """Put back the recorded bytes of every page the call changed; forget the writes.
        Runs with the temporary inferior selected."""
        try:
            write_pages(self.proc.pid, {p.rec_addr: p.old for p in pages if p.changed})
            self.proc.clear_written()
            gdb.execute("maintenance flush dcache", to_string=True)
        except (OSError, gdb.error, RecordingError):
            return
        self._clean = True
        self.reusable = True

    def _report(self) -> tuple[list[report.DirtiedPage], str | None]:
        """The dirtied pages; none when the process is gone (the call made it exit).
        Second: the page server's error when it cannot tell (it ended, or stopped the
        process on a corrupt page), else None."""
        try:
            written = list(self.proc.written_pages())
            new = read_pages(self.proc.pid, written)
        except RecordingError as exc:
            return [], _server_error(str(exc), self.proc)
        except OSError:
            return [], None
        old = self.old_pages(written)
        pages = report.build_pages(written, self.regions, self.info.rsp,
                                   old.__getitem__, new.__getitem__, self.info.fs_base)
        symbolize.annotate(pages, self.proc.pid, self.info, self.symbol_cache)
        return pages, None

    def _new_output(self) -> tuple[str, str]:
        """What the call wrote to fds 1 and 2: the process is stopped (or gone), so its
        writes are complete; drain_output takes what the pipes still hold."""
        try:
            out, err = self.proc.drain_output(timeout=1.0)
        except Exception:  # output capture is best effort
            return "", ""
        new_out, new_err = out[self._stdout_seen:], err[self._stderr_seen:]
        self._stdout_seen, self._stderr_seen = len(out), len(err)
        return (new_out.decode(errors="replace"), new_err.decode(errors="replace"))

    def _new_stats(self) -> tuple[dict, list[dict]]:
        """This call's share of the page server's counters: faults served, and the system
        calls the sandbox blocked ([{"name", "count"}], when the sandbox is on)."""
        try:
            stats = self.proc.stats()
        except Exception:  # the process is gone and took its counters along
            return {"served": 0, "bytes": 0}, []
        served = int(stats.get("faults", stats.get("served", 0)))
        nbytes = int(stats.get("bytes", 0))
        faults = {"served": served - self._faults_seen["served"],
                  "bytes": nbytes - self._faults_seen["bytes"]}
        self._faults_seen = {"served": served, "bytes": nbytes}
        blocked_now = _blocked_counts(stats.get("blocked_syscalls"))
        blocked = [{"name": name, "count": count - self._blocked_seen.get((name, detail), 0),
                    "detail": detail}
                   for (name, detail), count in blocked_now.items()
                   if count > self._blocked_seen.get((name, detail), 0)]
        self._blocked_seen = blocked_now
        return faults, blocked


def _blocked_counts(blocked) -> dict[tuple, int]:
    """{(name, detail): count} from the page server's blocked_syscalls, a list of
    {"name", "count", "detail"} in the order met (or an older {name: count})."""
    if isinstance(blocked, dict):
        return {(name, None): int(count) for name, count in sorted(blocked.items())}
    counts: dict[tuple, int] = {}
    for entry in blocked or []:
        key = (entry["name"], entry.get("detail"))
        counts[key] = counts.get(key, 0) + int(entry.get("count", 1))
    return counts


_PROCESS_ENDED = "The process has ended"


def _with_wait_status(outcome: Outcome, wait_status: int | None) -> Outcome:
    """A call whose process GDB saw exit, told by the process's wait status (from the
    page server): killed by a signal nobody can catch (SIGKILL from outside), or the
    exit code when GDB's event had none."""
    if outcome.status != "exited" or wait_status is None:
        return outcome
    if os.WIFSIGNALED(wait_status):
        name = signal.Signals(os.WTERMSIG(wait_status)).name
        return Outcome("signalled", signal=name,
                       error=f"The process was killed by {name} during the call.")
    if outcome.exit_code is None and os.WIFEXITED(wait_status):
        outcome.exit_code = os.WEXITSTATUS(wait_status)
    return outcome


def _server_error(message: str, proc) -> str | None:
    """The error to report when the page server could not say what the call wrote:
    None when only the process ended (the call exited or was killed, reported as
    such), else the server's own one-line message, or that it is gone."""
    if message.startswith(_PROCESS_ENDED):
        return None
    if message.startswith("ttd-pageserver ended"):
        return (f"The page server (pid {getattr(proc, 'server_pid', '?')}) ended during the "
                "call: what the call wrote is unknown.")
    return message


# The session kept alive for repeated calls at the same tick, and the `ttd goto` one.
_cached: CallSession | None = None


def cached_session() -> CallSession | None:
    return _cached


def drop_cached() -> None:
    """Close the session kept for repeated calls, if any."""
    global _cached
    session, _cached = _cached, None
    if session is not None:
        session.close()


def call_at_time(db_path: str, tick: int, expr: str, tid: int | None = None,
                 timeout_s: float | None = None, sandbox: bool | None = None,
                 tracker: str | None = None) -> CallResult:
    """Rematerialize (or reuse), call EXPR, report; the user's inferior is left as it was.
    timeout_s, sandbox and tracker default to the `set ttd ...` settings."""
    global _cached
    timeout_s = TIMEOUT_S if timeout_s is None else timeout_s
    session = _cached
    if session is None or not session.matches(db_path, tick, tid, sandbox, tracker):
        info = read_tick_info(db_path, tick, tid)
        drop_cached()
        session = CallSession(info, sandbox, tracker)
        session.requested_tid = tid
        session.open()
    _cached = None
    try:
        result = session.call(expr, timeout_s)
    except BaseException:
        session.close()
        raise
    if session.reusable:
        _cached = session
    else:
        session.close()
    return result


# --- ttd goto -------------------------------------------------------------------------

_goto: CallSession | None = None


def goto(db_path: str, tick: int, tid: int | None = None) -> CallSession:
    """Open a session at `tick` and leave its inferior selected, until close_goto()."""
    global _goto
    info = read_tick_info(db_path, tick, tid)
    close_goto()
    drop_cached()
    new = CallSession(info)
    new.open(keep_selected=True)
    _goto = new
    return new


def goto_session() -> CallSession | None:
    return _goto


def close_goto() -> bool:
    """Close the `ttd goto` inferior (and any call session); False when none was open.

    `ttd close` gets here through gdb_plugin/commands/call_at_time.watch_recording.
    """
    global _goto
    drop_cached()
    session, _goto = _goto, None
    if session is None:
        return False
    session.close()
    return True


def close_all() -> None:
    """Close every temporary inferior and the engines on recordings (`ttd close`)."""
    close_goto()
    drop_cached()
    dispose_engines()


def kill_all() -> None:
    """GDB is exiting: kill the temporary inferiors (GDB would detach them) and
    end the rematerialized processes."""
    global _goto, _cached
    for sess in (_cached, _goto):
        if sess is None:
            continue
        try:
            sess.close()
        except Exception:  # GDB half gone: at least end the processes
            if sess._remat_cm is not None:
                cm, sess._remat_cm = sess._remat_cm, None
                try:
                    cm.__exit__(None, None, None)
                except Exception:
                    pass
    _goto = _cached = None
