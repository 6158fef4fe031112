"""newc cpio writer: Python round trip and, when available, GNU cpio's own listing."""

import shutil
import stat
import subprocess

import pytest

from qemu.cpio import HEADER_SIZE, CpioWriter, read_cpio
from qemu.initramfs import CMD_PATH, command_archive


def sample() -> CpioWriter:
    w = CpioWriter()
    w.add_file("bin/busybox", b"\x7fELF" + bytes(range(251)), 0o755)
    w.add_symlink("bin/sh", "busybox")
    w.add_chardev("dev/console", 5, 1)
    w.add_file("init", b"#!/bin/sh\necho hi\n", 0o755)
    w.add_file("lib/firmware/arm/mali/arch10.10/mali_csffw.bin", b"x" * 5)
    w.add_symlink("lib/firmware/arm/mali/arch10.8", "arch10.10")
    w.add_dir("proc")
    return w


def test_round_trip_keeps_types_modes_and_data():
    entries = {e.name: e for e in read_cpio(sample().to_bytes())}
    assert stat.S_ISREG(entries["bin/busybox"].mode)
    assert entries["bin/busybox"].mode & 0o777 == 0o755
    assert entries["bin/busybox"].data == b"\x7fELF" + bytes(range(251))
    assert stat.S_ISLNK(entries["bin/sh"].mode) and entries["bin/sh"].data == b"busybox"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    # parents are created implicitly and listed before their contents
    names = [e.name for e in read_cpio(sample().to_bytes())]
    for parent in ("bin", "lib", "lib/firmware/arm/mali", "dev"):
        assert stat.S_ISDIR(entries[parent].mode)
    assert names.index("lib/firmware/arm/mali") < names.index("lib/firmware/arm/mali/arch10.8")


def test_layout_is_4_byte_aligned_and_reproducible():
    data = sample().to_bytes()
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert data == sample().to_bytes()
    assert HEADER_SIZE == 110


def test_command_archive_concatenates_after_a_base():
    both = sample().to_bytes() + command_archive("echo 'a \"quoted\" $x'")
    first = read_cpio(both)
    rest = read_cpio(both[len(sample().to_bytes()):])
    assert "init" in {e.name for e in first}
    assert [(e.name, e.data) for e in rest] == [("mali-vdev", b""), (CMD_PATH, b"echo 'a \"quoted\" $x'\n")]


@pytest.mark.skipif(not shutil.which("cpio"), reason="GNU cpio not installed")
def test_gnu_cpio_lists_it(tmp_path):
    archive = tmp_path / "a.cpio"
    archive.write_bytes(sample().to_bytes())
    out = subprocess.run(["cpio", "-itv", "-F", str(archive)], capture_output=True, text=True,
                         check=True).stdout
    assert "bin/sh -> busybox" in out
    assert "init" in out and "dev/console" in out
    # extraction gives the same bytes
    subprocess.run(["cpio", "-idm", "--no-absolute-filenames", "-F", str(archive)],
                   cwd=tmp_path, capture_output=True, check=True)
    assert (tmp_path / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
