"""Access to the CSF interface structures in the firmware's shared section, through AS0.

The MCU reaches shared memory the way the real one does: by MCU virtual address, translated
by address space 0, which the driver programs before it starts the MCU. Field names and
offsets come from `mali_regs.csf_iface`, so logs and traces use the same names.
"""

from __future__ import annotations

from mali_regs.regmap import RegisterBlock


class IfaceBlock:
    """One interface structure (e.g. the GLB input) at an MCU VA."""

    def __init__(self, address_space, va: int, block: RegisterBlock):
        self.aspace = address_space
        self.va = va
        self.block = block

    def _reg(self, name: str):
        return self.block[name]

    def __getitem__(self, name: str) -> int:
        r = self._reg(name)
        addr = self.va + r.offset
        return self.aspace.read_u64(addr) if r.width == 64 else self.aspace.read_u32(addr)

    def __setitem__(self, name: str, value: int) -> None:
        r = self._reg(name)
        addr = self.va + r.offset
        if r.width == 64:
            self.aspace.write_u64(addr, value)
        else:
            self.aspace.write_u32(addr, value)

    def describe(self, name: str) -> str:
        r = self._reg(name)
        return r.describe(self[name])
