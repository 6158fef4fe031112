"""Register storage and access dispatch for the MMIO window, driven by a `mali_regs` RegMap.

Every 32-bit word the map names has a value; 64-bit registers are stored whole and accessed
as LO/HI halves or in one 64-bit access. A block can take over a register by registering a
read or write hook; everything else behaves as its declared access (RO ignores writes,
RW stores, WO reads 0). Driver misuse is logged with the decoded register name, because
that is what bring-up debugging needs.
"""

from __future__ import annotations

import logging
from typing import Callable

from mali_regs.regmap import Access, Part, Register, RegMap
from vdev.ratelimit import RateLimitedLog

log = logging.getLogger("mali.regs")

_HI = Part.HI
ReadHook = Callable[[Register], int]
WriteHook = Callable[[Register, int, int], None]  # (register, new full value, bits written mask)


class RegisterFile:
    def __init__(self, regmap: RegMap, values: dict[str, int] | None = None):
        self.regmap = regmap
        self._index = regmap.index
        self._reset = {r: r.reset for r in regmap.registers}
        for name, value in (values or {}).items():
            self._reset[regmap[name]] = value
        self.values: dict[Register, int] = dict(self._reset)
        self._read_hooks: dict[Register, ReadHook] = {}
        self._write_hooks: dict[Register, WriteHook] = {}
        self.misuse = 0  # count of driver-misuse events (tests and stats read it), logged or not
        # A driver (or a fuzzer) can misuse registers at MMIO speed: bounded log, summarised.
        self._misuse_log = RateLimitedLog(log, burst=20, interval=1.0)
        self._write_only = frozenset(r for r in regmap.registers if not r.access.readable)

    def reset(self) -> None:
        self.values = dict(self._reset)

    def on_read(self, name: str, hook: ReadHook) -> None:
        self._read_hooks[self.regmap[name]] = hook

    def on_write(self, name: str, hook: WriteHook) -> None:
        self._write_hooks[self.regmap[name]] = hook

    def __getitem__(self, name: str) -> int:
        return self.values[self.regmap[name]]

    def __setitem__(self, name: str, value: int) -> None:
        reg = self.regmap[name]
        self.values[reg] = value & reg.mask

    def report_misuse(self, msg: str, *args) -> None:
        """Log driver misuse (a block's own check failed) with the count tests read."""
        self.misuse += 1
        self._misuse_log.warning("driver misuse: " + msg, *args)

    # -- word access ---------------------------------------------------------------------

    def _value(self, reg: Register) -> int:
        hook = self._read_hooks.get(reg)
        return hook(reg) if hook is not None else self.values[reg]

    def read32(self, offset: int) -> int:
        hit = self._index.get(offset)
        if hit is None:
            self.report_misuse("read of unmapped offset 0x%05x", offset)
            return 0
        reg, part = hit
        if reg in self._write_only:
            self.report_misuse("read of write-only %s", reg.part_name(part))
            return 0
        hook = self._read_hooks.get(reg)  # _value(), inlined: this is every register read
        v = hook(reg) if hook is not None else self.values[reg]
        return (v >> 32) & 0xFFFFFFFF if part is _HI else v & 0xFFFFFFFF

    def write32(self, offset: int, value: int) -> None:
        hit = self._index.get(offset)
        if hit is None:
            self.report_misuse("write 0x%08x to unmapped offset 0x%05x", value, offset)
            return
        reg, part = hit
        shift = 32 if part is Part.HI else 0
        self._write(reg, value << shift, 0xFFFFFFFF << shift, reg.part_name(part))

    def read64(self, offset: int) -> int:
        hit = self._index.get(offset)
        if hit is not None and hit[0].width == 64 and hit[1] is Part.LO:
            reg = hit[0]
            if not reg.access.readable:
                self.report_misuse("read of write-only %s", reg.full_name)
                return 0
            return self._value(reg)
        return self.read32(offset) | self.read32(offset + 4) << 32

    def write64(self, offset: int, value: int) -> None:
        hit = self._index.get(offset)
        if hit is not None and hit[0].width == 64 and hit[1] is Part.LO:
            self._write(hit[0], value, (1 << 64) - 1, hit[0].full_name)
        else:
            self.write32(offset, value & 0xFFFFFFFF)
            self.write32(offset + 4, value >> 32)

    def _write(self, reg: Register, value: int, mask: int, shown: str) -> None:
        if reg.access is Access.RO:
            self.report_misuse("write 0x%x to read-only %s", value & mask, shown)
            return
        mask &= reg.mask
        hook = self._write_hooks.get(reg)
        if reg.access in (Access.RW, Access.WO):
            new = (self.values[reg] & ~mask) | (value & mask)
        else:  # W1C / W1S: the hook gives the bits their meaning; store nothing by default
            new = value & mask
        if hook is not None:
            hook(reg, new, mask)
        elif reg.access in (Access.RW, Access.WO):
            self.values[reg] = new

    # -- any width (what the PCI BAR sees) ------------------------------------------------

    def read(self, offset: int, width: int) -> int:
        if width == 4:
            return self.read32(offset)
        if width == 8:
            return self.read64(offset)
        word = offset & ~3
        self.report_misuse("%d-byte read inside %s", width, self.regmap.name_of(word))
        return (self.read32(word) >> (8 * (offset - word))) & ((1 << (8 * width)) - 1)

    def write(self, offset: int, width: int, value: int) -> None:
        if width == 4:
            self.write32(offset, value)
        elif width == 8:
            self.write64(offset, value)
        else:
            word = offset & ~3
            self.report_misuse("%d-byte write 0x%x inside %s (applied as read-modify-write)",
                         width, value, self.regmap.name_of(word))
            shift = 8 * (offset - word)
            mask = ((1 << (8 * width)) - 1) << shift
            hit = self._index.get(word)
            current = self.read32(word) if hit is not None and hit[0].access.readable else 0
            self.write32(word, (current & ~mask) | ((value << shift) & mask))
