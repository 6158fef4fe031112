"""The GPU MMU: address-space registers latched on UPDATE, translation, faults, MMU_IRQ.

Commands complete instantly, so AS_STATUS.AS_ACTIVE always reads 0. Translations are cached
per page and dropped on every AS command and on GPU cache flushes, as a TLB would be — the
driver edits page tables between LOCK and UNLOCK and flushes before it relies on a change.
A fault records the first AS_FAULTSTATUS/AS_FAULTADDRESS and raises MMU_IRQ bit `as`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mali_regs.enums import AS_COMMANDS, EXCEPTION_TYPES

from .events import Kind
from .pagetable import (ACCESS_NAMES, ACCESS_READ, ACCESS_WRITE, TRANSLATION_FAULT_0, AsConfig, MmuFault,
                        Translation, walk)

if TYPE_CHECKING:
    from .device import MaliDevice

log = logging.getLogger("mali.mmu")

AS_CMD_NOP, AS_CMD_UPDATE, AS_CMD_LOCK, AS_CMD_UNLOCK, AS_CMD_FLUSH_PT, AS_CMD_FLUSH_MEM = range(6)
MAX_AS = 16


class AddressSpace:
    def __init__(self, mmu: "Mmu", index: int):
        self.mmu = mmu
        self.index = index
        self.config = AsConfig()
        self._tlb: dict[int, Translation] = {}
        self.faults = 0
        self.stuck = False  # injected: AS_STATUS keeps reading AS_ACTIVE

    def invalidate(self) -> None:
        self._tlb.clear()

    def translate(self, va: int, access: int = ACCESS_READ) -> int:
        """Physical address of `va`, or raise MmuFault after reporting it to the driver."""
        if self.mmu.dev.faults:
            self._injected_fault(va, access)
        page = va >> 12
        t = self._tlb.get(page)
        if t is None or (access == ACCESS_WRITE and not t.writable):
            try:
                t = walk(self.mmu.dev.host.dma, self.config, va, access)
            except MmuFault as fault:
                self.mmu.report_fault(self, fault)
                raise
            if t.size == 4096:
                self._tlb[page] = t
            else:
                for p in range(t.va_page >> 12, min((t.va_page + t.size) >> 12, page + 512)):
                    self._tlb[p] = t
        return t.pa(va)

    def _injected_fault(self, va: int, access: int) -> None:
        faults = self.mmu.dev.faults
        for inj in faults.find("mmu_fault"):
            start = inj.params.get("va", 0)
            if inj.params.get("as", self.index) == self.index and start <= va < start + inj.params.get("size", 4096):
                if faults.take("mmu_fault", **{"as": self.index, "va": start}):
                    fault = MmuFault(TRANSLATION_FAULT_0 + 3, va, access, "injected translation fault")
                    self.mmu.report_fault(self, fault)
                    raise fault

    def _chunks(self, va: int, size: int, access: int):
        while size > 0:
            n = min(size, 4096 - (va & 0xFFF))
            yield self.translate(va, access), n
            va += n
            size -= n

    def read(self, va: int, size: int, access: int = ACCESS_READ) -> bytes:
        dma = self.mmu.dev.host.dma
        if (va & 0xFFF) + size <= 4096:  # within one page: one translation
            return dma.read(self.translate(va, access), size)
        return b"".join(dma.read(pa, n) for pa, n in self._chunks(va, size, access))

    def write(self, va: int, data: bytes) -> None:
        dma = self.mmu.dev.host.dma
        chunks = list(self._chunks(va, len(data), ACCESS_WRITE))  # translate all before writing
        pos = 0
        for pa, n in chunks:
            dma.write(pa, data[pos:pos + n])
            pos += n

    def read_u32(self, va: int) -> int:
        return int.from_bytes(self.read(va, 4), "little")

    def read_u64(self, va: int) -> int:
        return int.from_bytes(self.read(va, 8), "little")

    def write_u32(self, va: int, value: int) -> None:
        self.write(va, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def write_u64(self, va: int, value: int) -> None:
        self.write(va, (value & (1 << 64) - 1).to_bytes(8, "little"))


class Mmu:
    def __init__(self, dev: "MaliDevice"):
        self.dev = dev
        self.regs = dev.regs
        present = self.regs["AS_PRESENT"]
        self.address_spaces = [AddressSpace(self, i) for i in range(MAX_AS)]
        for i in range(MAX_AS):
            if present & (1 << i):
                self.regs.on_write(f"AS_COMMAND[{i}]", self._command_handler(i))
                self.regs.on_read(f"AS_STATUS[{i}]", self._status_handler(i))
            else:
                for name in ("AS_TRANSTAB", "AS_MEMATTR", "AS_LOCKADDR", "AS_TRANSCFG", "AS_COMMAND"):
                    self.regs.on_write(f"{name}[{i}]", self._absent(i))

    def __getitem__(self, index: int) -> AddressSpace:
        return self.address_spaces[index]

    def _absent(self, i: int):
        def write(reg, value, mask):
            self.regs._misuse("write to %s: AS%d is not in AS_PRESENT 0x%x", reg.full_name, i, self.regs["AS_PRESENT"])
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
        if self.dev.events.active:
            self.dev.events.emit(Kind.MMU_COMMAND, value=cmd, slot=i)
        if cmd == AS_CMD_UPDATE:
            a.config = AsConfig(r[f"AS_TRANSTAB[{i}]"], r[f"AS_MEMATTR[{i}]"], r[f"AS_TRANSCFG[{i}]"])
            log.info("AS%d UPDATE: TRANSTAB 0x%x TRANSCFG %s MEMATTR 0x%016x", i, a.config.transtab,
                     r.regmap.decode(r.regmap[f"AS_TRANSCFG[{i}]"].offset, a.config.transcfg, 64),
                     a.config.memattr)
        elif cmd in (AS_CMD_LOCK, AS_CMD_UNLOCK, AS_CMD_FLUSH_PT, AS_CMD_FLUSH_MEM, AS_CMD_NOP):
            log.debug("AS%d %s", i, AS_COMMANDS.get(cmd))
        else:
            r._misuse("AS_COMMAND[%d] with unknown command %d", i, cmd)
            return
        a.invalidate()
        if self.dev.faults and self.dev.faults.take("as_active_stuck", **{"as": i}):
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
        if self.dev.events.active:
            self.dev.events.emit(Kind.MMU_FAULT, fault.va, fault.exception_type | fault.access << 8, slot=i)
        if self.dev.mmu_irq.rawstat & (1 << i):
            return  # the first fault stays latched until the driver clears it
        self.regs[f"AS_FAULTSTATUS[{i}]"] = fault.exception_type | fault.access << 8
        self.regs[f"AS_FAULTADDRESS[{i}]"] = fault.va
        self.dev.mmu_irq.raise_bits(1 << i)

    def reset(self) -> None:
        for a in self.address_spaces:
            a.config = AsConfig()
            a.stuck = False
            a.invalidate()
