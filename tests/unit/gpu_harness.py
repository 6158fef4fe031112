"""A small "driver model" for unit tests of the GPU blocks without QEMU.

Guest RAM is a memfd mapped into the device's DMA space at the IOVA QEMU's virt machine
uses (0x40000000), exactly as the vfio-user server would map it. Page tables are built in
that RAM in the AArch64 LPAE format panthor's io-pgtable writes, and register accesses go
through the device's BAR interface, with the INTx level observed as the server sees it.
"""

from __future__ import annotations

import mmap
import os

from mali_gpu.clock import ManualClock
from mali_gpu.device import MaliDevice
from mali_regs.mmio import MALI_MMIO
from vdev.device import DeviceHost
from vdev.dma import DmaSpace
from vdev.irq import Interrupts
from mali_regs import csf_iface as I
from vdev import protocol as P

RAM_BASE = 0x40000000
RAM_SIZE = 64 << 20

PTE_TABLE = 0b11
PTE_PAGE = 0b11
PTE_BLOCK = 0b01
PTE_AF = 1 << 10
PTE_RDONLY = 1 << 7
PTE_XN = (1 << 53) | (1 << 54)
# panthor's leaf attributes for a cached RW page: nG, AF, SH inner, AttrIndx 1, AP unpriv
LEAF_RW = 0xF47 & ~0b11
TRANSCFG_4K_48 = 0x420001C6  # ADRMODE_AARCH64_4K | INA_BITS(7) | PTW_MEMATTR_WB | PTW_RA


class GuestRam:
    def __init__(self, size: int = RAM_SIZE):
        self.fd = os.memfd_create("guest-ram")
        os.ftruncate(self.fd, size)
        self.mm = mmap.mmap(self.fd, size)
        self.size = size
        self._next = RAM_BASE + size // 2  # page-table/data allocator from the top half

    def alloc(self, size: int = 4096, align: int = 4096) -> int:
        self._next = (self._next + align - 1) & ~(align - 1)
        pa = self._next
        self._next += size
        assert self._next <= RAM_BASE + self.size
        return pa

    def write(self, pa: int, data: bytes) -> None:
        self.mm[pa - RAM_BASE:pa - RAM_BASE + len(data)] = data

    def read(self, pa: int, n: int) -> bytes:
        return bytes(self.mm[pa - RAM_BASE:pa - RAM_BASE + n])

    def u64(self, pa: int, value: int | None = None) -> int:
        if value is not None:
            self.write(pa, value.to_bytes(8, "little"))
        return int.from_bytes(self.read(pa, 8), "little")

    def u32(self, pa: int, value: int | None = None) -> int:
        if value is not None:
            self.write(pa, value.to_bytes(4, "little"))
        return int.from_bytes(self.read(pa, 4), "little")


class PageTables:
    """A 4-level, 4 KiB-granule stage-1 table in guest RAM."""

    def __init__(self, ram: GuestRam):
        self.ram = ram
        self.root = ram.alloc()

    def _next_table(self, table: int, index: int) -> int:
        desc = self.ram.u64(table + 8 * index)
        if desc & 1:
            return desc & 0x0000_FFFF_FFFF_F000
        new = self.ram.alloc()
        self.ram.u64(table + 8 * index, new | PTE_TABLE)
        return new

    def map(self, va: int, pa: int, size: int, attrs: int = LEAF_RW) -> None:
        for off in range(0, size, 4096):
            v, table = va + off, self.root
            for level in range(3):
                table = self._next_table(table, (v >> (39 - 9 * level)) & 0x1FF)
            self.ram.u64(table + 8 * ((v >> 12) & 0x1FF), (pa + off) | attrs | PTE_PAGE)

    def map_block_2m(self, va: int, pa: int, attrs: int = LEAF_RW) -> None:
        table = self.root
        for level in range(2):
            table = self._next_table(table, (va >> (39 - 9 * level)) & 0x1FF)
        self.ram.u64(table + 8 * ((va >> 21) & 0x1FF), pa | attrs | PTE_BLOCK)

    def set_raw(self, va: int, level: int, desc: int) -> None:
        table = self.root
        for lv in range(level):
            table = self._next_table(table, (va >> (39 - 9 * lv)) & 0x1FF)
        self.ram.u64(table + 8 * ((va >> (39 - 9 * level)) & 0x1FF), desc)


class Gpu:
    """The device with its host wiring; register access by name, like the driver."""

    def __init__(self, profile: str = "g610"):
        self.ram = GuestRam()
        self.dma = DmaSpace()
        self.dma.map(RAM_BASE, self.ram.size, P.DMA_FLAG_READ | P.DMA_FLAG_WRITE, os.dup(self.ram.fd))
        self.irqs = Interrupts()
        self.clock = ManualClock(timestamp_hz=62_500_000)
        self.dev = MaliDevice(profile, clock=self.clock, engine_thread=False)  # tests step the engine
        self.dev.attach(DeviceHost(self.irqs, self.dma))

    def off(self, name: str) -> int:
        return MALI_MMIO[name].offset

    def read(self, name: str) -> int:
        r = MALI_MMIO[name]
        return self.dev.bar_read(0, r.offset, r.width // 8)

    def write(self, name: str, value: int) -> None:
        r = MALI_MMIO[name]
        self.dev.bar_write(0, r.offset, r.width // 8, value)

    @property
    def line(self) -> bool:
        return self.irqs.intx_level

    def close(self) -> None:
        self.dma.unmap_all()
        self.ram.mm.close()
        os.close(self.ram.fd)


SHARED = 0x04000000
GLB_IN, GLB_OUT = SHARED + 0x2000, SHARED + 0x6000
JOB_GLOBAL = 1 << 31


def glb_bits(*names):
    reg = I.GLB_INPUT["GLB_REQ"]
    return sum(reg.field(n).mask for n in names)


class Driver:
    """The part of panthor_fw.c this needs: load the shared section, program AS0, boot."""

    def __init__(self, gpu):
        self.gpu = gpu
        self.shared_pa = gpu.ram.alloc(0x10000)
        self.pt = PageTables(gpu.ram)
        self.pt.map(SHARED, self.shared_pa, 0x10000)
        gpu.write("AS_TRANSTAB[0]", self.pt.root)
        gpu.write("AS_TRANSCFG[0]", TRANSCFG_4K_48)
        gpu.write("AS_COMMAND[0]", 1)
        gpu.write("JOB_IRQ_CLEAR", 0xFFFFFFFF)
        gpu.write("JOB_IRQ_MASK", 0xFFFFFFFF)

    def u32(self, va, value=None):
        return self.gpu.ram.u32(self.shared_pa + va - SHARED, value)

    def ack_job_irq(self):
        st = self.gpu.read("JOB_IRQ_STATUS")
        self.gpu.write("JOB_IRQ_CLEAR", st)
        return st

    def toggle(self, mask):
        req, ack = self.u32(GLB_IN), self.u32(GLB_OUT)
        self.u32(GLB_IN, ((ack ^ mask) & mask) | (req & ~mask))

    def doorbell(self, n=0):
        self.gpu.write(f"DOORBELL[{n}]", 1)


