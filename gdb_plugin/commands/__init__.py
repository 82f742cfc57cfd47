"""Registration of every ttd GDB command, and the checks commands share.

Each command lives in its own module here, named after it; add the module to
COMMAND_MODULES and give it a `register()` function.
"""
import importlib

import gdb

COMMAND_MODULES = [
    "gdb_plugin.commands.ttd_prefix",
    "gdb_plugin.commands.call_at_time",
    "gdb_plugin.commands.info_dirtied_pages",
    "gdb_plugin.commands.ttd_goto",
    "gdb_plugin.commands.ttd_settings",
]

_registered = False


def register_all() -> None:
    global _registered
    if _registered:
        return
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not written yet
            raise
        module.register()
    _registered = True
