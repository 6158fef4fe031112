"""Kernel module dependency closure for the initramfs.

Debian's linux-modules package ships no modules.dep (depmod runs at install time), so the
dependencies are read from each module's own `.modinfo` ELF section (`depends=a,b`),
which is what depmod itself uses.  Modules are `.ko.xz`; busybox insmod needs them
decompressed, so `closure()` returns them in load order ready to be written out raw.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from construct import Bytes, Int16ul, Int32ul, Int64ul, Struct

# Panthor and what it needs, in the order they must be loaded (deps first are computed).
PANTHOR_MODULES = ("drm", "gpu-sched", "drm_exec", "drm_gpuvm", "panthor")

Elf64Header = Struct(
    "ident" / Bytes(16), "type" / Int16ul, "machine" / Int16ul, "version" / Int32ul,
    "entry" / Int64ul, "phoff" / Int64ul, "shoff" / Int64ul, "flags" / Int32ul,
    "ehsize" / Int16ul, "phentsize" / Int16ul, "phnum" / Int16ul, "shentsize" / Int16ul,
    "shnum" / Int16ul, "shstrndx" / Int16ul)
Elf64Section = Struct(
    "name" / Int32ul, "type" / Int32ul, "flags" / Int64ul, "addr" / Int64ul,
    "offset" / Int64ul, "size" / Int64ul, "link" / Int32ul, "info" / Int32ul,
    "addralign" / Int64ul, "entsize" / Int64ul)


def canonical(name: str) -> str:
    """Module names treat '-' and '_' alike (gpu-sched.ko is module gpu_sched)."""
    return name.replace("-", "_")


def read_module(path: Path) -> bytes:
    data = path.read_bytes()
    return lzma.decompress(data) if path.name.endswith(".xz") else data


def modinfo(elf: bytes) -> dict[str, str]:
    """key=value strings of the `.modinfo` section of a little-endian ELF64 module."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("not a little-endian ELF64 module")
    hdr = Elf64Header.parse(elf)
    sections = [Elf64Section.parse(elf[hdr.shoff + i * hdr.shentsize:])
                for i in range(hdr.shnum)]
    strtab = sections[hdr.shstrndx]
    names = elf[strtab.offset:strtab.offset + strtab.size]
    for s in sections:
        if names[s.name:names.index(b"\0", s.name)] == b".modinfo":
            info: dict[str, str] = {}
            for entry in elf[s.offset:s.offset + s.size].split(b"\0"):
                k, sep, v = entry.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(k, v)
            return info
    return {}


def index(modules_dir: Path) -> dict[str, Path]:
    """Module name -> file, for every module below `modules_dir/kernel`."""
    out = {}
    for p in (modules_dir / "kernel").rglob("*.ko*"):
        out[canonical(p.name.split(".ko")[0])] = p
    return out


def closure(modules_dir: Path, wanted=PANTHOR_MODULES) -> list[tuple[str, Path, bytes]]:
    """(name, source file, decompressed bytes) for `wanted` and their deps, deps first."""
    idx = index(modules_dir)
    order: list[tuple[str, Path, bytes]] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = canonical(name)
        if name in done:
            return
        if name in chain:
            raise RuntimeError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
        if name not in idx:
            raise RuntimeError(f"module {name} not found below {modules_dir}")
        data = read_module(idx[name])
        for dep in filter(None, modinfo(data).get("depends", "").split(",")):
            visit(dep, chain + (name,))
        done.add(name)
        order.append((name, idx[name], data))

    for w in wanted:
        visit(w, ())
    return order
