"""The GPU MMU: address-space registers latched on UPDATE, translation, faults, MMU_IRQ.

Commands complete instantly, so AS_STATUS.AS_ACTIVE always reads 0. Translations are cached
per page and dropped on every AS command and on GPU cache flushes, as a TLB would be — the
driver edits page tables between LOCK and UNLOCK and flushes before it relies on a change.
A fault records the first AS_FAULTSTATUS/AS_FAULTADDRESS and raises MMU_IRQ bit `as`.
"""

from __future__ import annotations

import logging

from mali_base.aspace import AddressSpace
from mali_base.events import EventBus, Kind
from mali_base.faults import FaultInjector
from mali_base.pagetable import ACCESS_NAMES, AsConfig, MmuFault
from mali_base.regfile import RegisterFile
from mali_regs.enums import AS_COMMAND, AS_COMMANDS, EXCEPTION_TYPES
from mali_regs.mmio import MAX_AS
from vdev.dma import DmaSpace

from .irq import IrqBlock

log = logging.getLogger("mali.mmu")

AS_CMD_UPDATE = AS_COMMAND["UPDATE"]


class Mmu:
    def __init__(self, regs: RegisterFile, mmu_irq: IrqBlock, events: EventBus, faults: FaultInjector):
        self.regs = regs
        self.irq = mmu_irq
        self.events = events
        self.faults = faults
        present = self.regs["AS_PRESENT"]
        self.address_spaces = [AddressSpace(i, self.report_fault, faults) for i in range(MAX_AS)]
        for i in range(MAX_AS):
            if present & (1 << i):
                self.regs.on_write(f"AS_COMMAND[{i}]", self._command_handler(i))
                self.regs.on_read(f"AS_STATUS[{i}]", self._status_handler(i))
            else:
                for name in ("AS_TRANSTAB", "AS_MEMATTR", "AS_LOCKADDR", "AS_TRANSCFG", "AS_COMMAND"):
                    self.regs.on_write(f"{name}[{i}]", self._absent(i))

    def __getitem__(self, index: int) -> AddressSpace:
        return self.address_spaces[index]

    def attach(self, memory: DmaSpace) -> None:
        """Guest RAM as the client maps it: what every address space walks and reaches."""
        for a in self.address_spaces:
            a.memory = memory
            a.invalidate()

    def _absent(self, i: int):
        def write(reg, value, mask):
            self.regs.report_misuse("write to %s: AS%d is not in AS_PRESENT 0x%x", reg.full_name, i, self.regs["AS_PRESENT"])
        return write

    def _status_handler(self, i: int):
        def read(reg):
            return 1 if self.address_spaces[i].stuck else 0  # commands complete instantly
        return read

    def _command_handler(self, i: int):
        def write(reg, value, mask):
            self.command(i, value & 0xFF)
        return write

    def command(self, i: int, cmd: int) -> None:
        a = self.address_spaces[i]
        r = self.regs
        if self.events.active:
            self.events.emit(Kind.MMU_COMMAND, value=cmd, slot=i)
        if cmd == AS_CMD_UPDATE:
            a.config = AsConfig(r[f"AS_TRANSTAB[{i}]"], r[f"AS_MEMATTR[{i}]"], r[f"AS_TRANSCFG[{i}]"])
            log.info("AS%d UPDATE: TRANSTAB 0x%x TRANSCFG %s MEMATTR 0x%016x", i, a.config.transtab,
                     r.regmap.decode(r.regmap[f"AS_TRANSCFG[{i}]"].offset, a.config.transcfg, 64),
                     a.config.memattr)
        elif cmd in AS_COMMANDS:  # LOCK, UNLOCK, FLUSH_*: nothing is cached beyond the TLB dropped below
            log.debug("AS%d %s", i, AS_COMMANDS.get(cmd))
        else:
            r.report_misuse("AS_COMMAND[%d] with unknown command %d", i, cmd)
            return
        a.invalidate()
        if self.faults and self.faults.take("as_active_stuck", **{"as": i}):
            log.warning("injected: AS%d keeps AS_ACTIVE set until the next GPU reset", i)
            a.stuck = True

    def invalidate_all(self) -> None:
        for a in self.address_spaces:
            a.invalidate()

    def report_fault(self, a: AddressSpace, fault: MmuFault) -> None:
        a.faults += 1
        i = a.index
        name = EXCEPTION_TYPES.get(fault.exception_type, f"0x{fault.exception_type:02x}")
        log.warning("MMU fault AS%d: %s %s at VA 0x%x: %s", i, name, ACCESS_NAMES.get(fault.access),
                    fault.va, fault.why)
        if self.events.active:
            self.events.emit(Kind.MMU_FAULT, fault.va, fault.exception_type | fault.access << 8, slot=i)
        if self.irq.rawstat & (1 << i):
            return  # the first fault stays latched until the driver clears it
        self.regs[f"AS_FAULTSTATUS[{i}]"] = fault.exception_type | fault.access << 8
        self.regs[f"AS_FAULTADDRESS[{i}]"] = fault.va
        self.irq.raise_bits(1 << i)

    def reset(self) -> None:
        for a in self.address_spaces:
            a.config = AsConfig()
            a.stuck = False
            a.invalidate()
