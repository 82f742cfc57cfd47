"""Domain exceptions of snapshotdb. Each message is one line that names the problem;
the CLI and the GDB plugin show str(exc) as it is."""


class RecordingError(Exception):
    """Base class: anything wrong with a recording or a request against it."""


class RecordingNotFound(RecordingError):
    pass


class CannotCreate(RecordingError):
    """A new recording cannot be made where it was asked for (a read-only directory)."""


class NotARecording(RecordingError):
    """The file exists but is not SQLite, or is SQLite without our tables."""


class SchemaVersionMismatch(RecordingError):
    pass


class SnapshotNotFound(RecordingError):
    pass


class ThreadNotFound(RecordingError):
    pass


class CorruptPage(RecordingError):
    """A stored page whose content does not match its hash."""


class CaptureError(RecordingError):
    pass


class IncompleteRecording(RecordingError):
    """A recording that a copy has not finished (`ttd copy` again finishes it)."""


class ServerUnavailable(RecordingError):
    """The database server of a recording cannot be reached, or went away."""
