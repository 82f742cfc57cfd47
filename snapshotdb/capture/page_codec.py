"""A batch of pages as the store wants them: which are zero, their digests, and for the
contents to insert, their stored form (pages.compress: one zstd frame or the raw bytes)
and their check (pages.check_of)."""

from __future__ import annotations

import hashlib

from ..pages import PAGE_SIZE, ZERO_PAGE, check_of, compress

ZERO_RUN = bytes(1 << 20)


class PageCodec:
    def __init__(self):
        self._raw: dict[bytes, memoryview] = {}

    def encode(self, batch: list[tuple[int, bytes]]) -> list[tuple[int, bytes | None]]:
        """(rec_addr, sha256 digest) of every page of the batch; digest None for a page of
        zeros. Keeps the pages of the batch for rows()."""
        self._raw = {}
        out: list[tuple[int, bytes | None]] = []
        sha256 = hashlib.sha256
        for rec_addr, data in batch:
            view = memoryview(data)
            if len(data) <= len(ZERO_RUN) and view == ZERO_RUN[: len(data)]:
                out.extend((a, None) for a in range(rec_addr, rec_addr + len(data), PAGE_SIZE))
                continue
            for off in range(0, len(data), PAGE_SIZE):
                page = view[off : off + PAGE_SIZE]
                if page == ZERO_PAGE:
                    out.append((rec_addr + off, None))
                    continue
                digest = sha256(page).digest()
                self._raw.setdefault(digest, page)
                out.append((rec_addr + off, digest))
        return out

    def rows(self, digests: list[bytes]) -> list[tuple[bytes, str, bytes, bytes]]:
        """(digest, codec, data, check) of pages of the last encoded batch, by digest."""
        return [
            (digest, *compress(self._raw[digest]), check_of(self._raw[digest], digest))
            for digest in digests
        ]
