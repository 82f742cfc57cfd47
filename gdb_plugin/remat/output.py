"""What a rematerialized process writes to fds 1 and 2: drained as fast as the pipe
gives it, kept bounded.

A call writing forever drove GDB to 3.4 GB. Of each stream this keeps the first
`keep_head` and the last `keep_tail` bytes (1 MiB each by default) and counts what
was left out between them; the reader says "N bytes left out". A segment runs from
the process's start, or from the last take() (one call's output).
"""

from __future__ import annotations

import fcntl
import os
import select
import threading
from dataclasses import dataclass

KEEP_HEAD = 1 << 20
KEEP_TAIL = 1 << 20
READ_SIZE = 1 << 20
PIPE_SIZE = 1 << 20  # /proc/sys/fs/pipe-max-size's default: fewer wake-ups per MiB
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass
class Captured:
    """One stream's kept bytes (the first and the last ones, joined) and how many bytes
    between them were left out."""

    data: bytes = b""
    dropped: int = 0


class Segment:
    """The first keep_head and last keep_tail bytes of what was appended, and the count
    of those in between."""

    def __init__(self, keep_head: int, keep_tail: int):
        self.keep_head, self.keep_tail = keep_head, keep_tail
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def append(self, data: bytes) -> None:
        room = self.keep_head - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail += data
        if len(self.tail) > 2 * self.keep_tail:  # trim now and then, not on every read
            self._trim()

    def _trim(self) -> None:
        extra = len(self.tail) - self.keep_tail
        if extra > 0:
            self.dropped += extra
            del self.tail[:extra]

    def captured(self) -> Captured:
        self._trim()
        return Captured(bytes(self.head + self.tail), self.dropped)


class Drain(threading.Thread):
    """Collects what the process writes to one pipe, so it never blocks on a full pipe.

    Every read happens under the lock and without blocking (the thread waits in poll),
    so take_now() can empty the pipe itself: when it returns, everything that was in
    the pipe has been appended."""

    def __init__(self, fd: int, keep_head: int = KEEP_HEAD, keep_tail: int = KEEP_TAIL):
        super().__init__(daemon=True)
        os.set_blocking(fd, False)
        try:
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe only means more wake-ups
        self.fd = fd
        self.keep = (keep_head, keep_tail)
        self.segment = Segment(*self.keep)
        self.lock = threading.Lock()
        self.closed = False  # EOF seen, fd closed

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while True:
            poller.poll()
            with self.lock:
                self._take()
                if self.closed:
                    return

    def _take(self) -> None:
        """Read what the pipe holds now (lock held)."""
        while not self.closed:
            try:
                data = os.read(self.fd, READ_SIZE)
            except BlockingIOError:
                return
            if not data:
                self.closed = True
                os.close(self.fd)
                return
            self.segment.append(data)

    def take_now(self, timeout: float) -> None:
        """Empty the pipe into the segment now (waiting at most `timeout` seconds for the
        thread in the middle of a read)."""
        if self.lock.acquire(timeout=timeout):
            try:
                self._take()
            finally:
                self.lock.release()

    def captured(self) -> Captured:
        with self.lock:
            return self.segment.captured()

    def take(self) -> Captured:
        """The segment so far; a new one starts."""
        with self.lock:
            got = self.segment.captured()
            self.segment = Segment(*self.keep)
            return got
