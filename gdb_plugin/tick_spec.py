"""Which ticks a sweep visits: the SPEC of `ttd sweep --ticks SPEC` (pure, no GDB).

    3        tick 3
    3-40     the recorded ticks from 3 to 40
    3-       the recorded ticks from 3 to the last
    1,5,9    those ticks (items may be ranges: 1-3,9)
    all      every recorded tick (the default)

parse() checks the text alone; select() picks the recorded ticks it names, in order and
each once. Both raise ValueError with a one-line message.
"""

from __future__ import annotations

import re

SPEC_HELP = "a SPEC is 3, 3-40, 3-, 1,5,9 or all"
_ITEM = re.compile(r"^(\d+)(?:(-)(\d*))?$")


def parse(spec: str) -> list[tuple[int, int | None]] | None:
    """The items of SPEC as (first, last) pairs, last None for "to the end"; None for
    "all"."""
    text = spec.strip()
    if text == "all":
        return None
    if not text:
        raise ValueError(f"Invalid ticks '': {SPEC_HELP}.")
    items = []
    for item in text.split(","):
        items.append(_item(item.strip(), spec))
    return items


def _item(item: str, spec: str) -> tuple[int, int | None]:
    if not item:
        raise ValueError(f"Invalid ticks '{spec}': an empty item between commas; {SPEC_HELP}.")
    match = _ITEM.match(item)
    if match is None:
        raise ValueError(f"Invalid tick '{item}': a tick is a number; {SPEC_HELP}.")
    first = int(match.group(1))
    last = first if match.group(2) is None else (int(match.group(3)) if match.group(3) else None)
    for tick in (first, last):
        if tick == 0:
            raise ValueError(f"Invalid tick '{item}': ticks start at 1.")
    if last is not None and last < first:
        raise ValueError(f"Invalid range '{item}': it starts after it ends.")
    return first, last


def select(items: list[tuple[int, int | None]] | None, recorded: list[int]) -> list[int]:
    """The recorded ticks the items name, in time order, each once. A single tick must
    be recorded; a range must lie within the recording and hold at least one tick."""
    recorded = sorted(recorded)
    if not recorded:
        raise ValueError("The recording has no snapshots.")
    if items is None:
        return recorded
    span = f"valid ticks are {recorded[0]} to {recorded[-1]}"
    known = set(recorded)
    chosen: set[int] = set()
    for first, last in items:
        if first == last:
            if first not in known:
                raise ValueError(f"No tick {first}: {span}.")
            chosen.add(first)
            continue
        end = recorded[-1] if last is None else last
        if first > recorded[-1] or end > recorded[-1]:
            bad = first if first > recorded[-1] else end
            raise ValueError(f"No tick {bad}: {span}.")
        inside = [t for t in recorded if first <= t <= end]
        if not inside:
            raise ValueError(f"No tick in {first}-{end}: {span}.")
        chosen.update(inside)
    return sorted(chosen)


def ticks(spec: str, recorded: list[int]) -> list[int]:
    """select(parse(spec), recorded)."""
    return select(parse(spec), recorded)
