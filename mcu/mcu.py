"""The high-level-emulated MCU: boot, the global interface and its req/ack toggle protocol.

No firmware code runs. What the driver observes of the real MCU is reproduced:
- MCU_CONTROL=ENABLE/AUTO boots it: it publishes the GLB/CSG/CS control blocks in the
  shared section (found through AS0 at MCU VA 0x04000000, where the driver loaded the image's
  shared section), reports MCU_STATUS=ENABLED and raises JOB_IRQ GLOBAL_IF.
- Doorbell 0 makes it serve GLB requests: requests (bits 0..10) are acknowledged by copying
  REQ to ACK, doorbell requests by copying DB_REQ to DB_ACK; an IRQ is raised only if a newly
  acknowledged bit is in ACK_IRQ_MASK. HALT is a level: MCU_STATUS=HALT, never acked in ACK.
- MCU_CONTROL=DISABLE stops it (MCU_STATUS=DISABLED); a GPU reset forgets everything.
"""

from __future__ import annotations

import logging
from typing import Callable, Protocol

from mali_base.events import EventBus, IfaceBlockId, Kind
from mali_base.faults import FaultInjector
from mali_base.pagetable import MmuFault
from mali_base.regfile import RegisterFile
from mali_regs import csf_iface as I
from mali_regs.enums import MCU_CONTROL_MODE, MCU_STATUS, MCU_STATUSES
from mali_regs.mmio import JOB_IRQ_GLOBAL_IF
from mali_regs.profiles import GpuProfile
from vdev.dma import DmaError

from .iface import IfaceBlock, SharedSection

log = logging.getLogger("mali.mcu")

MCU_DISABLED, MCU_ENABLED, MCU_HALT, MCU_FATAL = (MCU_STATUS[n] for n in ("DISABLED", "ENABLED", "HALT", "FATAL"))
MCU_MODE_DISABLE = MCU_CONTROL_MODE["DISABLE"]
GLB_HALT = I.GLB_INPUT["GLB_REQ"].field("HALT").mask

# What the G610's firmware reports: interface v1.1.0, instrumentation features 0x71.
GLB_VERSION = 0x01010000
GLB_INSTR_FEATURES = 0x71
CSG_SUSPEND_SIZE = 0x4000
CSG_PROTM_SUSPEND_SIZE = 0x1000
CS_FEATURE_COMPUTE, CS_FEATURE_FRAGMENT, CS_FEATURE_TILER = 1 << 16, 1 << 17, 1 << 18


class Groups(Protocol):
    """What the MCU hands group work to (scheduler.csg.CsgSlots)."""

    def doorbell(self, slot: int) -> None: ...

    def cs_doorbell(self, doorbell: int) -> None: ...


