"""The client side of the native contract: rebuild a recorded process at a tick
(native/ttd-pageserver + ttd-stub) and talk to its page server.

    from gdb_plugin.remat import rematerialize, RematerializeError

Does not import gdb. See client.py for the process's API.
"""

from gdb_plugin.remat.client import (
    PAGE_SIZE,
    RematerializedProcess,
    RematerializeError,
    rematerialize,
)

__all__ = ["PAGE_SIZE", "RematerializedProcess", "RematerializeError", "rematerialize"]
