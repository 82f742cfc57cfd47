"""Address ranges [start, end) of the recorded process: merged and subtracted."""

from __future__ import annotations

from bisect import bisect_right

Range = tuple[int, int]


def merged(ranges: list[Range]) -> list[Range]:
    """Sorted, non-overlapping ranges covering the same addresses."""
    out: list[Range] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract(ranges: list[Range], minus: list[Range]) -> list[Range]:
    """The parts of sorted, merged `ranges` outside sorted, merged `minus`."""
    out = []
    for start, end in ranges:
        i = max(bisect_right(minus, (start, 1 << 64)) - 1, 0)
        while start < end:
            while i < len(minus) and minus[i][1] <= start:
                i += 1
            if i == len(minus) or minus[i][0] >= end:
                out.append((start, end))
                break
            if minus[i][0] > start:
                out.append((start, minus[i][0]))
            start = minus[i][1]
    return out
