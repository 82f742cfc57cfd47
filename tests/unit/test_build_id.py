"""Build-ids, one definition (snapshotdb.elf): the NT_GNU_BUILD_ID note through the
PT_NOTE program headers, else through the sections; the same for a file and for its
image in (recorded) memory, against readelf's reading of the file."""

import re
import subprocess
from pathlib import Path

import pytest

from snapshotdb import elf
from tests.conftest import require

FILES = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
    "/usr/bin/sqlite3",
    "/usr/bin/python3.11",
]  # the last one is not PIE: linked at 0x400000
PRESENT = [p for p in FILES if Path(p).exists()]


def readelf_build_id(path: str) -> str:
    """What binutils says (readelf -n), independent of pyelftools."""
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    found = re.search(r"Build ID: ([0-9a-f]+)", out)
    if found is None:
        raise AssertionError(f"readelf finds no build-id in {path}")
    return found.group(1)


def first_load_vaddr(path: str) -> int:
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True).stdout
    return min(
        int(line.split()[2], 16) for line in out.splitlines() if line.strip().startswith("LOAD")
    )


def image_reader(path: str):
    """(read, base): the file's bytes as the loader maps its first segment at base."""
    image = Path(path).read_bytes()
    base = first_load_vaddr(path) or 0x7F0000000000

    def read(rec_addr, length):
        return image[rec_addr - base : rec_addr - base + length]

    return read, base


def test_files_are_there():
    require(len(PRESENT) == len(FILES), f"missing: {sorted(set(FILES) - set(PRESENT))}")


@pytest.mark.parametrize("path", PRESENT)
def test_build_id_of_file(path):
    assert elf.build_id(path) == readelf_build_id(path)


@pytest.mark.parametrize("path", PRESENT)
def test_build_id_of_image_in_memory(path):
    assert elf.image_build_id(*image_reader(path)) == readelf_build_id(path)


def test_build_id_from_the_section_when_no_program_header_holds_it(tmp_path):
    """A relocatable link has sections only: the note is found there."""
    obj = tmp_path / "t.o"
    (tmp_path / "t.c").write_text("int f(void) { return 1; }\n")
    subprocess.run(["gcc", "-c", str(tmp_path / "t.c"), "-o", str(obj)], check=True)
    linked = tmp_path / "r.o"
    subprocess.run(["ld", "-r", "--build-id=0xabcdef12", str(obj), "-o", str(linked)], check=True)
    assert (
        "There are no program headers"
        in subprocess.run(["readelf", "-l", str(linked)], capture_output=True, text=True).stdout
    )
    assert elf.build_id(linked) == "abcdef12"


def test_not_an_elf_image():
    assert elf.image_build_id(lambda a, n: bytes(n), 0x1000) is None
    header_only = b"\x7fELF\x02\x01\x01" + bytes(4089)  # no program headers, no notes
    assert elf.image_build_id(lambda a, n: header_only[a - 0x1000 : a - 0x1000 + n], 0x1000) is None


def test_build_id_of_a_file_that_is_not_elf(tmp_path):
    data = tmp_path / "locale-archive"
    data.write_bytes(b"\x07\x09\x01\x0d" + bytes(100))
    assert elf.build_id(data) is None
    assert elf.build_id(tmp_path / "missing") is None
    assert elf.build_id(tmp_path) is None  # a directory


# symbolize.py still has its own reader: until it uses snapshotdb.elf (then this test
# goes), it must give the same answers, or the plugin's build-id warnings would be wrong.
