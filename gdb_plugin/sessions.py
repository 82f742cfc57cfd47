"""The call sessions alive in this GDB: the one kept for repeated calls at a tick, and
the `ttd goto` one, which stays selected until the next goto or `ttd close`.

Each belongs to the Context (gdb_plugin/context.py), which passes the tick's
TickInfo and the settings of the call in; this module only decides which process a
call runs in and when a process ends.
"""

from __future__ import annotations

import time

from gdb_plugin.call_session import CallSession, _recording_error
from gdb_plugin.errors import SessionError
from gdb_plugin.result import CallResult
from gdb_plugin.ticks import TickInfo

# Signals of interval timers (alarm, setitimer): their default action ends the process
TIMER_SIGNALS = ("SIGALRM", "SIGVTALRM", "SIGPROF")
TIMER_NOTE = (
    "The process kept from an earlier call at this tick received {signal} from a "
    "timer that call set; this call was made again in a new process."
)
TIMER_SANDBOX_OFF_NOTE = (
    "The process kept from an earlier call at this tick received {signal}, "
    "maybe from a timer that call set; with the sandbox off the call is "
    "not made again."
)


class Sessions:
    def __init__(self) -> None:
        self.kept: CallSession | None = None  # for repeated calls at the same tick
        self.goto: CallSession | None = None  # the `ttd goto` inferior

    def call(
        self,
        info: TickInfo,
        expr: str,
        requested_tid: int | None,
        timeout_s: float | None,
        sandbox: bool,
        tracker: str,
    ) -> CallResult:
        """Call EXPR in the kept process when it is at this tick, thread, sandbox and
        tracker and still as recorded, else in a new one; keep the process when it can
        be reset. A call that a timer of an earlier call ended (SIGALRM, SIGVTALRM,
        SIGPROF in a reused process: interval timers cannot be seen from outside) is
        made again in a new process."""
        session = self.kept
        reused = (
            session is not None
            and session.reusable
            and session.matches(info.recording, info.tick, requested_tid, sandbox, tracker)
        )
        if session is not None and session.pending_signals():  # a timer it left fired
            reused = False
            session.movable = False
        rebuilt_ms = None
        if not reused:
            reused, rebuilt_ms = self._moved(info, requested_tid, sandbox, tracker)
        if not reused:
            t0 = time.perf_counter()
            self.drop_kept()
            session = self._new_session(info, sandbox, tracker, requested_tid)
            if rebuilt_ms is not None:
                rebuilt_ms = (time.perf_counter() - t0) * 1e3
        session = self.kept if reused else session
        self.kept = None
        result = self._call_in(session, expr, timeout_s)
        if rebuilt_ms is not None:  # a kept process could not be moved here
            result.timings_ms["rebuilt"] = round(rebuilt_ms, 3)
        if reused and result.status == "signalled" and result.signal in TIMER_SIGNALS:
            if not sandbox:  # its side effects would happen twice: said, not redone
                result.notes.append(TIMER_SANDBOX_OFF_NOTE.format(signal=result.signal))
                return result
            first = result.signal
            self.drop_kept()
            session = self._new_session(info, sandbox, tracker, requested_tid)
            result = self._call_in(session, expr, timeout_s)
            result.notes.append(TIMER_NOTE.format(signal=first))
        return result

    def _moved(
        self, info: TickInfo, requested_tid: int | None, sandbox: bool, tracker: str
    ) -> tuple[bool, float | None]:
        """Move the kept process to info's tick when it can be (replay.py). (True, None)
        when it was moved, (False, 0.0) when a kept process had to be given up,
        (False, None) when there was none to move."""
        from gdb_plugin import replay
        from gdb_plugin.remat.errors import MoveRefused

        session = self.kept
        if session is None:
            return False, None
        if (
            session.info.recording is not info.recording
            or (session.sandbox, session.tracker) != (sandbox, tracker)
            or replay.movable(session, info) is not None
        ):
            return False, 0.0
        try:
            session.move_to(info, requested_tid)
        except MoveRefused:
            return False, 0.0
        except (SessionError, _recording_error()):
            return False, 0.0  # not to be used any more: drop_kept() ends it
        return True, None

    @staticmethod
    def _new_session(
        info: TickInfo, sandbox: bool, tracker: str, requested_tid: int | None
    ) -> CallSession:
        session = CallSession(info, sandbox, tracker, requested_tid)
        session.open()
        return session

    def _call_in(self, session: CallSession, expr: str, timeout_s: float | None) -> CallResult:
        """The call in `session`; the session is kept when it can be reset, else closed."""
        try:
            result = session.call(expr, timeout_s)
        except BaseException:
            session.close()
            raise
        if session.reusable or session.movable:
            self.kept = session
        else:
            session.close()
        return result

    def start_goto(self, info: TickInfo, sandbox: bool, tracker: str) -> CallSession:
        """A session at the tick whose inferior stays selected, until close_goto(): the
        goto one moved there when it can be (the user did not resume it), else a new
        one; the recorded thread info.tid selected."""
        from gdb_plugin import replay
        from gdb_plugin.remat.errors import MoveRefused

        session = self.goto
        if (
            session is not None
            and session.info.recording is info.recording
            and (session.sandbox, session.tracker) == (sandbox, tracker)
            and session.moves_back()
            and replay.movable(session, info) is None
        ):
            try:
                session.move_to(info, info.tid)
            except MoveRefused:
                pass
            except (SessionError, _recording_error()):
                session.movable = False
            else:
                session.select_call_thread()
                return session
        self.close_goto()
        session = CallSession(info, sandbox, tracker, info.tid)
        session.open(keep_selected=True)
        session.select_call_thread()
        self.goto = session
        return session

    def with_symbols(self) -> CallSession | None:
        """A live temporary inferior that has the recorded program's symbols, if any."""
        for session in (self.kept, self.goto):
            if session is not None and session.inferior.num is not None:
                return session
        return None

    def inferior_nums(self) -> set[int]:
        """The GDB inferior numbers of the temporary inferiors alive."""
        return {
            s.inferior.num
            for s in (self.kept, self.goto)
            if s is not None and s.inferior.num is not None
        }

    def drop_kept(self) -> None:
        """Close the session kept for repeated calls, if any."""
        session, self.kept = self.kept, None
        if session is not None:
            session.close()

    def close_goto(self) -> bool:
        """Close the `ttd goto` inferior (and the kept session); False when none was open."""
        self.drop_kept()
        session, self.goto = self.goto, None
        if session is None:
            return False
        session.close()
        return True

    def close_all(self) -> None:
        self.close_goto()
        self.drop_kept()

    def kill_all(self) -> None:
        """GDB is exiting: kill the temporary inferiors (GDB would detach them) and end
        the rematerialized processes, even when GDB can no longer remove inferiors."""
        sessions = [s for s in (self.kept, self.goto) if s is not None]
        self.kept = self.goto = None
        for session in sessions:
            try:
                session.close()
            except Exception:  # GDB half gone: at least end the processes
                try:
                    session.end_process()
                except Exception:
                    pass
