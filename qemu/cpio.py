"""A writer (and reader, for tests) of the "newc" cpio format the kernel unpacks as
initramfs.  Written in Python so device nodes (/dev/console) and root ownership need no
privileges and the archive is byte-for-byte reproducible (fixed inode numbers, mtime 0)."""

from __future__ import annotations

import io
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from construct import Bytes, Const, ExprAdapter, Struct


def _hex8():
    return ExprAdapter(Bytes(8), decoder=lambda b, ctx: int(b, 16),
                       encoder=lambda v, ctx: b"%08X" % v)


NewcHeader = Struct(
    "magic" / Const(b"070701"),
    "ino" / _hex8(), "mode" / _hex8(), "uid" / _hex8(), "gid" / _hex8(),
    "nlink" / _hex8(), "mtime" / _hex8(), "filesize" / _hex8(),
    "devmajor" / _hex8(), "devminor" / _hex8(), "rdevmajor" / _hex8(), "rdevminor" / _hex8(),
    "namesize" / _hex8(), "check" / _hex8())
HEADER_SIZE = NewcHeader.sizeof()  # 110
TRAILER = "TRAILER!!!"


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


@dataclass
class Entry:
    name: str           # path without leading '/'
    mode: int           # full st_mode (type and permission bits)
    data: bytes = b""   # file contents, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)


class CpioWriter:
    """Collects entries, creating parent directories implicitly, and writes newc."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.entries:
                self.entries[d] = Entry(d, stat.S_IFDIR | 0o755)

    def _add(self, e: Entry) -> None:
        e.name = e.name.strip("/")
        self._parents(e.name)
        self.entries[e.name] = e

    def add_dir(self, name: str, mode: int = 0o755) -> None:
        self._add(Entry(name, stat.S_IFDIR | mode))

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._add(Entry(name, stat.S_IFREG | mode, data))

    def add_symlink(self, name: str, target: str) -> None:
        self._add(Entry(name, stat.S_IFLNK | 0o777, target.encode()))

    def add_chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._add(Entry(name, stat.S_IFCHR | mode, rdev=(major, minor)))

    def add_tree(self, src: Path, dest: str) -> None:
        """Copy a host directory tree, keeping symlinks as symlinks."""
        self.add_dir(dest)
        for p in sorted(src.rglob("*")):
            name = f"{dest.strip('/')}/{p.relative_to(src)}"
            if p.is_symlink():
                self.add_symlink(name, str(p.readlink()))
            elif p.is_dir():
                self.add_dir(name)
            else:
                self.add_file(name, p.read_bytes(), p.stat().st_mode & 0o777)

    def write(self, out: BinaryIO) -> None:
        # Sorted so a directory always precedes its contents.
        for ino, e in enumerate(sorted(self.entries.values(), key=lambda e: e.name), 1):
            _write_entry(out, ino, e)
        _write_entry(out, 0, Entry(TRAILER, 0))

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        self.write(buf)
        return buf.getvalue()


def _write_entry(out: BinaryIO, ino: int, e: Entry) -> None:
    name = e.name.encode() + b"\0"
    hdr = NewcHeader.build(dict(
        ino=ino, mode=e.mode, uid=0, gid=0,
        nlink=2 if stat.S_ISDIR(e.mode) else 1, mtime=0, filesize=len(e.data),
        devmajor=0, devminor=0, rdevmajor=e.rdev[0], rdevminor=e.rdev[1],
        namesize=len(name), check=0))
    out.write(hdr + name + _pad4(HEADER_SIZE + len(name)))
    out.write(e.data + _pad4(len(e.data)))


def read_cpio(data: bytes) -> list[Entry]:
    """Parse a newc archive (up to its trailer) back into entries."""
    entries, off = [], 0
    while True:
        h = NewcHeader.parse(data[off:off + HEADER_SIZE])
        off += HEADER_SIZE
        name = data[off:off + h.namesize - 1].decode()
        off += h.namesize + len(_pad4(HEADER_SIZE + h.namesize))
        body = data[off:off + h.filesize]
        off += h.filesize + len(_pad4(h.filesize))
        if name == TRAILER:
            return entries
        entries.append(Entry(name, h.mode, body, (h.rdevmajor, h.rdevminor)))
