"""Build-ids read from an ELF image in (recorded) memory, against pyelftools on the file."""
from pathlib import Path

import pytest

from gdb_plugin import symbolize

LIBS = ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/bin/sqlite3"]


@pytest.mark.parametrize("path", [p for p in LIBS if Path(p).exists()])
def test_build_id_from_image_equals_file(path):
    image = Path(path).read_bytes()  # the first segment maps file offset 0 at vaddr 0

    def read(rec_addr, length):
        return image[rec_addr - 0x7f0000000000:rec_addr - 0x7f0000000000 + length]

    found = symbolize.recorded_build_id(read, 0x7f0000000000)
    assert found is not None and len(found) == 40
    assert found == symbolize.build_id_of(path)


def test_not_an_elf_image():
    assert symbolize.recorded_build_id(lambda a, n: bytes(n), 0x1000) is None


def test_note_parsing_skips_other_notes():
    # an NT_GNU_PROPERTY_TYPE_0 note first, then the build-id
    other = (4).to_bytes(4, "little") + (8).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"GNU\0" + bytes(8)
    build = (4).to_bytes(4, "little") + (3).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"GNU\0" + b"\xab\xcd\xef\0"
    assert symbolize._note_build_id(other + build) == "abcdef"


def test_build_id_of_a_file_that_is_not_elf(tmp_path):
    data = tmp_path / "locale-archive"
    data.write_bytes(b"\x07\x09\x01\x0d" + bytes(100))
    assert symbolize.build_id_of(str(data)) is None
    assert symbolize.build_id_of(str(tmp_path / "missing")) is None
