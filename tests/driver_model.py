"""A small "driver model": the GPU driven as panthor drives it, without QEMU (tests, benchmarks).

It lives with the tests, not in the product; bench/ imports it too. A sequence that does not
go as panthor expects raises DriverError (never `assert`: it must hold under `python -O`).

Guest RAM is a memfd mapped into the device's DMA space at the IOVA QEMU's virt machine
uses (0x40000000), exactly as the vfio-user server would map it. Page tables are built in
that RAM in the AArch64 LPAE format panthor's io-pgtable writes, and register accesses go
through the device's BAR interface, with the INTx level observed as the server sees it.
"""

from __future__ import annotations

import mmap
import os

from mali_base.aspace import AddressSpace
from mali_base.clock import ManualClock
from mali_base.faults import FaultInjector
from mali_base.pagetable import AsConfig
from mali_gpu.device import MaliDevice
from mali_regs import csf_iface as I
from mali_regs.csf_iface import SharedLayout
from mali_regs.mmio import JOB_IRQ_GLOBAL_IF, MALI_MMIO
from mali_regs.profiles import get_profile
from mcu.iface import SharedSection
from scheduler.isa import Op, encode
from vdev import protocol as P
from vdev.client import Client
from vdev.device import DeviceHost
from vdev.dma import DmaSpace, sealed_memfd
from vdev.irq import Interrupts

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


class DriverError(RuntimeError):
    """The device did not answer a driver sequence as panthor expects."""


class GuestRam:
    def __init__(self, size: int = RAM_SIZE):
        self.fd = sealed_memfd("guest-ram", size)
        self.mm = mmap.mmap(self.fd, size)
        self.size = size
        self._next = RAM_BASE + size // 2  # page-table/data allocator from the top half

    def alloc(self, size: int = 4096, align: int = 4096) -> int:
        self._next = (self._next + align - 1) & ~(align - 1)
        pa = self._next
        if self._next + size > RAM_BASE + self.size:
            raise DriverError(f"guest RAM exhausted: 0x{size:x} bytes more do not fit")
        self._next += size
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


