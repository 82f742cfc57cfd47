"""One open recording read from many threads at once (the GDB plugin reads it from its
main thread and from a call's start-up thread): no thread's connection is closed under it."""

from __future__ import annotations

import threading

from sqlalchemy import select

from snapshotdb.db import open_engine, open_recording
from snapshotdb.models import Meta


def test_a_file_recording_reads_from_many_threads(tmp_path):
    path = tmp_path / "r.db"
    open_engine(path, create=True).dispose()
    errors: list[BaseException] = []
    start = threading.Barrier(12)
    with open_recording(path) as recording:

        def read_many() -> None:
            try:
                start.wait()
                for _ in range(200):
                    with recording.session() as session:
                        assert session.scalar(
                            select(Meta.value).where(Meta.key == "schema_version")
                        )
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=read_many) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert errors == []
    assert type(recording.engine.pool).__name__ == "QueuePool"
