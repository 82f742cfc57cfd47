"""The keys of `ttd call --json` (DESIGN.md's, then ttd's own), in order: the contract the
report's unit test and the CLI's end-to-end test both hold the output to."""

CALL_KEYS = [
    "tick",
    "expr",
    "status",
    "value",
    "signal",
    "dirtied_pages",
    "stdout",
    "stderr",
    "blocked_syscalls",
    "error",
    "timings_ms",
    "faults",
    "fault_address",
    "backtrace",
    "exit_code",
    "tracker",
    "notes",
    "stdout_left_out",
    "stderr_left_out",
    "blocked_syscalls_left_out",
]
PAGE_KEYS = [
    "address",
    "mapping",
    "kind",
    "changed",
    "changed_ranges",
    "symbol",
    "changed_ranges_left_out",
]
