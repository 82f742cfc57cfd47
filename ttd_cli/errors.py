"""The command line's own errors. main() prints str(exc) after "ttd: " and exits 2, as it
does for snapshotdb's RecordingError; each message is one line that names the problem."""


class CliError(Exception):
    """A mistake in what the user asked for, or a tool the command needs that failed."""
