"""The virtual Mali GPU as a PCI function: one 2 MiB BAR holding the whole MMIO window.

The guest's device tree places the panthor node over BAR0, so BAR0 offsets are the GPU's
own register offsets. This object assembles the blocks for one profile — register file,
the three interrupt quadruples on one level-triggered line, GPU_CONTROL, the MMU, the MCU
and the CSG slots — and is what the vfio-user server talks to.
"""

from __future__ import annotations

import logging

from mali_base.clock import Clock
from mali_base.events import EventBus, Kind
from mali_base.faults import FaultInjector, Injection
from mali_base.regfile import RegisterFile
from mali_regs.csf_iface import SharedLayout
from mali_regs.enums import EXCEPTION
from mali_regs.mmio import DOORBELL_BASE, DOORBELL_STRIDE, MMIO_SIZE, regmap_for_arch
from mali_regs.profiles import get_profile
from mcu.iface import SharedSection
from mcu.mcu import Mcu
from scheduler.csg import CsgSlots
from scheduler.engine import Engine
from vdev.device import Device
from vdev.pci import Bar, PciIdentity

from .gpu_control import GPU_IRQ, GpuControl
from .irq import IrqBlock
from .mmu import Mmu

log = logging.getLogger("mali.device")

ARM_VENDOR_ID = 0x13B5
# Mali has no PCI identity of its own: an Arm vendor ID, a device ID of ours and the
# "other display controller" class, so no guest PCI driver claims the function.
MALI_VDEV_DEVICE_ID = 0x0001
CLASS_DISPLAY_OTHER = 0x038000
GPU_BUS_FAULT = EXCEPTION["GPU_BUS_FAULT"]


