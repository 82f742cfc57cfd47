"""The one error of the remat package (a snapshotdb RecordingError: one line)."""

from __future__ import annotations

from snapshotdb.errors import RecordingError


class RematerializeError(RecordingError):
    """The process could not be rebuilt, moved or served; the message says what to do."""


class MoveRefused(RematerializeError):
    """The page server refused to move the process (MOVE answered NO): it is as it was."""
