"""ttd_cli: the `ttd` command line, above snapshotdb and gdb_plugin.

One module per verb (record, call, timeline, import_core, gdb), each with `run(args)`;
main.py holds the parser and the dispatch, mi.py the one GDB/MI driver. Nothing is
imported here: `ttd --help` must not pay for SQLAlchemy or pygdbmi.
"""
