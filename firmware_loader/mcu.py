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
from typing import TYPE_CHECKING

from mali_regs import csf_iface as I

from mali_gpu.events import IfaceBlockId, Kind
from mali_gpu.pagetable import MmuFault
from vdev.dma import DmaError

from .iface import IfaceBlock

if TYPE_CHECKING:
    from mali_gpu.device import MaliDevice

log = logging.getLogger("mali.mcu")

MCU_DISABLED, MCU_ENABLED, MCU_HALT, MCU_FATAL = 0, 1, 2, 3
MCU_STATUS_NAMES = {0: "DISABLED", 1: "ENABLED", 2: "HALT", 3: "FATAL"}
MCU_MODE_DISABLE = 0

JOB_IRQ_GLOBAL_IF = 1 << 31
GLB_HALT = 1 << 0

# The shared-section layout Arm's images use (and ours copies), in MCU VAs.
GLB_INPUT_VA = I.SHARED_SECTION_VA + 0x2000
GLB_OUTPUT_VA = I.SHARED_SECTION_VA + 0x6000
CSG_STRIDE = 0xA0
CS_STRIDE = 0xC
CSG_INPUT_VA, CSG_INPUT_STRIDE = I.SHARED_SECTION_VA + 0x3000, 0x80
CSG_OUTPUT_VA, CSG_OUTPUT_STRIDE = I.SHARED_SECTION_VA + 0x7000, 0x40
CS_INPUT_VA, CS_INPUT_STRIDE = I.SHARED_SECTION_VA + 0x3400, 0x80
CS_OUTPUT_VA, CS_OUTPUT_STRIDE = I.SHARED_SECTION_VA + 0x7200, 0x100

# What the G610's firmware reports: interface v1.1.0, instrumentation features 0x71.
GLB_VERSION = 0x01010000
GLB_INSTR_FEATURES = 0x71
CSG_SUSPEND_SIZE = 0x4000
CSG_PROTM_SUSPEND_SIZE = 0x1000
CS_FEATURE_COMPUTE, CS_FEATURE_FRAGMENT, CS_FEATURE_TILER = 1 << 16, 1 << 17, 1 << 18


