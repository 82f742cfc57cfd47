"""The plugin's own errors, each with a one-line message for the user.

Commands turn them (and snapshotdb's RecordingError) into gdb.GdbError at the boundary
(gdb_plugin/commands/__init__.py: user_errors). Importable without GDB or SQLAlchemy.
"""

from __future__ import annotations

NO_RECORDING = 'No recording is open. Use "ttd open DB".'


class TtdError(Exception):
    """A problem the user can act on; str() is the one-line message."""


class SessionError(TtdError):
    """A call-at-time or ttd goto setup or teardown problem."""


class NoRecordingOpen(TtdError):
    def __init__(self, message: str = NO_RECORDING) -> None:
        super().__init__(message)
