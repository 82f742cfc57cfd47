"""What every benchmark says about the machine it ran on (compare within one run only:
machines of this kind differ by up to 2.5x from one session to the next)."""

from __future__ import annotations

import os


def machine(load_average_at_start: float) -> dict:
    return {
        "cpus": os.cpu_count(),
        "kernel": os.uname().release,
        "load_average_at_start": load_average_at_start,
    }


def load_average() -> float:
    return round(os.getloadavg()[0], 2)
