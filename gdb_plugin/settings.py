"""ttd's own settings: how code of the past is called (`set ttd sandbox|timeout|tracker`).

One TtdSettings lives in the Context (gdb_plugin/context.py); the `set ttd` parameters
(gdb_plugin/commands/ttd_settings.py) change it, call-at-time's options override it for
one call. Importable without GDB.
"""

from __future__ import annotations

from dataclasses import dataclass

TRACKERS = ("auto", "wp-async", "diff")
DEFAULT_TIMEOUT_S = 10.0

SANDBOX_OFF_WARNING = (
    "warning: the sandbox is off: the called code can change files, "
    "signal and start processes, and reach the network."
)


@dataclass
class TtdSettings:
    sandbox: bool = True  # the seccomp sandbox (DESIGN.md "Containment")
    timeout_s: float | None = DEFAULT_TIMEOUT_S  # None: no limit
    tracker: str = "auto"  # one of TRACKERS