class Mcu:
    def __init__(self, regs: RegisterFile, iface: SharedSection, job_irq, events: EventBus,
                 faults: FaultInjector, profile: GpuProfile, groups: Groups,
                 bus_fault: Callable[[int, str], None]):
        self.regs = regs
        self.iface = iface
        self.job_irq = job_irq
        self.events = events
        self.faults = faults
        self.groups = groups
        self._bus_fault = bus_fault
        p = profile
        self.group_num = p.csg_slots
        self.stream_num = p.cs_per_csg
        self.cs_features = ((p.cs_reg_count - 1) | p.scoreboards << 8
                            | CS_FEATURE_COMPUTE | CS_FEATURE_FRAGMENT | CS_FEATURE_TILER)
        self.regs.on_write("MCU_CONTROL", self._write_control)
        self.boots = 0
        self.halts = 0
        self.pings = 0
        self.glb_timers: dict[str, int] = {}
        self.fatal_reason: str | None = None  # why MCU_STATUS is FATAL (for `mali-vdev status`)

    # -- state ---------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self.regs["MCU_STATUS"]

    def _set_status(self, status: int, reason: str | None = None) -> None:
        self.fatal_reason = reason if status == MCU_FATAL else None
        if status != self.status:
            log.info("MCU_STATUS %s -> %s", MCU_STATUSES[self.status], MCU_STATUSES[status])
            self.regs["MCU_STATUS"] = status
            if self.events.active:
                self.events.emit(Kind.MCU_STATUS, value=status)

    @property
    def aspace(self):
        return self.iface.aspace

    def glb(self, block) -> IfaceBlock:
        return self.iface.glb(block)

    def csg(self, block, slot: int) -> IfaceBlock:
        return self.iface.csg(block, slot)

    def cs(self, block, slot: int, stream: int) -> IfaceBlock:
        return self.iface.cs(block, slot, stream)

    # -- MCU_CONTROL ---------------------------------------------------------------------

    def _write_control(self, reg, value, mask) -> None:
        self.regs["MCU_CONTROL"] = value & mask
        mode = value & 0x3
        if mode == MCU_MODE_DISABLE:
            self._set_status(MCU_DISABLED)
            return
        if self.status == MCU_ENABLED:
            self.regs.report_misuse("MCU_CONTROL=%d while the MCU is already enabled", mode)
            return
        self.boot()

    def boot(self) -> None:
        """Publish the interface in shared memory and report the boot."""
        if self.faults and self.faults.take("mcu_boot_fail"):
            log.warning("injected: the MCU does not boot")
            return
        try:
            self._publish_interface()
        except (MmuFault, DmaError) as e:
            why = f"boot: the shared section at MCU VA 0x{I.SHARED_SECTION_VA:x} is not reachable through AS0: {e}"
            log.error("MCU %s", why)
            self._set_status(MCU_FATAL, why)
            return
        self.boots += 1
        self._set_status(MCU_ENABLED)
        self.job_irq.raise_bits(JOB_IRQ_GLOBAL_IF)

    def _publish_interface(self) -> None:
        lay = self.iface.layout
        ctl = self.glb(I.GLB_CONTROL)
        ctl["GLB_VERSION"] = GLB_VERSION
        ctl["GLB_FEATURES"] = 0
        ctl["GLB_INPUT_VA"] = lay.glb_input_va
        ctl["GLB_OUTPUT_VA"] = lay.glb_output_va
        ctl["GLB_GROUP_NUM"] = self.group_num
        ctl["GLB_GROUP_STRIDE"] = lay.group_stride
        ctl["GLB_PERFCNT_SIZE"] = 0
        ctl["GLB_INSTR_FEATURES"] = GLB_INSTR_FEATURES
        for slot in range(self.group_num):
            c = self.csg(I.CSG_CONTROL, slot)
            c["CSG_FEATURES"] = 0
            c["CSG_INPUT_VA"] = lay.csg_input_va(slot)
            c["CSG_OUTPUT_VA"] = lay.csg_output_va(slot)
            c["CSG_SUSPEND_SIZE"] = CSG_SUSPEND_SIZE
            c["CSG_PROTM_SUSPEND_SIZE"] = CSG_PROTM_SUSPEND_SIZE
            c["CSG_STREAM_NUM"] = self.stream_num
            c["CSG_STREAM_STRIDE"] = lay.stream_stride
            for stream in range(self.stream_num):
                s = self.cs(I.CS_CONTROL, slot, stream)
                s["CS_FEATURES"] = self.cs_features
                s["CS_INPUT_VA"] = lay.cs_input_va(slot, stream)
                s["CS_OUTPUT_VA"] = lay.cs_output_va(slot, stream)
        log.info("MCU booted: interface v%d.%d.%d, %d CSG slots x %d streams, CS features 0x%x",
                 GLB_VERSION >> 24, (GLB_VERSION >> 16) & 0xFF, GLB_VERSION & 0xFFFF,
                 self.group_num, self.stream_num, self.cs_features)

    # -- doorbells -----------------------------------------------------------------------

    def doorbell(self, index: int) -> None:
        if self.status != MCU_ENABLED:
            log.info("doorbell %d rung while the MCU is %s: ignored", index, MCU_STATUSES[self.status])
            return
        try:
            if index == 0:
                self._global_doorbell()
            else:
                self.groups.cs_doorbell(index)
        except (MmuFault, DmaError) as e:
            self.interface_lost(e, f"while serving doorbell {index}")

    def interface_lost(self, e: MmuFault | DmaError, context: str) -> None:
        """The MCU cannot reach its shared section through AS0 any more (AS0 re-programmed
        or its tables broken under a running MCU): firmware would fault and stop, so ours
        stops too. An MMU fault was already reported on AS0; a bus error is reported here."""
        log.error("MCU lost access to the shared section %s: %s; MCU_STATUS -> FATAL", context, e)
        if isinstance(e, DmaError):
            self._bus_fault(e.iova, f"MCU {context}: {e}")
        self._set_status(MCU_FATAL, f"lost the shared section {context}: {e}")

    def _global_doorbell(self) -> None:
        inp, out = self.glb(I.GLB_INPUT), self.glb(I.GLB_OUTPUT)
        req, ack = inp["GLB_REQ"], out["GLB_ACK"]
        irq_mask = inp["GLB_ACK_IRQ_MASK"]
        if req & GLB_HALT:
            self.halts += 1
            log.info("GLB_REQ HALT: MCU halts")
            self._set_status(MCU_HALT)
        changed = (req ^ ack) & I.GLB_REQ_MASK & ~GLB_HALT
        ping = I.GLB_INPUT["GLB_REQ"].field("PING").mask
        if changed & ping and self.faults and self.faults.take("drop_ping_ack"):
            changed &= ~ping
        if changed:
            self._apply_glb_requests(inp, changed, req)
            ack = (ack & ~changed) | (req & changed)
            out["GLB_ACK"] = ack
            log.debug("GLB ack %s", I.GLB_OUTPUT["GLB_ACK"].describe(ack))
            if self.events.active:
                self.events.emit(Kind.IFACE, IfaceBlockId.GLB, ack, aux=req)
        db_req, db_ack = inp["GLB_DB_REQ"], out["GLB_DB_ACK"]
        slots = (db_req ^ db_ack) & ((1 << self.group_num) - 1)
        if slots:
            out["GLB_DB_ACK"] = db_ack ^ slots
            for slot in range(self.group_num):
                if slots & (1 << slot):
                    self.groups.doorbell(slot)
        if changed & irq_mask:
            self.job_irq.raise_bits(JOB_IRQ_GLOBAL_IF)

    def _apply_glb_requests(self, inp: IfaceBlock, changed: int, req: int) -> None:
        bits = I.GLB_INPUT["GLB_REQ"]
        if changed & bits.field("PING").mask:
            self.pings += 1
            log.debug("GLB PING %d", self.pings)
        for name, timer in (("CFG_PROGRESS_TIMER", "GLB_PROGRESS_TIMER"), ("CFG_POWEROFF_TIMER", "GLB_POWEROFF_TIMER")):
            if changed & bits.field(name).mask:
                self.glb_timers[timer] = inp[timer]
        if changed & bits.field("CFG_ALLOC_EN").mask:
            self.glb_timers["GLB_CORE_EN_MASK"] = inp["GLB_CORE_EN_MASK"]
        if changed & bits.field("IDLE_EN").mask:
            self.glb_timers["GLB_IDLE_TIMER"] = inp["GLB_IDLE_TIMER"]
        handled = {"PING", "CFG_PROGRESS_TIMER", "CFG_POWEROFF_TIMER", "CFG_ALLOC_EN", "IDLE_EN", "COUNTER_EN"}
        other = changed & ~sum(bits.field(n).mask for n in handled)
        if other:
            log.info("GLB request bits acknowledged without effect: %s", bits.format_value(other))

    def reset(self) -> None:
        """GPU soft/hard reset: the MCU is off and remembers nothing."""
        self.regs["MCU_STATUS"] = MCU_DISABLED
        self.fatal_reason = None
        self.regs["MCU_CONTROL"] = 0
        self.glb_timers.clear()
