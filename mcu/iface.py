"""Access to the CSF interface structures in the firmware's shared section, through AS0.

The MCU reaches shared memory the way the real one does: by MCU virtual address, translated
by address space 0, which the driver programs before it starts the MCU. Field names and
offsets come from `mali_regs.csf_iface`, so logs and traces use the same names.
"""

from __future__ import annotations

from mali_regs.csf_iface import SharedLayout
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


class SharedSection:
    """The GLB/CSG/CS interface blocks at their places in the shared section (a layout from
    mali_regs.csf_iface), reached through the MCU's address space."""

    def __init__(self, address_space, layout: SharedLayout):
        self.aspace = address_space
        self.layout = layout

    def glb(self, block: RegisterBlock) -> IfaceBlock:
        lay = self.layout
        va = {"GLB_CONTROL": lay.base_va, "GLB_INPUT": lay.glb_input_va, "GLB_OUTPUT": lay.glb_output_va}[block.name]
        return IfaceBlock(self.aspace, va, block)

    def csg(self, block: RegisterBlock, slot: int) -> IfaceBlock:
        lay = self.layout
        va = {"CSG_CONTROL": lay.base_va + lay.csg_control(slot), "CSG_INPUT": lay.csg_input_va(slot),
              "CSG_OUTPUT": lay.csg_output_va(slot)}[block.name]
        return IfaceBlock(self.aspace, va, block)

    def cs(self, block: RegisterBlock, slot: int, stream: int) -> IfaceBlock:
        lay = self.layout
        va = {"CS_CONTROL": lay.base_va + lay.cs_control(slot, stream), "CS_INPUT": lay.cs_input_va(slot, stream),
              "CS_OUTPUT": lay.cs_output_va(slot, stream)}[block.name]
        return IfaceBlock(self.aspace, va, block)
