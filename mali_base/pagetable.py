"""The GPU MMU's stage-1 walk: AArch64 LPAE, 4 KiB granule (what panthor's io-pgtable builds).

Levels 0..3 index VA bits [47:39], [38:30], [29:21], [20:12]; the start level follows from
the input address size. Descriptors: bit0 valid; at levels 0-2 `11` is a table, `01` a block
(1 GiB at level 1, 2 MiB at level 2); at level 3 `11` is a page. Output address bits [47:12].
Leaf attributes checked: AF (bit 10), AP[2] read-only (bit 7), UXN/PXN (bits 54/53).
The walk reads descriptors from guest physical memory; a table outside guest RAM is a
translation fault at that level (the driver handles page faults, not bus errors).
"""

from __future__ import annotations

from dataclasses import dataclass

from mali_regs.enums import ACCESS, ACCESS_FLAG_0, ACCESS_TYPES, AS_ADRMODE, EXCEPTION
from mali_regs.mmio import MALI_MMIO
from vdev.dma import DmaError, DmaSpace

GRANULE = 4096
OA_MASK = 0x0000_FFFF_FFFF_F000

# AS_FAULTSTATUS access types
ACCESS_ATOMIC, ACCESS_EXECUTE, ACCESS_READ, ACCESS_WRITE = (ACCESS[n] for n in ("ATOMIC", "EXECUTE", "READ", "WRITE"))
ACCESS_NAMES = ACCESS_TYPES

# Exception types; the level is added to the level-0 code
TRANSLATION_FAULT_0 = EXCEPTION["TRANSLATION_FAULT_0"]
PERMISSION_FAULT_0 = EXCEPTION["PERM_FAULT_0"]
ADDRESS_SIZE_FAULT_IN = EXCEPTION["ADDR_SIZE_FAULT_IN"]

# TRANSCFG ADRMODE
ADRMODE_UNMAPPED, ADRMODE_IDENTITY, ADRMODE_AARCH64_4K = (AS_ADRMODE[n] for n in ("UNMAPPED", "IDENTITY", "AARCH64_4K"))
TRANSCFG_DISABLE_AF_FAULT = MALI_MMIO["AS_TRANSCFG[0]"].field("DISABLE_AF_FAULT").mask

PTE_VALID = 1 << 0
PTE_TABLE = 1 << 1
PTE_AP_RDONLY = 1 << 7
PTE_AF = 1 << 10
PTE_PXN = 1 << 53
PTE_UXN = 1 << 54


class MmuFault(Exception):
    def __init__(self, exception_type: int, va: int, access: int, why: str):
        super().__init__(f"{why} at VA 0x{va:x} ({ACCESS_NAMES.get(access, access)})")
        self.exception_type = exception_type
        self.va = va
        self.access = access
        self.why = why


@dataclass(frozen=True)
class Translation:
    va_page: int      # VA of the start of the mapping unit (page or block)
    pa_page: int
    size: int         # 4 KiB, 2 MiB or 1 GiB
    writable: bool
    executable: bool

    def pa(self, va: int) -> int:
        return self.pa_page + (va - self.va_page)


@dataclass(frozen=True)
class AsConfig:
    """What AS_COMMAND UPDATE latched."""

    transtab: int = 0
    memattr: int = 0
    transcfg: int = ADRMODE_UNMAPPED

    @property
    def adrmode(self) -> int:
        return self.transcfg & 0xF

    @property
    def va_bits(self) -> int:
        ina = (self.transcfg >> 6) & 0x1F
        return 55 - ina if ina else 48


def walk(dma: DmaSpace, cfg: AsConfig, va: int, access: int) -> Translation:
    """Translate `va` for `access` or raise MmuFault."""
    mode = cfg.adrmode
    if mode == ADRMODE_IDENTITY:
        return Translation(va & ~(GRANULE - 1), va & ~(GRANULE - 1), GRANULE, True, True)
    if mode != ADRMODE_AARCH64_4K:
        raise MmuFault(TRANSLATION_FAULT_0, va, access,
                       "address space disabled" if mode == ADRMODE_UNMAPPED else f"unsupported ADRMODE {mode}")
    va_bits = cfg.va_bits
    if va >> va_bits:
        raise MmuFault(ADDRESS_SIZE_FAULT_IN, va, access, f"VA beyond the {va_bits}-bit input range")
    level = 0 if va_bits > 39 else 1 if va_bits > 30 else 2
    table = cfg.transtab & OA_MASK
    while True:
        shift = 39 - 9 * level
        index = (va >> shift) & 0x1FF
        try:
            desc = dma.read_u64(table + 8 * index)
        except DmaError:
            raise MmuFault(TRANSLATION_FAULT_0 + level, va, access,
                           f"level-{level} table at PA 0x{table:x} is outside guest RAM") from None
        if not desc & PTE_VALID:
            raise MmuFault(TRANSLATION_FAULT_0 + level, va, access, f"invalid level-{level} descriptor")
        if level < 3 and desc & PTE_TABLE:
            table = desc & OA_MASK
            level += 1
            continue
        if level == 3 and not desc & PTE_TABLE:
            raise MmuFault(TRANSLATION_FAULT_0 + 3, va, access, "reserved level-3 descriptor")
        if level == 0:
            raise MmuFault(TRANSLATION_FAULT_0, va, access, "block descriptor at level 0")
        size = 1 << shift
        if not desc & PTE_AF and not cfg.transcfg & TRANSCFG_DISABLE_AF_FAULT:
            raise MmuFault(ACCESS_FLAG_0 + level, va, access, "access flag clear")
        writable = not desc & PTE_AP_RDONLY
        executable = not desc & (PTE_UXN | PTE_PXN)
        if access in (ACCESS_WRITE, ACCESS_ATOMIC) and not writable:
            raise MmuFault(PERMISSION_FAULT_0 + level, va, access, "write to a read-only mapping")
        if access == ACCESS_EXECUTE and not executable:
            raise MmuFault(PERMISSION_FAULT_0 + level, va, access, "execute from a no-execute mapping")
        base = va & ~(size - 1)
        return Translation(base, desc & OA_MASK & ~(size - 1), size, writable, executable)