class MaliDevice(Device):
    bars = [Bar(0, MMIO_SIZE)]

    def __init__(self, gpu: str = "g610", clock: Clock | None = None, coherent: bool = True,
                 engine_thread: bool = True):
        super().__init__()
        self.profile = get_profile(gpu)
        self.identity = PciIdentity(ARM_VENDOR_ID, MALI_VDEV_DEVICE_ID, CLASS_DISPLAY_OTHER,
                                    revision=self.profile.gpu_id & 0xF)
        self.clock = clock or Clock()
        self.regmap = regmap_for_arch(self.profile.arch[0])
        values = dict(self.profile.regs)
        if coherent:
            # The emulator sees guest memory coherently and the guest DT says dma-coherent;
            # panthor then requires ACE-Lite in COHERENCY_FEATURES.
            values["COHERENCY_FEATURES"] = values.get("COHERENCY_FEATURES", 0) | 1
        self.regs = RegisterFile(self.regmap, values)
        self._line = False
        self.events = EventBus()
        self.faults = FaultInjector()
        self.faults.on_timed = self._timed_fault
        self.qmp = None  # watch.Qmp when the server knows QEMU's QMP socket
        self.gpu_irq = IrqBlock("GPU_IRQ", 0, self.regs, self._update_line, self.events)
        self.job_irq = IrqBlock("JOB_IRQ", 1, self.regs, self._update_line, self.events)
        self.mmu_irq = IrqBlock("MMU_IRQ", 2, self.regs, self._update_line, self.events)
        # Each block gets the collaborators it uses; only this object knows them all.
        self.gpu_control = GpuControl(self.regs, self.gpu_irq, self.events, self.clock,
                                      reset=self.gpu_reset, flushed=self.cache_flushed)
        self.mmu = Mmu(self.regs, self.mmu_irq, self.events, self.faults)
        p = self.profile
        # The MCU finds its interface through AS0, laid out as Arm's firmware lays it out.
        iface = SharedSection(self.mmu[0], SharedLayout(p.csg_slots, p.cs_per_csg))
        self.csg_slots = CsgSlots(iface, self.job_irq, self.events, self.faults, p,
                                  bus_fault=self.bus_fault)
        self.mcu = Mcu(self.regs, iface, self.job_irq, self.events, self.faults, p,
                       groups=self.csg_slots, bus_fault=self.bus_fault)
        self.engine = Engine(self.lock, self.mcu, self.csg_slots, self.mmu.address_spaces, self.gpu_control,
                             self.events, self.faults, self.bus_fault)
        self.csg_slots.engine = self.engine
        self.engine_thread = engine_thread
        for i in range((MMIO_SIZE - DOORBELL_BASE) // DOORBELL_STRIDE):
            self.regs.on_write(f"DOORBELL[{i}]", self._doorbell_handler(i))
        self._trace = log.isEnabledFor(logging.DEBUG)

    def attach(self, host) -> None:
        super().attach(host)
        self.mmu.attach(host.dma)
        host.dma.listeners.append(self._dma_changed)
        if self.engine_thread:
            self.engine.start()

    # -- interrupt line ------------------------------------------------------------------

    def _update_line(self) -> None:
        level = bool(self.gpu_irq.status or self.job_irq.status or self.mmu_irq.status)
        if level != self._line:
            self._line = level
            if self.events.active:
                self.events.emit(Kind.IRQ_LINE, value=int(level))
            if self.host is not None:
                self.host.set_intx(level)

    # -- BAR access ----------------------------------------------------------------------

    def bar_read(self, bar: int, offset: int, width: int) -> int:
        value = self.regs.read(offset, width)
        if self.events.active:
            self.events.emit(Kind.REG_READ, offset, value, width)
        if self._trace:
            log.debug("read  %s", self.regmap.decode(offset, value, width * 8))
        return value

    def bar_write(self, bar: int, offset: int, width: int, value: int) -> None:
        if self.events.active:
            self.events.emit(Kind.REG_WRITE, offset, value, width)
        if self._trace:
            log.debug("write %s", self.regmap.decode(offset, value, width * 8))
        self.regs.write(offset, width, value)

    # -- block interplay -----------------------------------------------------------------

    def _doorbell_handler(self, index: int):
        def write(reg, value, mask):
            if value & 1:
                if self.events.active:
                    self.events.emit(Kind.DOORBELL, index)
                self.mcu.doorbell(index)
        return write

    def _dma_changed(self, iova: int, size: int, flags: int | None) -> None:
        self.mmu.invalidate_all()  # a translation may point into memory that just went away
        if self.events.active:
            self.events.emit(Kind.DMA_MAP, iova, size, aux=0 if flags is None else flags | 0x100)

    def _timed_fault(self, inj: Injection) -> None:
        with self.lock:
            self.fire_fault(inj)

    def fire_fault(self, inj: Injection) -> None:
        """Faults that happen on their own rather than at a hook point (lock held)."""
        inj.fired += 1
        if inj.kind == "gpu_fault":
            code, address = inj.params.get("exception", GPU_BUS_FAULT), inj.params.get("address", 0)
            log.warning("fault injected: GPU fault 0x%02x at 0x%x", code, address)
            self._gpu_fault(code, address)
        else:
            raise ValueError(f"{inj.kind} fires at a hook point, not on its own")

    def bus_fault(self, pa: int, why: str) -> None:
        """A GPU access reached a physical address outside guest RAM: GPU_FAULTSTATUS
        (GPU_BUS_FAULT) and GPU_IRQ FAULT, as hardware reports a bus error."""
        log.warning("GPU bus fault at PA 0x%x: %s", pa, why)
        self._gpu_fault(GPU_BUS_FAULT, pa)

    def _gpu_fault(self, code: int, address: int) -> None:
        if not self.gpu_irq.rawstat & GPU_IRQ["FAULT"]:  # the first fault stays until the driver clears it
            self.regs["GPU_FAULTSTATUS"] = code
            self.regs["GPU_FAULTADDRESS"] = address
        self.gpu_irq.raise_bits(GPU_IRQ["FAULT"])

    def inject(self, inj: Injection) -> None:
        if inj.kind == "gpu_fault" and inj.at_s is None:
            self.fire_fault(inj)
        else:
            self.faults.add(inj)

    def cache_flushed(self) -> None:
        self.mmu.invalidate_all()

    def gpu_reset(self, hard: bool = False) -> None:
        """GPU_COMMAND soft/hard reset: everything but the IRQ masks back to power-on state."""
        log.info("GPU %s reset", "hard" if hard else "soft")
        if self.events.active:
            self.events.emit(Kind.RESET, value=2 if hard else 1)
        masks = {n: self.regs[n] for n in ("GPU_IRQ_MASK", "JOB_IRQ_MASK", "MMU_IRQ_MASK")}
        timestamp_offset = self.regs["TIMESTAMP_OFFSET"]
        self.regs.reset()
        for n, v in masks.items():
            self.regs[n] = v
        self.regs["TIMESTAMP_OFFSET"] = timestamp_offset
        self.gpu_control.reset()
        self.mmu.reset()
        self.mcu.reset()
        self.csg_slots.reset()
        self._update_line()

    def reset(self) -> None:
        """PCI DEVICE_RESET: power-on state, masks included."""
        log.info("device reset: registers back to their power-on values")
        if self.events.active:
            self.events.emit(Kind.RESET, value=0)
        self.regs.reset()
        self.gpu_control.reset()
        self.mmu.reset()
        self.mcu.reset()
        self.csg_slots.reset()
        self._update_line()
