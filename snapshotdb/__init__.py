"""snapshotdb: the recording database of ttd (models, capture, core import, queries, CLI)."""
from .db import open_engine, session_factory
from .errors import (CaptureError, CorruptPage, NotARecording, RecordingError,
                     RecordingNotFound, SchemaVersionMismatch, SnapshotNotFound, ThreadNotFound)
from .models import SCHEMA_VERSION

__all__ = [
    "open_engine", "session_factory", "SCHEMA_VERSION", "CaptureError", "CorruptPage",
    "NotARecording", "RecordingError", "RecordingNotFound", "SchemaVersionMismatch",
    "SnapshotNotFound", "ThreadNotFound",
]