class Mcu:
    def __init__(self, dev: "MaliDevice"):
        self.dev = dev
        self.regs = dev.regs
        p = dev.profile
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
            log.info("MCU_STATUS %s -> %s", MCU_STATUS_NAMES[self.status], MCU_STATUS_NAMES[status])
            self.regs["MCU_STATUS"] = status
            if self.dev.events.active:
                self.dev.events.emit(Kind.MCU_STATUS, value=status)

    @property
    def aspace(self):
        return self.dev.mmu[0]

    def glb(self, block) -> IfaceBlock:
        va = {"GLB_CONTROL": I.SHARED_SECTION_VA, "GLB_INPUT": GLB_INPUT_VA, "GLB_OUTPUT": GLB_OUTPUT_VA}[block.name]
        return IfaceBlock(self.aspace, va, block)

    def csg(self, block, slot: int) -> IfaceBlock:
        va = {"CSG_CONTROL": I.SHARED_SECTION_VA + I.CSG_CONTROL_OFFSET + slot * CSG_STRIDE,
              "CSG_INPUT": CSG_INPUT_VA + slot * CSG_INPUT_STRIDE,
              "CSG_OUTPUT": CSG_OUTPUT_VA + slot * CSG_OUTPUT_STRIDE}[block.name]
        return IfaceBlock(self.aspace, va, block)

    def cs(self, block, slot: int, stream: int) -> IfaceBlock:
        n = slot * self.stream_num + stream
        va = {"CS_CONTROL": I.SHARED_SECTION_VA + I.CSG_CONTROL_OFFSET + slot * CSG_STRIDE
              + I.CS_CONTROL_OFFSET + stream * CS_STRIDE,
              "CS_INPUT": CS_INPUT_VA + n * CS_INPUT_STRIDE,
              "CS_OUTPUT": CS_OUTPUT_VA + n * CS_OUTPUT_STRIDE}[block.name]
        return IfaceBlock(self.aspace, va, block)

    # -- MCU_CONTROL ---------------------------------------------------------------------

    def _write_control(self, reg, value, mask) -> None:
        self.regs.values[reg] = value & mask
        mode = value & 0x3
        if mode == MCU_MODE_DISABLE:
            self._set_status(MCU_DISABLED)
            return
        if self.status == MCU_ENABLED:
            self.regs._misuse("MCU_CONTROL=%d while the MCU is already enabled", mode)
            return
        self.boot()

    def boot(self) -> None:
        """Publish the interface in shared memory and report the boot."""
        if self.dev.faults and self.dev.faults.take("mcu_boot_fail"):
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
        self.dev.job_irq.raise_bits(JOB_IRQ_GLOBAL_IF)

    def _publish_interface(self) -> None:
        ctl = self.glb(I.GLB_CONTROL)
        ctl["GLB_VERSION"] = GLB_VERSION
        ctl["GLB_FEATURES"] = 0
        ctl["GLB_INPUT_VA"] = GLB_INPUT_VA
        ctl["GLB_OUTPUT_VA"] = GLB_OUTPUT_VA
        ctl["GLB_GROUP_NUM"] = self.group_num
        ctl["GLB_GROUP_STRIDE"] = CSG_STRIDE
        ctl["GLB_PERFCNT_SIZE"] = 0
        ctl["GLB_INSTR_FEATURES"] = GLB_INSTR_FEATURES
        for slot in range(self.group_num):
            c = self.csg(I.CSG_CONTROL, slot)
            c["CSG_FEATURES"] = 0
            c["CSG_INPUT_VA"] = CSG_INPUT_VA + slot * CSG_INPUT_STRIDE
            c["CSG_OUTPUT_VA"] = CSG_OUTPUT_VA + slot * CSG_OUTPUT_STRIDE
            c["CSG_SUSPEND_SIZE"] = CSG_SUSPEND_SIZE
            c["CSG_PROTM_SUSPEND_SIZE"] = CSG_PROTM_SUSPEND_SIZE
            c["CSG_STREAM_NUM"] = self.stream_num
            c["CSG_STREAM_STRIDE"] = CS_STRIDE
            for stream in range(self.stream_num):
                s = self.cs(I.CS_CONTROL, slot, stream)
                n = slot * self.stream_num + stream
                s["CS_FEATURES"] = self.cs_features
                s["CS_INPUT_VA"] = CS_INPUT_VA + n * CS_INPUT_STRIDE
                s["CS_OUTPUT_VA"] = CS_OUTPUT_VA + n * CS_OUTPUT_STRIDE
        log.info("MCU booted: interface v%d.%d.%d, %d CSG slots x %d streams, CS features 0x%x",
                 GLB_VERSION >> 24, (GLB_VERSION >> 16) & 0xFF, GLB_VERSION & 0xFFFF,
                 self.group_num, self.stream_num, self.cs_features)

    # -- doorbells -----------------------------------------------------------------------

    def doorbell(self, index: int) -> None:
        if self.status != MCU_ENABLED:
            log.info("doorbell %d rung while the MCU is %s: ignored", index, MCU_STATUS_NAMES[self.status])
            return
        try:
            if index == 0:
                self._global_doorbell()
            else:
                self.dev.cs_doorbell(index)
        except (MmuFault, DmaError) as e:
            self.interface_lost(e, f"while serving doorbell {index}")

    def interface_lost(self, e: MmuFault | DmaError, context: str) -> None:
        """The MCU cannot reach its shared section through AS0 any more (AS0 re-programmed
        or its tables broken under a running MCU): firmware would fault and stop, so ours
        stops too. An MMU fault was already reported on AS0; a bus error is reported here."""
        log.error("MCU lost access to the shared section %s: %s; MCU_STATUS -> FATAL", context, e)
        if isinstance(e, DmaError):
            self.dev.bus_fault(e.iova, f"MCU {context}: {e}")
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
        if changed & ping and self.dev.faults and self.dev.faults.take("drop_ping_ack"):
            changed &= ~ping
        if changed:
            self._apply_glb_requests(inp, changed, req)
            ack = (ack & ~changed) | (req & changed)
            out["GLB_ACK"] = ack
            log.debug("GLB ack %s", I.GLB_OUTPUT["GLB_ACK"].describe(ack))
            if self.dev.events.active:
                self.dev.events.emit(Kind.IFACE, IfaceBlockId.GLB, ack, aux=req)
        db_req, db_ack = inp["GLB_DB_REQ"], out["GLB_DB_ACK"]
        slots = (db_req ^ db_ack) & ((1 << self.group_num) - 1)
        if slots:
            out["GLB_DB_ACK"] = db_ack ^ slots
            for slot in range(self.group_num):
                if slots & (1 << slot):
                    self.dev.csg_doorbell(slot)
        if changed & irq_mask:
            self.dev.job_irq.raise_bits(JOB_IRQ_GLOBAL_IF)

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
