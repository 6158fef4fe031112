"""Module dependency closure from .modinfo, on tiny fake ELF modules."""

import lzma

import pytest
from construct import Bytes, Int16ul, Int32ul, Int64ul, Struct

from qemu import kmodules

# The test's own ELF64 writer (the reader is pyelftools, in qemu.kmodules).
Elf64Header = Struct(
    "ident" / Bytes(16), "type" / Int16ul, "machine" / Int16ul, "version" / Int32ul,
    "entry" / Int64ul, "phoff" / Int64ul, "shoff" / Int64ul, "flags" / Int32ul,
    "ehsize" / Int16ul, "phentsize" / Int16ul, "phnum" / Int16ul, "shentsize" / Int16ul,
    "shnum" / Int16ul, "shstrndx" / Int16ul)
Elf64Section = Struct(
    "name" / Int32ul, "type" / Int32ul, "flags" / Int64ul, "addr" / Int64ul,
    "offset" / Int64ul, "size" / Int64ul, "link" / Int32ul, "info" / Int32ul,
    "addralign" / Int64ul, "entsize" / Int64ul)


def fake_module(name: str, depends: str, vermagic: str = "7.2") -> bytes:
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    modinfo = f"license=GPL\0depends={depends}\0name={name}\0vermagic={vermagic}\0".encode()
    body_off = Elf64Header.sizeof()
    shoff = body_off + len(modinfo) + len(shstrtab)
    sect = lambda n, off, size: Elf64Section.build(dict(  # noqa: E731
        name=n, type=1 if n else 0, flags=0, addr=0, offset=off, size=size, link=0, info=0,
        addralign=1, entsize=0))
    header = Elf64Header.build(dict(
        ident=b"\x7fELF\x02\x01\x01" + bytes(9), type=1, machine=183, version=1, entry=0,
        phoff=0, shoff=shoff, flags=0, ehsize=64, phentsize=0, phnum=0,
        shentsize=Elf64Section.sizeof(), shnum=3, shstrndx=2))
    return (header + modinfo + shstrtab + sect(0, 0, 0)
            + sect(1, body_off, len(modinfo)) + sect(10, body_off + len(modinfo), len(shstrtab)))


@pytest.fixture
def moddir(tmp_path):
    root = tmp_path / "7.2.13-arm64"
    mods = {"kernel/drivers/gpu/drm/drm.ko.xz": ("drm", ""),
            "kernel/drivers/gpu/drm/scheduler/gpu-sched.ko.xz": ("gpu_sched", "drm"),
            "kernel/drivers/gpu/drm/drm_exec.ko.xz": ("drm_exec", "drm"),
            "kernel/drivers/gpu/drm/drm_gpuvm.ko.xz": ("drm_gpuvm", "drm,drm_exec"),
            "kernel/drivers/gpu/drm/panthor/panthor.ko.xz":
                ("panthor", "drm,gpu-sched,drm_gpuvm,drm_exec"),
            "kernel/drivers/other/unrelated.ko": ("unrelated", "")}
    for rel, (name, deps) in mods.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        data = fake_module(name, deps)
        p.write_bytes(lzma.compress(data) if rel.endswith(".xz") else data)
    return root


def test_modinfo_parses_depends():
    info = kmodules.modinfo(fake_module("panthor", "drm,gpu-sched"))
    assert info["depends"] == "drm,gpu-sched" and info["name"] == "panthor"


def test_closure_is_dependency_ordered_and_decompressed(moddir):
    order = kmodules.closure(moddir, ["panthor"])
    names = [n for n, _, _ in order]
    assert set(names) == {"drm", "gpu_sched", "drm_exec", "drm_gpuvm", "panthor"}
    for n, _, data in order:
        assert data.startswith(b"\x7fELF")
        for dep in filter(None, kmodules.modinfo(data)["depends"].split(",")):
            assert names.index(kmodules.canonical(dep)) < names.index(n)
    assert names[-1] == "panthor"


def test_missing_module_is_reported(moddir):
    with pytest.raises(RuntimeError, match="tyr"):
        kmodules.closure(moddir, ["tyr"])
