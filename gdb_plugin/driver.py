"""Moved to ttd_cli: the MI driver is ttd_cli.mi (MiGdb, GdbFailed), `ttd call` and `ttd gdb`
are ttd_cli.call and ttd_cli.gdb. This name stays only while tests/e2e and
bench/call_at_time.py import MiGdb and GdbFailed from here; delete it once they import
ttd_cli.mi (gdb_plugin must not reach up into the command line)."""
from ttd_cli.mi import GdbFailed, MiGdb

__all__ = ["GdbFailed", "MiGdb"]
