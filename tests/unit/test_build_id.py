"""Build-ids read from an ELF image in (recorded) memory and from a file's program
headers, against pyelftools reading the file's sections."""
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from gdb_plugin import symbolize

FILES = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/bin/sqlite3",
         "/usr/bin/python3.11"]  # the last one is not PIE: linked at 0x400000


def reference_build_id(path: str) -> str:
    with open(path, "rb") as f:
        for section in ELFFile(f).iter_sections():
            if section["sh_type"] == "SHT_NOTE":
                for note in section.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID":
                        return note["n_desc"]
    raise AssertionError(f"{path} has no build-id")


def first_load_vaddr(path: str) -> int:
    with open(path, "rb") as f:
        return min(seg["p_vaddr"] for seg in ELFFile(f).iter_segments()
                   if seg["p_type"] == "PT_LOAD")


@pytest.mark.parametrize("path", [p for p in FILES if Path(p).exists()])
def test_build_id_from_image_in_memory(path):
    image = Path(path).read_bytes()  # the first segment maps file offset 0
    base = first_load_vaddr(path) or 0x7f0000000000

    def read(rec_addr, length):
        return image[rec_addr - base:rec_addr - base + length]

    assert symbolize.recorded_build_id(read, base) == reference_build_id(path)


@pytest.mark.parametrize("path", [p for p in FILES if Path(p).exists()])
def test_build_id_of_file(path):
    assert symbolize.file_build_id(path) == reference_build_id(path)


def test_not_an_elf_image():
    assert symbolize.recorded_build_id(lambda a, n: bytes(n), 0x1000) is None


def test_build_id_of_a_file_that_is_not_elf(tmp_path):
    data = tmp_path / "locale-archive"
    data.write_bytes(b"\x07\x09\x01\x0d" + bytes(100))
    assert symbolize.file_build_id(str(data)) is None
    assert symbolize.file_build_id(str(tmp_path / "missing")) is None


def test_note_parsing_skips_other_notes():
    other = (4).to_bytes(4, "little") + (8).to_bytes(4, "little") + (5).to_bytes(4, "little")
    other += b"GNU\0" + bytes(8)
    build = (4).to_bytes(4, "little") + (3).to_bytes(4, "little") + (3).to_bytes(4, "little")
    build += b"GNU\0" + b"\xab\xcd\xef\0"
    assert symbolize._note_build_id(other + build) == "abcdef"
