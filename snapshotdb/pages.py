"""Page contents: encoding, hashing and verified decoding.

A page is stored once per distinct content: digest = sha256 of its 4096 bytes,
data = one zstd frame of them (codec 'zstd'), or the bytes as they are when
they do not compress (codec 'raw'). Every decode checks the digest: a recording
whose bytes changed on disk must never reach a process.

Beside the digest, the recorder stores a page's check (check_of, the xxh3 column): the
C page server checks a page against it in place of sha256, ten times faster, and falls
back to sha256 on a mismatch (native/pageserver/page_check.h says why that is as strong
for the purpose). The digest stays a content's identity; NULL or no column (a recording
made before it) means sha256 alone.
"""

from __future__ import annotations

import hashlib

import xxhash
import zstandard

from .errors import CorruptPage

PAGE_SIZE = 4096
ZERO_PAGE = bytes(PAGE_SIZE)
ZSTD_LEVEL = 3

_compressor = zstandard.ZstdCompressor(
    level=ZSTD_LEVEL, write_checksum=False, write_content_size=True
)
_decompressor = zstandard.ZstdDecompressor()


def digest_of(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def check_of(raw: bytes, digest: bytes) -> bytes:
    """page_content.xxh3: XXH3-128 of the page's bytes then its digest, big-endian (16
    bytes), as native/pageserver/page_check.h computes it."""
    h = xxhash.xxh3_128(raw)
    h.update(digest)
    return h.digest()


def compress(raw: bytes) -> tuple[str, bytes]:
    """(codec, data) for a page's raw bytes: one zstd frame, or the bytes themselves when
    that is not smaller."""
    packed = _compressor.compress(raw)
    return ("zstd", packed) if len(packed) < len(raw) else ("raw", bytes(raw))


def encode(raw: bytes) -> tuple[bytes, str, bytes]:
    """Return (digest, codec, data) for a page's raw bytes."""
    return digest_of(raw), *compress(raw)


def decode(codec: str, data: bytes, digest: bytes, *, where: str = "") -> bytes:
    """Decode a stored page and verify its digest; raise CorruptPage otherwise.

    `where` names the page for the message ("tick 3, address 0x7f..000").
    """
    try:
        if codec == "zstd":
            raw = _decompressor.decompress(data, max_output_size=PAGE_SIZE)
        elif codec == "raw":
            raw = bytes(data)
        else:
            raise CorruptPage(f"Corrupt recording: unknown page codec {codec!r} at {where}.")
    except zstandard.ZstdError as exc:
        raise CorruptPage(
            f"Corrupt recording: page at {where} does not decompress ({exc})."
        ) from exc
    if len(raw) != PAGE_SIZE or digest_of(raw) != digest:
        raise CorruptPage(f"Corrupt recording: page at {where} does not match its hash.")
    return raw
