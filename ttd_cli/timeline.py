"""`ttd timeline DB [--json]`: the snapshots of a recording, in time order, with the
threads recorded at each (a THREADS count; --json lists their ids and names) (the rows
come from snapshotdb.timeline, which the plugin's `ttd timeline` shows too)."""

from __future__ import annotations

import json


def run(args) -> int:
    from gdb_plugin.report import printable
    from snapshotdb import timeline
    from snapshotdb.db import open_recording

    with open_recording(args.db) as recording:
        entries = timeline.load(recording.engine)
    print(json.dumps(entries, indent=1) if args.json else printable(timeline.format_table(entries)))
    return 0
