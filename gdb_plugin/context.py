"""The one context of the ttd commands in a GDB session: the open recording, ttd's
settings, the live call sessions and the last call's result.

    Context
      recording   snapshotdb.db.Recording (read-only), from `ttd open`; None when closed
      settings    TtdSettings: sandbox, timeout, tracker (`set ttd ...`)
      ticks       TickCache: what each tick of the open recording holds, read once
      sessions    Sessions: the process kept for repeated calls, the `ttd goto` one
      last_result the last call-at-time's CallResult, for `info dirtied-pages`

gdb_plugin/commands/__init__.py makes one and hands it to every command. Closing
the recording (or opening another) ends its processes first. Importable without GDB
(the sessions import it when a call is made); SQLAlchemy is imported by `ttd open`.
"""

from __future__ import annotations

import os

from gdb_plugin.errors import NoRecordingOpen
from gdb_plugin.settings import TtdSettings


class Context:
    def __init__(self) -> None:
        self.settings = TtdSettings()
        self.recording = None  # snapshotdb.db.Recording
        self.ticks = None  # TickCache of the open recording
        self.last_result = None  # CallResult
        self._sessions = None
        self._writable = None  # the recording opened read-write by `ttd snapshot`
        self._writers: dict = {}  # pid -> snapshotdb.capture.LiveRecorder

    # -- the open recording ---------------------------------------------------------
    def open(self, name: str, create: bool = False) -> bool:
        """Open the recording `name` (a path or URL; with `create`, make it when
        missing) in place of the open one; return whether it is new. A missing file
        without `create` is an error: calls on a mistyped name must not quietly open an
        empty recording. Raises snapshotdb's RecordingError (one line)."""
        from snapshotdb.db import is_url, open_recording
        from snapshotdb.errors import RecordingNotFound

        url = is_url(name)
        if not url:
            name = os.path.abspath(os.path.expanduser(name))
        exists = url or os.path.exists(name)
        if not exists and not create:
            raise RecordingNotFound(
                f"No recording at '{name}': file not found. "
                'Use "ttd open --create DB" to start a new one.'
            )
        if create and (url or not exists):  # a URL's database gets its tables when it has none
            open_recording(name, create=True).close()
        recording = open_recording(name, readonly=True)
        self.close()
        from gdb_plugin.ticks import TickCache

        self.recording, self.ticks = recording, TickCache(recording)
        _load_call_modules()
        return not exists

    def close(self) -> bool:
        """End the processes of the open recording and close it; False when none was open."""
        if self.recording is None:
            return False
        recording, self.recording = self.recording, None
        try:
            self.sessions.close_all()
        finally:
            self.ticks = None
            self._close_writers()
            if self._writable is not None:
                self._writable.close()
                self._writable = None
            recording.close()
        return True

    def _close_writers(self) -> None:
        """Release every live recorder's write tracking (its userfaultfd) now."""
        writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()

    def require_recording(self):
        """The open recording, or NoRecordingOpen."""
        if self.recording is None:
            raise NoRecordingOpen()
        return self.recording

    def writer(self, pid: int):
        """The snapshot writer for live process `pid` (one per process, kept for speed);
        the recording is opened read-write on first use."""
        from snapshotdb.capture import writer_for_pid
        from snapshotdb.db import open_recording

        recording = self.require_recording()
        if self._writable is None:
            self._writable = open_recording(recording.location, readonly=False)
        if pid not in self._writers:
            self._close_writers()  # a new process: release the old one's tracking
            self._writers[pid] = writer_for_pid(self._writable.engine, pid)
        return self._writers[pid]

    # -- calls and goto ---------------------------------------------------------------
    @property
    def sessions(self):
        if self._sessions is None:
            from gdb_plugin.sessions import Sessions

            self._sessions = Sessions()
        return self._sessions

    def call(
        self,
        tick: int,
        expr: str,
        tid: int | None = None,
        timeout_s: float | None = None,
        sandbox: bool | None = None,
        tracker: str | None = None,
    ):
        """Call EXPR at `tick` (None for an option: the setting holds); the CallResult,
        kept as last_result. Raises RecordingError or SessionError (one line)."""
        self.require_recording()
        settings = self.settings
        info = self.ticks.get(tick, tid)
        result = self.sessions.call(
            info,
            expr,
            tid,
            settings.timeout_s if timeout_s is None else timeout_s,
            settings.sandbox if sandbox is None else sandbox,
            settings.tracker if tracker is None else tracker,
        )
        self.last_result = result
        return result

    def goto(self, tick: int, tid: int | None = None):
        """The CallSession of `ttd goto`, its inferior selected."""
        self.require_recording()
        info = self.ticks.get(tick, tid)
        return self.sessions.start_goto(info, self.settings.sandbox, self.settings.tracker)

    def forget_cached(self) -> None:
        """End the kept process and forget what was read of each tick (benchmarks)."""
        self.sessions.drop_kept()
        if self.ticks is not None:
            self.ticks.clear()

    def exiting(self) -> None:
        """GDB is exiting: end every process."""
        if self._sessions is not None:
            self._sessions.kill_all()


def _load_call_modules() -> None:
    """Import what a call needs (about 20 ms) with the recording, which already paid for
    SQLAlchemy, rather than in the first call: sourcing the plugin stays cheap, and the
    first call's time is the call's."""
    import gdb_plugin.remat  # noqa: F401
    import gdb_plugin.sessions  # noqa: F401
