"""The MI driver against a real GDB: what it quotes reaches GDB exactly, a line break never
starts a command of its own, GDB's end is reported with how it ended, waits are bounded."""
from __future__ import annotations

import pytest

from ttd_cli.errors import CliError
from ttd_cli.mi import GdbEnded, GdbFailed, GdbTimeout, MiGdb, argv_quote, mi_quote

pytestmark = pytest.mark.timeout(120)

NASTY = ["plain", "two words", "new\nline", "shell touch F\n", "'single'", '"double"',
         "back\\slash", "tab\there", "cr\r", "\x01\x1b[2J\x7f", "trailing\\", "", "-dash",
         "$HOME;`id`|&", "é€ unicode", "a\\nb"]
IDS = [repr(word) for word in NASTY]

# GDB commands that print what they received, as Python sees it
ECHO_COMMANDS = '''
class EchoRaw(gdb.Command):
    def __init__(self): super().__init__("echo-raw", gdb.COMMAND_USER)
    def invoke(self, arg, from_tty): print("GOT " + repr(arg))
class EchoArgv(gdb.Command):
    def __init__(self): super().__init__("echo-argv", gdb.COMMAND_USER)
    def invoke(self, arg, from_tty): print("GOT " + repr(gdb.string_to_argv(arg)))
EchoRaw(); EchoArgv()
'''


@pytest.fixture(scope="module")
def gdb():
    with MiGdb() as gdb:
        gdb.cli(f"python exec({ECHO_COMMANDS!r})")  # one line: the newlines are escapes
        yield gdb


def got(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("GOT ")]
    assert len(lines) == 1, text
    return lines[0][4:]


@pytest.mark.parametrize("word", NASTY, ids=IDS)
def test_a_cli_command_reaches_gdb_whole(gdb, word):
    assert got(gdb.cli(f"echo-raw {word}")) == repr(word)


@pytest.mark.parametrize("word", NASTY, ids=IDS)
def test_argv_quote_gives_one_argument(gdb, word):
    assert got(gdb.cli(f"echo-argv {argv_quote(word)}")) == repr([word])


def test_a_line_break_is_never_sent(gdb):
    with pytest.raises(GdbFailed, match=r"^Refused to send GDB a line that holds a line break"):
        gdb.send("echo a\nshell touch F")
    assert got(gdb.cli("echo-raw still here")) == repr("still here")  # nothing was sent


def test_a_nul_byte_is_refused():
    with pytest.raises(CliError, match="holds a NUL byte, which GDB cannot take"):
        mi_quote("a\0b")


def test_gdb_that_ends_is_reported_with_how():
    with MiGdb() as gdb:
        with pytest.raises(GdbEnded) as info:
            gdb.cli("python import os; os._exit(3)")
    assert str(info.value) == "GDB ended unexpectedly (exited with status 3) during 'python'."


def test_a_wait_is_bounded(gdb):
    with pytest.raises(GdbTimeout) as info:
        gdb.cli("python import time; time.sleep(3)", timeout_s=0.5)
    assert str(info.value) == "GDB did not answer 'python' within 0.5 s."
    gdb.wait(lambda r: r["type"] == "result", "the sleep", 30)  # GDB answers it late
    assert got(gdb.cli("echo-raw after")) == repr("after")
