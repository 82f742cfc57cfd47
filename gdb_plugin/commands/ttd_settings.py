"""`set ttd sandbox|timeout|tracker` and `show ttd ...`: how call-at-time, ttd goto
and ttd call run the code of the past. The values live in the Context's TtdSettings
(gdb_plugin/settings.py), where every new rematerialized process reads them."""
from __future__ import annotations

import gdb

from gdb_plugin.args import parse_timeout_setting
from gdb_plugin.settings import SANDBOX_OFF_WARNING, TRACKERS


class SetTtd(gdb.Command):
    """Settings of ttd: how code of the past is called.

Usage: set ttd SETTING VALUE
Type "help set ttd" followed by a setting name for its documentation."""

    def __init__(self):
        super().__init__("set ttd", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, prefix=True)


class ShowTtd(gdb.Command):
    """Show the settings of ttd.

Usage: show ttd [SETTING]"""

    def __init__(self):
        super().__init__("show ttd", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, prefix=True)

    def invoke(self, arg, from_tty):
        for name in ("sandbox", "timeout", "tracker"):
            gdb.execute(f"show ttd {name}")


class TtdSandbox(gdb.Parameter):
    """Whether called code of the past runs in the sandbox.

On (the default), system calls that reach outside the rematerialized process
(files, other processes, the network, fork, exec) fail with EPERM and each call's
report lists them. Off lets them through: the called code can then change your
files and signal your processes. It applies to the next process made by
call-at-time or ttd goto."""

    set_doc = "Set whether called code of the past runs in the sandbox."
    show_doc = "Show whether called code of the past runs in the sandbox."

    def __init__(self, settings):
        super().__init__("ttd sandbox", gdb.COMMAND_DATA, gdb.PARAM_BOOLEAN)
        self.settings = settings
        self.value = settings.sandbox

    def get_set_string(self):
        self.settings.sandbox = bool(self.value)
        if not self.value:
            return SANDBOX_OFF_WARNING
        return ""

    def get_show_string(self, svalue):
        return f"The ttd sandbox is {svalue}."


class TtdTimeout(gdb.Parameter):
    """Seconds a call of the past may run before it is stopped.

A call still running after this long is interrupted, unwound and reported with
status timeout and where it was, whatever it does with its signals: SIGINT first,
SIGSTOP a second later (it cannot be blocked), SIGKILL as the last resort. S is a
number of seconds (fractions too), "unlimited" or 0 for no limit.
call-at-time --timeout S overrides it for one call. Default 10."""

    set_doc = "Set the seconds a call of the past may run."
    show_doc = "Show the seconds a call of the past may run."

    def __init__(self, settings):
        super().__init__("ttd timeout", gdb.COMMAND_DATA, gdb.PARAM_STRING)
        self.settings = settings
        self.value = _timeout_text(settings.timeout_s)

    def get_set_string(self):
        try:
            seconds = parse_timeout_setting(self.value or "")
        except ValueError as exc:
            self.value = _timeout_text(self.settings.timeout_s)  # unchanged
            raise gdb.GdbError(str(exc)) from None
        self.settings.timeout_s = seconds
        self.value = _timeout_text(seconds)
        return ""

    def get_show_string(self, svalue):
        if self.settings.timeout_s is None:
            return "Calls of the past are not interrupted (no time limit)."
        return f"Calls of the past are interrupted after {svalue} seconds."


def _timeout_text(seconds: float | None) -> str:
    return "unlimited" if seconds is None else f"{seconds:g}"


class TtdTracker(gdb.Parameter):
    """How the pages a call writes are found.

wp-async: the kernel marks each written page (userfaultfd WP_ASYNC and
PAGEMAP_SCAN); exact. diff: every filled page is compared with the recording
after the call, for kernels without WP_ASYNC; writes that leave a page's bytes
equal cannot be seen. auto (the default): wp-async where the kernel has it,
else diff, with a notice. It applies to the next process made."""

    set_doc = "Set how the pages a call writes are found."
    show_doc = "Show how the pages a call writes are found."

    def __init__(self, settings):
        super().__init__("ttd tracker", gdb.COMMAND_DATA, gdb.PARAM_ENUM, list(TRACKERS))
        self.settings = settings
        self.value = settings.tracker

    def get_set_string(self):
        self.settings.tracker = self.value
        return ""

    def get_show_string(self, svalue):
        return f"The ttd tracker is {svalue}."


def register(ctx) -> None:
    SetTtd()
    ShowTtd()
    TtdSandbox(ctx.settings)
    TtdTimeout(ctx.settings)
    TtdTracker(ctx.settings)