class ServedGpu:
    """The same driver-facing surface as Gpu, but the device is a `mali-vdev serve` process
    reached through the vfio-user socket with the project's client, as QEMU reaches it.

    Guest RAM is a memfd both processes map (DMA_MAP passes the fd). Register accesses are
    REGION_READ/WRITE messages; `dev.mcu` is the shared section seen from this side, through
    a local mirror of AS0 (its registers are snooped from our own writes, as the MMU latches
    them on UPDATE), so Group and Driver work unchanged. The engine runs in the server."""

    def __init__(self, socket_path: str, profile: str = "g610"):
        self.ram = GuestRam()
        self.client = Client(socket_path)
        self.client.negotiate()
        fd = os.dup(self.ram.fd)
        try:
            self.client.dma_map(RAM_BASE, self.ram.size, fd)
        finally:
            os.close(fd)
        self.dma = DmaSpace()  # our own view of the same memory, for the AS0 mirror
        self.dma.map(RAM_BASE, self.ram.size, P.DMA_FLAG_READ | P.DMA_FLAG_WRITE, os.dup(self.ram.fd))
        self._as0 = AddressSpace(0, lambda a, fault: None, FaultInjector())
        self._as0.memory = self.dma
        self._as0_regs: dict[str, int] = {}
        p = get_profile(profile)

        class _Dev:
            mcu = SharedSection(self._as0, SharedLayout(p.csg_slots, p.cs_per_csg))
        self.dev = _Dev()

    def off(self, name: str) -> int:
        return MALI_MMIO[name].offset

    def read(self, name: str) -> int:
        r = MALI_MMIO[name]
        return int.from_bytes(self.client.region_read(0, r.offset, r.width // 8), "little")

    def write(self, name: str, value: int) -> None:
        r = MALI_MMIO[name]
        self.client.region_write(0, r.offset, value.to_bytes(r.width // 8, "little"))
        if name.endswith("[0]") and name.startswith("AS_"):
            self._as0_regs[name] = value
            if name == "AS_COMMAND[0]":
                if value == 1:
                    g = self._as0_regs.get
                    self._as0.config = AsConfig(g("AS_TRANSTAB[0]", 0), g("AS_MEMATTR[0]", 0), g("AS_TRANSCFG[0]", 0))
                self._as0.invalidate()

    def close(self) -> None:
        self.client.close()
        self.dma.unmap_all()
        self.ram.mm.close()
        os.close(self.ram.fd)


SHARED = I.SHARED_SECTION_VA
GLB_IN, GLB_OUT = I.ARM_LAYOUT.glb_input_va, I.ARM_LAYOUT.glb_output_va
JOB_GLOBAL = JOB_IRQ_GLOBAL_IF


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


PROBE_READS = ("GPU_ID", "CSF_ID", "L2_FEATURES", "CORE_FEATURES", "TILER_FEATURES", "MEM_FEATURES",
               "MMU_FEATURES", "THREAD_MAX_THREADS", "AS_PRESENT", "SHADER_PRESENT", "TILER_PRESENT",
               "L2_PRESENT", "TEXTURE_FEATURES[0]")


def probe_and_boot(gpu: Gpu) -> Driver:
    """What panthor's probe does before the firmware (identity reads, soft reset, IRQ masks),
    then the firmware boot with the global JOB IRQ acknowledged."""
    for name in PROBE_READS:
        gpu.read(name)
    gpu.write("GPU_IRQ_MASK", 0)
    gpu.write("GPU_COMMAND", 0x101)                    # soft reset
    if not gpu.read("GPU_IRQ_RAWSTAT") & 0x100:         # RESET_COMPLETED
        raise DriverError("GPU soft reset did not raise RESET_COMPLETED")
    gpu.write("GPU_IRQ_CLEAR", 0xFFFFFFFF)
    gpu.write("GPU_IRQ_MASK", 0xFFFFFFFF)
    gpu.write("MMU_IRQ_MASK", 0xFFFF)
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    d.ack_job_irq()
    return d


# -- groups and queues ---------------------------------------------------------------------

RING_VA, RING_SIZE = 0x10_0000, 0x1000
BUF_VA = 0x20_0000          # user data, 64 KiB
CODE_VA = 0x30_0000         # user command buffers, 64 KiB
SYNC_VA = 0x40_0000         # sync objects
QUEUE_IO_VA = 0x0500_0000   # MCU VA of the ring input/output pages (one pair per stream)
SUSPEND_VA = 0x0510_0000    # MCU VA of the suspend buffers
USER_AS = 1


class Group:
    """One group of `nstreams` queues on CSG slot `slot`, its VM on AS1."""

    def __init__(self, gpu: Gpu, d: Driver, slot: int = 0, nstreams: int = 1, as_index: int = USER_AS):
        self.gpu, self.d, self.slot, self.as_index = gpu, d, slot, as_index
        ram = gpu.ram
        self.pt = PageTables(ram)
        self.pa = {}
        # Attributes as panthor maps them: rings and sync objects no-execute.
        for va, size, attrs in ((RING_VA, RING_SIZE * max(4, nstreams), LEAF_RW | PTE_XN), (BUF_VA, 0x10000, LEAF_RW),
                                (CODE_VA, 0x10000, LEAF_RW), (SYNC_VA, 0x1000, LEAF_RW | PTE_XN)):
            self.pa[va] = ram.alloc(size)
            self.pt.map(va, self.pa[va], size, attrs)
        gpu.write(f"AS_TRANSTAB[{as_index}]", self.pt.root)
        gpu.write(f"AS_TRANSCFG[{as_index}]", TRANSCFG_4K_48)
        gpu.write(f"AS_COMMAND[{as_index}]", 1)
        self.io_pa = ram.alloc(0x2000 * 8)
        d.pt.map(QUEUE_IO_VA + slot * 0x10000, self.io_pa, 0x2000 * 8)
        self.susp_pa = ram.alloc(0x4000)
        d.pt.map(SUSPEND_VA + slot * 0x4000, self.susp_pa, 0x4000)
        gpu.write("AS_COMMAND[0]", 2)  # LOCK/UNLOCK after editing AS0's tables, like panthor
        self.nstreams = nstreams
        self.insert = [0] * nstreams
        mcu = gpu.dev.mcu
        for j in range(nstreams):
            ci = mcu.cs(I.CS_INPUT, slot, j)
            ci["CS_RINGBUF_BASE"] = RING_VA + j * RING_SIZE
            ci["CS_RINGBUF_SIZE"] = RING_SIZE
            ci["CS_RINGBUF_INPUT"] = self.io_va(j)
            ci["CS_RINGBUF_OUTPUT"] = self.io_va(j) + 0x1000
            ci["CS_CONFIG"] = (slot + 1) << 8
            ci["CS_ACK_IRQ_MASK"] = 0xFFFFFFFF
            ci["CS_REQ"] = (ci["CS_REQ"] & ~7) | 1 | (1 << 8) | (1 << 10)  # START, IDLE_SYNC_WAIT, IDLE_EMPTY
        ci = mcu.csg(I.CSG_INPUT, slot)
        ci["CSG_CONFIG"] = as_index
        ci["CSG_SUSPEND_BUF"] = SUSPEND_VA + slot * 0x4000
        ci["CSG_ACK_IRQ_MASK"] = 0xFFFFFFFF
        ci["CSG_EP_REQ"] = 0xF << 28 | 0x10404
        self.request(1, toggle=1 << 4)  # START + ENDPOINT_CONFIG

    def io_va(self, j):
        return QUEUE_IO_VA + self.slot * 0x10000 + j * 0x2000

    def request(self, state=None, toggle=0):
        mcu = self.gpu.dev.mcu
        ci, co = mcu.csg(I.CSG_INPUT, self.slot), mcu.csg(I.CSG_OUTPUT, self.slot)
        req, ack = ci["CSG_REQ"], co["CSG_ACK"]
        if state is not None:
            req = (req & ~7) | state
        req = ((ack ^ toggle) & toggle) | (req & ~toggle)
        ci["CSG_REQ"] = req
        gin = mcu.glb(I.GLB_INPUT)
        gout = mcu.glb(I.GLB_OUTPUT)
        gin["GLB_DB_REQ"] = gout["GLB_DB_ACK"] ^ (1 << self.slot)
        self.d.doorbell(0)
        pending = (ci["CSG_REQ"] ^ co["CSG_ACK"]) & I.CSG_REQ_MASK
        if pending:  # the MCU acknowledges CSG requests within the doorbell write
            raise DriverError(f"CSG{self.slot} requests 0x{pending:x} not acknowledged")

    def submit(self, instrs, stream=0, ring_doorbell=True):
        pa = self.pa[RING_VA] + stream * RING_SIZE
        for w in instrs:
            self.gpu.ram.u64(pa + (self.insert[stream] & (RING_SIZE - 1)), w)
            self.insert[stream] += 8
        self.gpu.ram.u64(self.io_pa + stream * 0x2000, self.insert[stream])
        if ring_doorbell:
            self.d.doorbell(self.slot + 1)

    def run(self, rounds=50):
        for _ in range(rounds):
            busy, _ = self.gpu.dev.engine.run_once()
            if not busy:
                break

    def extract(self, stream=0):
        return self.gpu.ram.u64(self.io_pa + stream * 0x2000 + 0x1000)

    def out(self, stream=0):
        return self.gpu.dev.mcu.cs(I.CS_OUTPUT, self.slot, stream)

    def csg_out(self):
        return self.gpu.dev.mcu.csg(I.CSG_OUTPUT, self.slot)

    def buf(self, off, n=4):
        return int.from_bytes(self.gpu.ram.read(self.pa[BUF_VA] + off, n), "little")

    def sync(self, off=0, n=8):
        return int.from_bytes(self.gpu.ram.read(self.pa[SYNC_VA] + off, n), "little")

    def store_job(self, value: int = 0xDEADBEEF, offset: int = 0) -> list[int]:
        """A whole job in panthor's wrapper: a user buffer storing `value` at BUF_VA + offset,
        then the wrapper's SYNC_ADD64 on the group's sync object at SYNC_VA."""
        user = self.code(0, [mov48(0, BUF_VA), mov32(2, value),
                             encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=offset)])
        return job_wrapper(*user, SYNC_VA)

    def code(self, off, instrs):
        for i, w in enumerate(instrs):
            self.gpu.ram.u64(self.pa[CODE_VA] + off + 8 * i, w)
        return CODE_VA + off, 8 * len(instrs)


def mov48(reg, v):
    return encode(Op.MOVE48, dst=reg, imm=v)


def mov32(reg, v):
    return encode(Op.MOVE32, dst=reg, imm=v)


def job_wrapper(call_va, call_len, sync_va):
    """The instruction block panthor's queue_run_job writes (no profiling), 96 registers."""
    A, V = 92, 94
    return [mov32(V, 1), encode(Op.FLUSH_CACHE2, l2=3, lsc=3, other=2, flush_id=V, wait_mask=0, signal_slot=0),
            mov48(A, call_va), mov32(V, call_len), encode(Op.WAIT, wait_mask=1),
            encode(Op.CALL, addr=A, length=V), mov48(A, sync_va), mov48(V, 1), encode(Op.WAIT, wait_mask=0xFF),
            encode(Op.SYNC_ADD64, addr=A, data=V, error_propagate=1, scope=0, wait_mask=0, signal_slot=0),
            encode(Op.ERROR_BARRIER)] + [0] * 5
