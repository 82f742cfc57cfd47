"""ttd's GDB side. Modules that import `gdb` live in gdb_plugin/commands/ and
gdb_plugin/ttd.py; everything else here is importable without GDB (tests, CLI)."""
