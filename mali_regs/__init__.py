"""mali_regs: the Mali CSF register map and GPU profiles, as data.

Pure data + decode; imports nothing else of the project.  The single source of
register names for the device model, logs and traces.

Quick tour::

    from mali_regs import MALI_MMIO, GPU_CONTROL, MMU_AS, get_profile

    GPU_CONTROL.GPU_ID.offset                  # 0x0
    MMU_AS.AS[3].COMMAND.offset                # 0x24d8  (== MMU_AS.AS_COMMAND[3])
    reg, part = MALI_MMIO.lookup(0x104)        # (SHADER_PRESENT, Part.HI)   O(1)
    MALI_MMIO.decode(0x28, 0x301)              # 'GPU_IRQ_MASK = 0x00000301 (FAULT|RESET_COMPLETED|POWER_CHANGED)'
    GPU_CONTROL.GPU_COMMAND.fields(0x23304)    # {'COMMAND': 4, 'L2_FLUSH': 3, 'LSC_FLUSH': 3, 'OTHER_FLUSH': 2}
    GPU_CONTROL.GPU_COMMAND.encode(COMMAND="RESET", RESET_MODE="SOFT_RESET")   # 0x101
    get_profile("g610").firmware_path          # 'arm/mali/arch10.8/mali_csffw.bin'
"""

from .enums import (
                    ACCESS_TYPES,
                    AS_ADRMODES,
                    AS_COMMANDS,
                    COHERENCY_PROTOCOLS,
                    EXCEPTION_TYPES,
                    FLUSH_MODES,
                    GPU_COMMAND_CODES,
                    MCU_CONTROL_MODES,
                    MCU_STATUSES,
                    exception_code,
                    exception_name,
                    is_fault,
)
from .mmio import (
                    BLOCKS,
                    CSF_GLB_DOORBELL_ID,
                    DOORBELLS,
                    GPU_CMD_CLEAR_FAULT,
                    GPU_CMD_HARD_RESET,
                    GPU_CMD_NOP,
                    GPU_CMD_SOFT_RESET,
                    GPU_CONTROL,
                    GPU_IRQ_BITS,
                    JOB_CONTROL,
                    MALI_MMIO,
                    MAX_AS,
                    MCU_CONTROL,
                    MMIO_SIZE,
                    MMU_AS,
                    MMU_CONTROL,
                    NUM_DOORBELLS,
                    PWR_CONTROL,
                    PWR_KEY_UNLOCK,
                    USER,
                    as_lockaddr,
                    gpu_cmd_flush_caches,
                    regmap_for_arch,
)
from .profiles import DEFAULT_PROFILE, PROFILES, GpuProfile, firmware_path_for, get_profile, make_gpu_id, profile_names, split_gpu_id
from .regmap import Access, Field, GroupArray, Part, Register, RegisterArray, RegisterBlock, RegMap

__all__ = [
    # framework
    "Access", "Field", "Part", "Register", "RegisterArray", "GroupArray", "RegisterBlock", "RegMap",
    # the map
    "MALI_MMIO", "BLOCKS", "GPU_CONTROL", "MCU_CONTROL", "PWR_CONTROL", "JOB_CONTROL",
    "MMU_CONTROL", "MMU_AS", "USER", "DOORBELLS", "regmap_for_arch",
    "MMIO_SIZE", "MAX_AS", "NUM_DOORBELLS", "CSF_GLB_DOORBELL_ID", "PWR_KEY_UNLOCK",
    "GPU_CMD_NOP", "GPU_CMD_SOFT_RESET", "GPU_CMD_HARD_RESET", "GPU_CMD_CLEAR_FAULT",
    "gpu_cmd_flush_caches", "as_lockaddr", "GPU_IRQ_BITS",
    # value tables
    "EXCEPTION_TYPES", "exception_name", "exception_code", "is_fault", "ACCESS_TYPES",
    "GPU_COMMAND_CODES", "FLUSH_MODES", "AS_COMMANDS", "AS_ADRMODES", "COHERENCY_PROTOCOLS",
    "MCU_CONTROL_MODES", "MCU_STATUSES",
    # profiles
    "GpuProfile", "PROFILES", "DEFAULT_PROFILE", "get_profile", "profile_names",
    "make_gpu_id", "split_gpu_id", "firmware_path_for",
]
