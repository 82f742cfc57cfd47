"""The temporary GDB inferior: a rematerialized process attached through gdbserver,
apart from the user's own inferior.

    add-inferior -no-connection; inferior N; set sysroot /; file EXE
    target remote | LD_PRELOAD=libttdmem.so gdbserver - --attach PID
    (GDB finds the libraries at their recorded addresses from the recorded
     auxv and r_debug; files come from the local disk; gdbserver's log goes to
     the call session's directory, at most LOG_LIMIT_BYTES)
    ... calls, with the inferior selected for their length ...
    kill (never detach: gdbserver re-delivers the call's last stop signal on
    detach), remove-inferiors N, back to the user's inferior, thread and frame.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import shutil
import signal
import time

import gdb

from gdb_plugin import report
from gdb_plugin.errors import SessionError
from gdb_plugin.gdb_settings import (
    ATTACH_SETTINGS,
    CALL_SETTINGS,
    STEP_SETTINGS,
    STOP_ON_SIGINT,
    SWALLOW_SIGSTOP,
    GdbSettings,
    quietly,
)
from gdb_plugin.watchdog import Watchdog, kill_gdbserver

LOG_LIMIT_BYTES = 1 << 20  # gdbserver's log: RLIMIT_FSIZE, writes past it fail with EFBIG
# Bounds on GDB's waits for gdbserver (it attaches in 0.1-0.5 s, kills at once): past
# them gdbserver is ended, so that GDB gives up (gdb_plugin/watchdog.py)
ATTACH_LIMIT_S = 60.0
KILL_LIMIT_S = 10.0


class TempInferior:
    """A GDB inferior attached to process PID through gdbserver, apart from the user's.

    attach() leaves the user's inferior selected (or, keep_selected=True for ttd
    goto, the new one); `with selected():` switches to it for a block, with the call
    settings; close() kills the process, removes the inferior and gives the user
    back their selection and settings.
    """

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir  # the call session's directory: gdbserver.log goes there
        self.num: int | None = None
        self.pid = 0  # the process gdbserver attaches to
        self._user: Selection | None = None
        self._lifetime: list[GdbSettings] = []  # settings kept while it exists (ttd goto)
        self.gdbserver = ""
        self.gdbserver_log = ""
        self.resumed = False  # resumed by a call or the stub's routine since the attach
        # where GDB finds the recorded libraries and debug files (gdb_plugin/files.py):
        # applied with ATTACH_SETTINGS, put back with them
        self.symbol_settings: list[tuple[str, str]] = []

    def _save_user(self) -> None:
        self._user = Selection()

    def _restore_user(self) -> None:
        if self._user is not None:
            self._user.restore()

    def attach(
        self, pid: int, exe_path: str | None, preload: str | None, keep_selected: bool = False
    ) -> dict:
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
        call = GdbSettings(CALL_SETTINGS, signals=[SWALLOW_SIGSTOP])
        call.apply()
        self._lifetime = [call]  # until the end of connect, or of the goto inferior
        self.num = _add_inferior()
        gdb.execute(f"inferior {self.num}", to_string=True)
        # set here: the user's libraries stay as read
        attach = GdbSettings(ATTACH_SETTINGS + self.symbol_settings)
        attach.apply()
        self._lifetime.append(attach)
        t0 = time.perf_counter()
        if exe_path:
            if report.has_control(exe_path):  # the rest of the line would be a command
                raise SessionError(
                    f"Refused to load {exe_path!r}: its path holds control characters."
                )
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
        self.gdbserver_log = os.path.join(self.log_dir, "gdbserver.log")
        env = f"LD_PRELOAD={shlex.quote(preload)} " if preload else ""
        command = (
            f"target remote | {env}exec {shlex.quote(gdbserver)} "
            f"- --attach {pid} 2>{shlex.quote(self.gdbserver_log)}"
        )
        self.pid = pid
        with (
            _log_limit(),
            Watchdog([(ATTACH_LIMIT_S, "gdbserver", lambda: kill_gdbserver(pid))]) as dog,
        ):
            try:
                gdb.execute(command, to_string=True)
            except gdb.error as exc:
                reason = (
                    f"gdbserver did not attach within {ATTACH_LIMIT_S:g} s"
                    if dog.taken
                    else str(exc)
                )
                raise SessionError(
                    f"Cannot attach to the process at this tick: {reason} ({self._log_tail()})"
                ) from None

    def _restore_settings(self) -> None:
        while self._lifetime:
            group = self._lifetime.pop()
            if group.values[: len(ATTACH_SETTINGS)] == ATTACH_SETTINGS:
                _in_scratch_inferior(group.restore)
            else:
                group.restore()

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
        quietly(f"inferior {self.num}")

    def mark_resumed(self) -> None:
        self.resumed = True

    @contextlib.contextmanager
    def selected(self):
        """The temporary inferior selected, with what a call needs, for a block: only
        unwindonsignal (thread switches from Python print nothing, and nothing asks),
        SIGINT stopping the call, and the SIGSTOP handling while a thread still holds
        the SIGSTOP of gdbserver's attach (see attach_stop_pending)."""
        settings = None
        if not self._lifetime:
            swallow = attach_stop_pending(self.pid)
            signals = [STOP_ON_SIGINT] + ([SWALLOW_SIGSTOP] if swallow else [])
            settings = GdbSettings(STEP_SETTINGS, signals=signals)
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
                    _kill_bounded(self.pid)
        finally:
            try:
                self._restore_user()
                gdb.execute(f"remove-inferiors {self.num}", to_string=True)
            finally:
                self.num = None
                settings.restore()
                self._restore_settings()


