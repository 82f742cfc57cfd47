"""Entry point for GDB: `source gdb_plugin/ttd.py`.

GDB embeds the system Python (/usr/bin/python3), so put the checkout and the
virtual environment's site-packages on sys.path before importing anything of ours.
"""

import glob
import os
import sys

_top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _site in glob.glob(os.path.join(_top, ".venv", "lib", "python3*", "site-packages")):
    if _site not in sys.path:
        sys.path.insert(0, _site)
if _top not in sys.path:
    sys.path.insert(0, _top)

from gdb_plugin.commands import register_all  # noqa: E402

register_all()
