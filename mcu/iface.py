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
        self._where = _where(block)

    def _reg(self, name: str):
        return self.block[name]

    def __getitem__(self, name: str) -> int:
        where = self._where.get(name)
        if where is None:
            self._reg(name)  # KeyError naming the block
        off, wide = where
        return self.aspace.read_u64(self.va + off) if wide else self.aspace.read_u32(self.va + off)

    def __setitem__(self, name: str, value: int) -> None:
        where = self._where.get(name)
        if where is None:
            self._reg(name)
        off, wide = where
        if wide:
            self.aspace.write_u64(self.va + off, value)
        else:
            self.aspace.write_u32(self.va + off, value)

    def describe(self, name: str) -> str:
        r = self._reg(name)
        return r.describe(self[name])


_WHERE: dict[int, tuple[RegisterBlock, dict[str, tuple[int, bool]]]] = {}


def _where(block: RegisterBlock) -> dict[str, tuple[int, bool]]:
    """Register name -> (offset, 64-bit) for `block`, built once per block: the doorbell
    path looks up about a hundred fields per request."""
    got = _WHERE.get(id(block))
    if got is None or got[0] is not block:
        got = _WHERE[id(block)] = (block, {n: (r.offset, r.width == 64) for n, r in block._by_full.items()})
    return got[1]


class SharedSection:
    """The GLB/CSG/CS interface blocks at their places in the shared section (a layout from
    mali_regs.csf_iface), reached through the MCU's address space. Blocks are made once per
    place (the layout and address space are fixed for the section's life)."""

    def __init__(self, address_space, layout: SharedLayout):
        self.aspace = address_space
        self.layout = layout
        self._blocks: dict[tuple, IfaceBlock] = {}

    def _block(self, block: RegisterBlock, slot: int, stream: int) -> IfaceBlock | None:
        got = self._blocks.get((block.name, slot, stream))
        return got if got is not None and got.block is block else None

    def glb(self, block: RegisterBlock) -> IfaceBlock:
        got = self._block(block, -1, -1)
        if got is None:
            lay = self.layout
            va = {"GLB_CONTROL": lay.base_va, "GLB_INPUT": lay.glb_input_va, "GLB_OUTPUT": lay.glb_output_va}[block.name]
            got = self._blocks[block.name, -1, -1] = IfaceBlock(self.aspace, va, block)
        return got

    def csg(self, block: RegisterBlock, slot: int) -> IfaceBlock:
        got = self._block(block, slot, -1)
        if got is None:
            lay = self.layout
            va = {"CSG_CONTROL": lay.base_va + lay.csg_control(slot), "CSG_INPUT": lay.csg_input_va(slot),
                  "CSG_OUTPUT": lay.csg_output_va(slot)}[block.name]
            got = self._blocks[block.name, slot, -1] = IfaceBlock(self.aspace, va, block)
        return got

    def cs(self, block: RegisterBlock, slot: int, stream: int) -> IfaceBlock:
        got = self._block(block, slot, stream)
        if got is None:
            lay = self.layout
            va = {"CS_CONTROL": lay.base_va + lay.cs_control(slot, stream), "CS_INPUT": lay.cs_input_va(slot, stream),
                  "CS_OUTPUT": lay.cs_output_va(slot, stream)}[block.name]
            got = self._blocks[block.name, slot, stream] = IfaceBlock(self.aspace, va, block)
        return got