class Selection:
    """The selected inferior, thread and frame, to select again later: a thread switch
    alone when there is a thread (quieter under MI than the `inferior` command)."""

    def __init__(self) -> None:
        self.num = gdb.selected_inferior().num
        self.thread = gdb.selected_thread()
        try:
            self.frame = gdb.selected_frame() if self.thread is not None else None
        except gdb.error:
            self.frame = None

    def restore(self) -> None:
        if self.thread is not None and self.thread.is_valid():
            self.thread.switch()
            if self.frame is not None and self.frame.is_valid():
                self.frame.select()
        else:
            quietly(f"inferior {self.num}")


def _add_inferior() -> int:
    """A new empty inferior (no connection); its number."""
    before = {inf.num for inf in gdb.inferiors()}
    gdb.execute("add-inferior -no-connection", to_string=True)
    return max({inf.num for inf in gdb.inferiors()} - before)


def _in_scratch_inferior(action) -> None:
    """action() with an empty inferior selected, then the selection as it was.

    For a sysroot change: GDB then reloads the current inferior's libraries and re-sets
    every breakpoint. Done in the user's inferior, stopped at a breakpoint of theirs, it
    left GDB warning "location number not found for breakpoint N" after every command
    (the thread's stop still names the replaced locations); in the temporary inferior it
    would read its libraries again through gdbserver."""
    selection = Selection()
    num = _add_inferior()
    try:
        quietly(f"inferior {num}")
        action()
    finally:
        selection.restore()
        gdb.execute(f"remove-inferiors {num}", to_string=True)


def _kill_bounded(pid: int) -> None:
    """GDB's `kill` of the process through gdbserver; gdbserver is ended when it does
    not answer within KILL_LIMIT_S (it can be stuck on a page that never comes)."""
    with Watchdog([(KILL_LIMIT_S, "gdbserver", lambda: kill_gdbserver(pid))]):
        try:
            gdb.execute("kill", to_string=True)
        except gdb.error:
            pass  # already gone, or gdbserver ended


@contextlib.contextmanager
def _log_limit():
    """For the block (GDB starting gdbserver): GDB's RLIMIT_FSIZE at LOG_LIMIT_BYTES and
    SIGXFSZ ignored, which gdbserver inherits, so its log is bounded and a write past
    the limit fails with EFBIG instead of ending it. GDB's own are put back at once (it
    writes no file meanwhile); no process is started for it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = LOG_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(LOG_LIMIT_BYTES, hard)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _quote(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


SIGSTOP_BIT = 1 << (signal.SIGSTOP - 1)


def attach_stop_pending(pid: int) -> bool:
    """Whether a thread of process `pid` (stopped, traced by gdbserver) holds a SIGSTOP
    that no one has taken yet. The process is in a group stop when gdbserver attaches:
    the kernel turns each thread's group stop into a ptrace stop at once and the
    attach's own SIGSTOP stays queued to the thread until it next runs, where GDB
    would report it as a signal in the call. Each thread holds one until its first
    resume (a call on another thread, the stub's routine after a move): asked of the
    kernel, not counted. A process that is gone holds none."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(_pending(pid, tid) & SIGSTOP_BIT for tid in tids)


def _pending(pid: int, tid: str) -> int:
    """The thread's own pending signals and the process's shared ones, as a mask."""
    mask = 0
    try:
        with open(f"/proc/{pid}/task/{tid}/status") as status:
            for line in status:
                if line.startswith(("SigPnd:", "ShdPnd:")):
                    mask |= int(line.split()[1], 16)
    except (OSError, ValueError):
        return 0
    return mask
