"""snapshotdb: the recording database of ttd (models, db, queries, capture, core import,
pages, reader, the timeline's rows).

Nothing is imported here: `from snapshotdb.errors import ...` must not load SQLAlchemy
(the command line's start-up and GDB's `source` pay for what they import). Import the
module that holds what you need: snapshotdb.db.open_recording, snapshotdb.errors, ...
"""
