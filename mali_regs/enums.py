"""Value tables shared by several registers (and by logs of the CSF interface).

Sources: panthor ``panthor_device.h`` (``enum drm_panthor_exception_type``),
``panthor_*_regs.h``, Tyr ``regs.rs`` and Arm kbase ``mali_kbase_gpu_regmap*.h``.
All plain ``{value: name}`` dicts so they drop straight into :class:`~mali_regs.regmap.Field`.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = [
    "EXCEPTION_TYPES",
    "EXCEPTION_MAX_NON_FAULT",
    "exception_name",
    "exception_code",
    "is_fault",
    "ACCESS_TYPES",
    "GPU_COMMAND_CODES",
    "RESET_MODES",
    "FLUSH_MODES",
    "AS_COMMANDS",
    "AS_ADRMODES",
    "PTW_MEMATTRS",
    "PTW_SHAREABILITY",
    "COHERENCY_PROTOCOLS",
    "MCU_CONTROL_MODES",
    "MCU_STATUSES",
    "PWR_COMMANDS",
    "PWR_DOMAINS",
    "IMPLEMENTATION_TECHNOLOGIES",
    "MEMATTR_ALLOC", "MEMATTR_SHAREABILITY", "MEMATTR_TYPES",
    "by_name", "EXCEPTION", "ACCESS", "GPU_COMMAND", "RESET_MODE", "AS_COMMAND", "AS_ADRMODE",
    "MCU_CONTROL_MODE", "MCU_STATUS", "ACCESS_FLAG_0",
]

#: Exception types reported in GPU_FAULTSTATUS, AS_FAULTSTATUS and the CS
#: ``fault``/``fatal`` words (bits [7:0]).  Names as panthor spells them.
EXCEPTION_TYPES = MappingProxyType({
    0x00: "OK",
    0x04: "TERMINATED",
    0x05: "KABOOM",
    0x06: "EUREKA",
    0x08: "ACTIVE",
    0x0F: "CS_RES_TERM",
    0x40: "CS_CONFIG_FAULT",
    0x41: "CS_UNRECOVERABLE",
    0x44: "CS_ENDPOINT_FAULT",
    0x48: "CS_BUS_FAULT",
    0x49: "CS_INSTR_INVALID",
    0x4A: "CS_CALL_STACK_OVERFLOW",
    0x4B: "CS_INHERIT_FAULT",
    0x50: "INSTR_INVALID_PC",
    0x51: "INSTR_INVALID_ENC",
    0x55: "INSTR_BARRIER_FAULT",
    0x58: "DATA_INVALID_FAULT",
    0x59: "TILE_RANGE_FAULT",
    0x5A: "ADDR_RANGE_FAULT",
    0x5B: "IMPRECISE_FAULT",
    0x60: "OOM",
    0x68: "CSF_FW_INTERNAL_ERROR",
    0x69: "CSF_RES_EVICTION_TIMEOUT",
    # kbase: implementation-defined codes for CSG/CS errors not in the spec
    0x70: "SW_FAULT_0",
    0x71: "SW_FAULT_1",
    0x72: "SW_FAULT_2",
    0x80: "GPU_BUS_FAULT",
    0x88: "GPU_SHAREABILITY_FAULT",
    0x89: "SYS_SHAREABILITY_FAULT",
    0x8A: "GPU_CACHEABILITY_FAULT",
    0xC0: "TRANSLATION_FAULT_0",
    0xC1: "TRANSLATION_FAULT_1",
    0xC2: "TRANSLATION_FAULT_2",
    0xC3: "TRANSLATION_FAULT_3",
    0xC4: "TRANSLATION_FAULT_4",
    0xC8: "PERM_FAULT_0",
    0xC9: "PERM_FAULT_1",
    0xCA: "PERM_FAULT_2",
    0xCB: "PERM_FAULT_3",
    0xD9: "ACCESS_FLAG_1",
    0xDA: "ACCESS_FLAG_2",
    0xDB: "ACCESS_FLAG_3",
    0xE0: "ADDR_SIZE_FAULT_IN",
    0xE4: "ADDR_SIZE_FAULT_OUT0",
    0xE5: "ADDR_SIZE_FAULT_OUT1",
    0xE6: "ADDR_SIZE_FAULT_OUT2",
    0xE7: "ADDR_SIZE_FAULT_OUT3",
    0xE8: "MEM_ATTR_FAULT_0",
    0xE9: "MEM_ATTR_FAULT_1",
    0xEA: "MEM_ATTR_FAULT_2",
    0xEB: "MEM_ATTR_FAULT_3",
})

#: Codes above this are faults (``DRM_PANTHOR_EXCEPTION_MAX_NON_FAULT``).
EXCEPTION_MAX_NON_FAULT = 0x3F

_EXC_BY_NAME = {v: k for k, v in EXCEPTION_TYPES.items()}


def exception_name(code: int) -> str:
    """Name of an exception type (bits [7:0] are used), ``UNKNOWN_0x..`` if not known."""
    code &= 0xFF
    return EXCEPTION_TYPES.get(code, f"UNKNOWN_0x{code:02x}")


def exception_code(name: str) -> int:
    """Inverse of :func:`exception_name` (exact names from :data:`EXCEPTION_TYPES`)."""
    return _EXC_BY_NAME[name.upper()]


def is_fault(code: int) -> bool:
    return (code & 0xFF) > EXCEPTION_MAX_NON_FAULT


#: FAULTSTATUS[9:8]
ACCESS_TYPES = MappingProxyType({0: "ATOMIC", 1: "EXECUTE", 2: "READ", 3: "WRITE"})

#: GPU_COMMAND[7:0] (kbase ``GPU_COMMAND_CODE_*``; panthor uses RESET and FLUSH_CACHES)
GPU_COMMAND_CODES = MappingProxyType({
    0x00: "NOP",
    0x01: "RESET",
    0x03: "TIME",
    0x04: "FLUSH_CACHES",
    0x05: "SET_PROTECTED_MODE",
    0x06: "FINISH_HALT",
    0x07: "CLEAR_FAULT",
    0x08: "FLUSH_PA_RANGE",
})

#: GPU_COMMAND RESET payload [11:8]
RESET_MODES = MappingProxyType({0: "FAST_RESET", 1: "SOFT_RESET", 2: "HARD_RESET"})

#: GPU_COMMAND FLUSH_CACHES payload nibbles: CLEAN = bit0, INVALIDATE = bit1
FLUSH_MODES = MappingProxyType({0: "NONE", 1: "CLEAN", 2: "INVALIDATE", 3: "CLEAN_INVALIDATE"})

#: AS_COMMAND[7:0]
AS_COMMANDS = MappingProxyType({
    0: "NOP",
    1: "UPDATE",
    2: "LOCK",
    3: "UNLOCK",
    4: "FLUSH_PT",
    5: "FLUSH_MEM",
})

#: AS_TRANSCFG[3:0]
AS_ADRMODES = MappingProxyType({
    0: "LEGACY",
    1: "UNMAPPED",
    2: "IDENTITY",
    6: "AARCH64_4K",
    8: "AARCH64_64K",
})

#: AS_TRANSCFG[25:24]
PTW_MEMATTRS = MappingProxyType({0: "INVALID", 1: "NON_CACHEABLE", 2: "WRITE_BACK"})

#: AS_TRANSCFG[29:28]
PTW_SHAREABILITY = MappingProxyType({0: "NON_SHAREABLE", 2: "OUTER_SHAREABLE", 3: "INNER_SHAREABLE"})

#: COHERENCY_ENABLE[4:0] (panthor GPU_COHERENCY_PROTOCOL)
COHERENCY_PROTOCOLS = MappingProxyType({0: "ACE_LITE", 1: "ACE", 31: "NONE"})

#: MCU_CONTROL[1:0]
MCU_CONTROL_MODES = MappingProxyType({0: "DISABLE", 1: "ENABLE", 2: "AUTO"})

#: MCU_STATUS[1:0]
MCU_STATUSES = MappingProxyType({0: "DISABLED", 1: "ENABLED", 2: "HALT", 3: "FATAL"})

#: PWR_COMMAND[7:0] (arch >= 14)
PWR_COMMANDS = MappingProxyType({
    0x10: "POWER_UP",
    0x11: "POWER_DOWN",
    0x20: "DELEGATE",
    0x21: "RETRACT",
    0x31: "RESET_SOFT",
    0x32: "RESET_FAST",
    0xF0: "INSPECT",
})

#: PWR_COMMAND[15:8] and PWR_STATUS allow/delegate bit numbers (arch >= 14)
PWR_DOMAINS = MappingProxyType({0: "L2", 1: "TILER", 8: "SHADER", 14: "BASE", 15: "STACK"})

#: THREAD_FEATURES[23:22]
IMPLEMENTATION_TECHNOLOGIES = MappingProxyType({0: "UNSPECIFIED", 1: "SILICON", 2: "FPGA", 3: "MODEL"})

#: AS_MEMATTR, each attribute byte [3:2]: how allocation hints are chosen; with EXPLICIT,
#: bit 0 is write-allocate and bit 1 read-allocate (panthor ``mair_to_memattr``).
MEMATTR_ALLOC = MappingProxyType({2: "IMPLEMENTATION", 3: "EXPLICIT"})

#: AS_MEMATTR, each attribute byte [5:4]: coherency (SH_CPU_INNER when the GPU is coherent)
MEMATTR_SHAREABILITY = MappingProxyType({0: "MIDGARD_INNER", 1: "CPU_INNER", 2: "CPU_INNER_SHADER_COH"})

#: AS_MEMATTR, each attribute byte [7:6]: memory type
MEMATTR_TYPES = MappingProxyType({0: "SHARED", 1: "INNER_OUTER_NC", 2: "INNER_OUTER_WB", 3: "FAULT"})


# --- the same tables by name, so code spells a name instead of a number ------------------

def by_name(table) -> MappingProxyType:
    """``{name: value}`` of a ``{value: name}`` table: ``by_name(AS_COMMANDS)["UPDATE"] == 1``."""
    return MappingProxyType({name: value for value, name in table.items()})


EXCEPTION = by_name(EXCEPTION_TYPES)          # EXCEPTION["CS_UNRECOVERABLE"] == 0x41
#: Access-flag faults are reported from level 1; level 0 is the base the level is added to.
ACCESS_FLAG_0 = EXCEPTION["ACCESS_FLAG_1"] - 1
ACCESS = by_name(ACCESS_TYPES)                # ACCESS["WRITE"] == 3
GPU_COMMAND = by_name(GPU_COMMAND_CODES)
RESET_MODE = by_name(RESET_MODES)
AS_COMMAND = by_name(AS_COMMANDS)
AS_ADRMODE = by_name(AS_ADRMODES)
MCU_CONTROL_MODE = by_name(MCU_CONTROL_MODES)
MCU_STATUS = by_name(MCU_STATUSES)            # MCU_STATUS["ENABLED"] == 1
