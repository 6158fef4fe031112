"""The Mali CSF (Valhall/5th-gen) MMIO register map that panthor and Tyr use.

Offsets are absolute within the GPU's single MMIO window (``reg`` index 0 of the
device-tree node, 2 MiB on RK3588).  Canonical names are Arm's hardware names as
kbase and Tyr spell them (``GPU_IRQ_RAWSTAT``, ``GPU_COMMAND``, ``GPU_FAULTSTATUS``);
panthor's spellings (``GPU_INT_RAWSTAT``, ``GPU_CMD``, ``GPU_FAULT_STATUS``,
``JOB_INT_*``, ``MMU_INT_*``, ``GPU_COHERENCY_PROTOCOL`` ...) are aliases, so both
``GPU_CONTROL.GPU_CMD`` and ``GPU_CONTROL.GPU_COMMAND`` work; logs always print the
canonical name.

Sources (facts only): torvalds/linux ``drivers/gpu/drm/panthor/panthor_{gpu,mmu,fw,pwr}_regs.h``
and the older ``panthor_regs.h``; ``drivers/gpu/drm/tyr/regs.rs``; Arm kbase
``mali_kbase_gpu_regmap.h`` / ``backend/mali_kbase_gpu_regmap_csf.h`` (bifrost tree)
for registers panthor does not name (PRFCNT_FEATURES, GPU_COMMAND_ARG*, STACK_*,
SYSC_ALLOC, THREAD_TLS_ALLOC, CSF_CONFIG ...); shared/docs/panthor-contract.md §2.

Reset values here are the generic ones; the per-GPU identification values come from
:mod:`mali_regs.profiles`.
"""

from __future__ import annotations

from .enums import (
    ACCESS_TYPES,
    AS_ADRMODES,
    AS_COMMANDS,
    COHERENCY_PROTOCOLS,
    EXCEPTION_TYPES,
    FLUSH_MODES,
    GPU_COMMAND_CODES,
    IMPLEMENTATION_TECHNOLOGIES,
    MCU_CONTROL_MODES,
    MCU_STATUSES,
    MEMATTR_ALLOC,
    MEMATTR_SHAREABILITY,
    MEMATTR_TYPES,
    PTW_MEMATTRS,
    PTW_SHAREABILITY,
    PWR_COMMANDS,
    PWR_DOMAINS,
    RESET_MODES,
)
from .regmap import R32, R64, Access, F, GroupArray, Register, RegisterArray, RegisterBlock, RegMap, flags

RO, WO, RW, W1C, W1S = Access.RO, Access.WO, Access.RW, Access.W1C, Access.W1S

__all__ = [
    "GPU_CONTROL", "MCU_CONTROL", "PWR_CONTROL", "JOB_CONTROL", "MMU_CONTROL", "MMU_AS",
    "USER", "DOORBELLS", "MALI_MMIO", "BLOCKS", "regmap_for_arch",
    "MMIO_SIZE", "MAX_AS", "NUM_DOORBELLS", "DOORBELL_BASE", "DOORBELL_STRIDE", "JOB_IRQ_GLOBAL_IF", "CSF_GLB_DOORBELL_ID", "PWR_KEY_UNLOCK",
    "GPU_CMD_NOP", "GPU_CMD_SOFT_RESET", "GPU_CMD_HARD_RESET", "GPU_CMD_CLEAR_FAULT",
    "gpu_cmd_flush_caches", "GPU_IRQ_BITS", "as_lockaddr",
]

#: Size of the MMIO window panthor/Tyr map (RK3588 DT ``reg``; Tyr's ``iomap_sized::<SZ_2M>``).
MMIO_SIZE = 0x200000
#: Hardware maximum of address spaces (MMU_IRQ has 16 page-fault bits; Tyr ``MAX_AS``).
MAX_AS = 16
#: Doorbell pages the hardware defines (Tyr ``NUM_DOORBELLS``).  Only doorbells
#: 0..23 fit in a 2 MiB window; panthor uses 0 (global) and csg_slot + 1.
NUM_DOORBELLS = 64
DOORBELL_BASE, DOORBELL_STRIDE = 0x80000, 0x10000
CSF_GLB_DOORBELL_ID = 0
PWR_KEY_UNLOCK = 0x2968A819


def _gpu(*names: str) -> tuple[str, ...]:
    """panthor's ``GPU_``-prefixed alias(es)."""
    return tuple("GPU_" + n for n in names)


# --------------------------------------------------------------------------------------
# GPU_CONTROL (0x0000)
# --------------------------------------------------------------------------------------

#: GPU_IRQ_{RAWSTAT,CLEAR,MASK,STATUS} bits (names as panthor, ``GPU_IRQ_*``)
GPU_IRQ_BITS = {
    0: "FAULT",
    1: "PROTM_FAULT",
    8: "RESET_COMPLETED",
    9: "POWER_CHANGED",           # kbase/Tyr: POWER_CHANGED_SINGLE
    10: "POWER_CHANGED_ALL",
    17: "CLEAN_CACHES_COMPLETED",
    18: "DOORBELL_MIRROR",
    19: "MCU_STATUS_CHANGED",
    20: "FLUSH_PA_RANGE_COMPLETED",  # kbase; not used by panthor
}
_GPU_IRQ = flags(GPU_IRQ_BITS)

_FAULTSTATUS_COMMON = (
    F("EXCEPTION_TYPE", 7, 0, EXCEPTION_TYPES),
    F("ACCESS_TYPE", 9, 8, ACCESS_TYPES),
)

GPU_CONTROL = RegisterBlock("GPU_CONTROL", 0x0000, size=0x1000, doc="GPU control page", members=[
    R32("GPU_ID", 0x000, RO, doc="GPU and revision identifier; 0 makes panthor fail with -ENXIO", fields=(
        F("ARCH_MAJOR", 31, 28), F("ARCH_MINOR", 27, 24), F("ARCH_REV", 23, 20),
        F("PROD_MAJOR", 19, 16), F("VER_MAJOR", 15, 12), F("VER_MINOR", 11, 4),
        F("VER_STATUS", 3, 0))),
    R32("L2_FEATURES", 0x004, RO, aliases=_gpu("L2_FEATURES"),
        doc="L2 cache features (log2 encodings); line size = 1 << LINE_SIZE", fields=(
            F("LINE_SIZE", 7, 0, doc="log2 bytes"), F("ASSOCIATIVITY", 15, 8, doc="log2 ways"),
            F("CACHE_SIZE", 23, 16, doc="log2 bytes per slice"), F("BUS_WIDTH", 31, 24, doc="log2 bits"))),
    R32("CORE_FEATURES", 0x008, RO, aliases=_gpu("CORE_FEATURES"), doc="Shader core features",
        fields=(F("CORE_VARIANT", 7, 0),)),
    R32("TILER_FEATURES", 0x00C, RO, aliases=_gpu("TILER_FEATURES"), doc="Tiler features", fields=(
        F("BIN_SIZE", 5, 0, doc="log2 of the bin size"), F("MAX_LEVELS", 11, 8))),
    R32("MEM_FEATURES", 0x010, RO, aliases=_gpu("MEM_FEATURES"), doc="Memory system features", fields=(
        F("GROUPS_L2_COHERENT", 0), F("SUPER_L2_COHERENT", 1),
        F("L2_SLICES", 11, 8, doc="number of L2 slices minus one"))),
    R32("MMU_FEATURES", 0x014, RO, aliases=_gpu("MMU_FEATURES"),
        doc="MMU features; PA_BITS must be one of 32/36/40/42/44/48/52 for panthor", fields=(
            F("VA_BITS", 7, 0), F("PA_BITS", 15, 8))),
    R32("AS_PRESENT", 0x018, RO, aliases=_gpu("AS_PRESENT"),
        doc="Address spaces present (bit n = AS n); AS0 is the MCU's, panthor needs >= 2"),
    R32("CSF_ID", 0x01C, RO, aliases=_gpu("CSF_ID"), doc="CSF (MCU + CS hardware) version", fields=(
        F("MCU_REV", 3, 0), F("MCU_MINOR", 9, 4), F("MCU_MAJOR", 15, 10),
        F("CSHW_REV", 19, 16), F("CSHW_MINOR", 25, 20), F("CSHW_MAJOR", 31, 26))),
    R32("GPU_IRQ_RAWSTAT", 0x020, W1S, fields=_GPU_IRQ, aliases=("GPU_INT_RAWSTAT",),
        doc="GPU IRQ raw status; writing 1s forces bits on"),
    R32("GPU_IRQ_CLEAR", 0x024, W1C, fields=_GPU_IRQ, aliases=("GPU_INT_CLEAR",),
        doc="Write 1 to clear GPU_IRQ_RAWSTAT bits"),
    R32("GPU_IRQ_MASK", 0x028, RW, fields=_GPU_IRQ, aliases=("GPU_INT_MASK",),
        doc="GPU IRQ enable mask (panthor: 0x20103)"),
    R32("GPU_IRQ_STATUS", 0x02C, RO, fields=_GPU_IRQ, aliases=("GPU_INT_STAT",),
        doc="RAWSTAT & MASK; the gpu IRQ line is STATUS != 0"),
    R32("GPU_COMMAND", 0x030, WO, aliases=("GPU_CMD",),
        doc="GPU command: COMMAND | payload << 8 (soft reset 0x101, flush 0x23304 ...)",
        fields=(F("COMMAND", 7, 0, GPU_COMMAND_CODES),),
        variant_field="COMMAND", variants={
            0x01: (F("RESET_MODE", 11, 8, RESET_MODES),),
            0x03: (F("TIME_MODE", 15, 8, {0: "CYCLE_COUNT_STOP", 1: "CYCLE_COUNT_START"}),),
            0x04: (F("L2_FLUSH", 11, 8, FLUSH_MODES), F("LSC_FLUSH", 15, 12, FLUSH_MODES),
                   F("OTHER_FLUSH", 19, 16, FLUSH_MODES)),
            0x08: (F("PA_FLUSH_MODE", 11, 8, FLUSH_MODES), F("PA_OTHER_CACHE", 12),
                   F("PA_LSC_CACHE", 13), F("PA_L2_CACHE", 14)),
        }),
    R32("GPU_STATUS", 0x034, RO, doc="GPU status (not read by panthor)", fields=flags({
        0: "GPU_ACTIVE", 1: "PWR_ACTIVE", 2: "PRFCNT_ACTIVE", 4: "PAGE_FAULT",
        6: "CYCLE_COUNT_ACTIVE", 7: "PROTM_ACTIVE", 8: "DBG_ENABLED"})),
    R32("GPU_FAULTSTATUS", 0x03C, RO, aliases=("GPU_FAULT_STATUS",),
        doc="GPU fault status (read on GPU_IRQ FAULT)", fields=_FAULTSTATUS_COMMON + (
            F("ADDRESS_VALID", 10), F("JASID_VALID", 11), F("JASID", 15, 12),
            F("SOURCE_ID", 31, 16))),
    R64("GPU_FAULTADDRESS", 0x040, RO, aliases=("GPU_FAULT_ADDR",), doc="GPU fault address"),
    R32("L2_CONFIG", 0x048, RW, aliases=_gpu("L2_CONFIG"),
        doc="L2 configuration; panthor sets ASN_HASH_ENABLE on arch >= 11 with SoC ASN hash data",
        fields=(F("PBHA_HWU", 15, 12), F("CACHE_SIZE", 23, 16), F("ASN_HASH_ENABLE", 24))),
    R32("PWR_KEY", 0x050, WO, aliases=_gpu("PWR_KEY"),
        doc=f"Power manager key; write 0x{PWR_KEY_UNLOCK:08X} to unlock PWR_OVERRIDEn"),
    R32("PWR_OVERRIDE0", 0x054, RW, aliases=_gpu("PWR_OVERRIDE0"), doc="Power manager override 0"),
    R32("PWR_OVERRIDE1", 0x058, RW, aliases=_gpu("PWR_OVERRIDE1"), doc="Power manager override 1"),
    R64("GPU_FEATURES", 0x060, RO,
        doc="GPU features (introduced in arch 11; panthor reads it on every arch, 0 on arch 10)", fields=(
            F("RAY_INTERSECTION", 2), F("RAY_TRAVERSAL", 5))),
    R32("PRFCNT_FEATURES", 0x068, RO, doc="Performance counter features (kbase)",
        fields=(F("COUNTER_BLOCK_SIZE", 7, 0),)),
    R64("TIMESTAMP_OFFSET", 0x088, RW, aliases=_gpu("TIMESTAMP_OFFSET"), doc="Global timestamp offset"),
    R64("CYCLE_COUNT", 0x090, RO, aliases=_gpu("CYCLE_COUNT"), doc="GPU cycle counter"),
    R64("TIMESTAMP", 0x098, RO, aliases=_gpu("TIMESTAMP"),
        doc="Global timestamp (should tick at the guest CNTFRQ)"),
    R32("THREAD_MAX_THREADS", 0x0A0, RO, aliases=_gpu("THREAD_MAX_THREADS"),
        doc="Maximum threads per core"),
    R32("THREAD_MAX_WORKGROUP_SIZE", 0x0A4, RO, aliases=_gpu("THREAD_MAX_WORKGROUP_SIZE"),
        doc="Maximum threads per workgroup"),
    R32("THREAD_MAX_BARRIER_SIZE", 0x0A8, RO, aliases=_gpu("THREAD_MAX_BARRIER_SIZE"),
        doc="Maximum threads waiting at a barrier"),
    R32("THREAD_FEATURES", 0x0AC, RO, aliases=_gpu("THREAD_FEATURES"), doc="Thread features", fields=(
        F("MAX_REGISTERS", 21, 0), F("IMPLEMENTATION_TECHNOLOGY", 23, 22, IMPLEMENTATION_TECHNOLOGIES),
        F("MAX_TASK_QUEUE", 31, 24))),
    RegisterArray(R32("TEXTURE_FEATURES", 0x0B0, RO, aliases=_gpu("TEXTURE_FEATURES"),
                      doc="Supported texture formats bitmap n (n = 0..3)"), 4, 4),
    R64("GPU_COMMAND_ARG0", 0x0D0, RW, doc="GPU command argument 0 (FLUSH_PA_RANGE start)"),
    R64("GPU_COMMAND_ARG1", 0x0D8, RW, doc="GPU command argument 1 (FLUSH_PA_RANGE size)"),
    R64("SHADER_PRESENT", 0x100, RO, aliases=_gpu("SHADER_PRESENT"), doc="Shader cores present"),
    R64("TILER_PRESENT", 0x110, RO, aliases=_gpu("TILER_PRESENT"), doc="Tilers present"),
    R64("L2_PRESENT", 0x120, RO, aliases=_gpu("L2_PRESENT"),
        doc="L2 caches present (should be 1: panthor powers on mask 1)"),
    R64("SHADER_READY", 0x140, RO, doc="Shader cores powered and ready"),
    R64("TILER_READY", 0x150, RO, doc="Tilers powered and ready"),
    R64("L2_READY", 0x160, RO, doc="L2 caches powered and ready"),
    R64("SHADER_PWRON", 0x180, WO, doc="Power on shader cores (bitmap)"),
    R32("SHADER_PWRFEATURES", 0x188, RW, doc="Shader core power features (kbase)"),
    R64("TILER_PWRON", 0x190, WO, doc="Power on tilers (bitmap)"),
    R64("L2_PWRON", 0x1A0, WO, doc="Power on L2 caches (bitmap)"),
    R64("SHADER_PWROFF", 0x1C0, WO, doc="Power off shader cores (bitmap)"),
    R64("TILER_PWROFF", 0x1D0, WO, doc="Power off tilers (bitmap)"),
    R64("L2_PWROFF", 0x1E0, WO, doc="Power off L2 caches (bitmap)"),
    R64("SHADER_PWRTRANS", 0x200, RO, doc="Shader cores in power transition"),
    R64("TILER_PWRTRANS", 0x210, RO, doc="Tilers in power transition"),
    R64("L2_PWRTRANS", 0x220, RO, doc="L2 caches in power transition"),
    R64("SHADER_PWRACTIVE", 0x240, RO, doc="Shader cores active"),
    R64("TILER_PWRACTIVE", 0x250, RO, doc="Tilers active"),
    R64("L2_PWRACTIVE", 0x260, RO, doc="L2 caches active"),
    R32("GPU_REVID", 0x280, RO, aliases=("REVIDR",), doc="Revision ID"),
    RegisterArray(R32("ASN_HASH", 0x2C0, RW, aliases=_gpu("ASN_HASH"),
                      doc="ASN hash function argument n (n = 0..2)"), 3, 4),
    R32("COHERENCY_FEATURES", 0x300, RO, aliases=("GPU_COHERENCY_FEATURES", "AMBA_FEATURES"),
        doc="Supported coherency protocols; ACE_LITE required for a dma-coherent DT node",
        fields=flags({0: "ACE_LITE", 1: "ACE", 5: "MEMORY_CACHE_SUPPORT", 6: "INVALIDATE_HINT"})),
    R32("COHERENCY_ENABLE", 0x304, RW, reset=31,
        aliases=("GPU_COHERENCY_PROTOCOL", "AMBA_ENABLE"),
        doc="Selected coherency protocol (written before every L2 power-on); reset assumed NONE",
        fields=(F("PROTOCOL", 4, 0, COHERENCY_PROTOCOLS), F("MEMORY_CACHE_SUPPORT", 5),
                F("INVALIDATE_HINT", 6))),
    R32("THREAD_TLS_ALLOC", 0x310, RO, doc="Threads per core TLS must be allocated for (kbase)"),
    RegisterArray(R32("SYSC_ALLOC", 0x340, RW, doc="System cache allocation hint n (kbase)"), 8, 4),
    R64("STACK_PRESENT", 0xE00, RO, doc="Core stacks present (kbase)"),
    R64("STACK_READY", 0xE10, RO, doc="Core stacks ready (kbase)"),
    R64("STACK_PWRON", 0xE20, WO, doc="Power on core stacks (kbase)"),
    R64("STACK_PWROFF", 0xE30, WO, doc="Power off core stacks (kbase)"),
    R64("STACK_PWRTRANS", 0xE40, RO, doc="Core stacks in power transition (kbase)"),
    R32("CSF_CONFIG", 0xF00, RW, doc="CSF configuration (implementation specific, kbase)",
        fields=(F("FORCE_COHERENCY_FEATURES", 2),)),
    R32("SHADER_CONFIG", 0xF04, RW, doc="Shader core configuration (implementation specific)"),
    R32("TILER_CONFIG", 0xF08, RW, doc="Tiler configuration (implementation specific)"),
    R32("L2_MMU_CONFIG", 0xF0C, RW, doc="L2 and MMU configuration (implementation specific)"),
])

# --------------------------------------------------------------------------------------
# MCU_CONTROL (0x0700, inside the GPU_CONTROL page)
# --------------------------------------------------------------------------------------

MCU_CONTROL = RegisterBlock("MCU_CONTROL", 0x0700, size=0x100, doc="MCU (CSF firmware core) control", members=[
    R32("MCU_CONTROL", 0x700, RW, doc="MCU state request: 2 (AUTO) boots the firmware", fields=(
        F("MODE", 1, 0, MCU_CONTROL_MODES), F("DOORBELL_DISABLE", 31))),
    R32("MCU_STATUS", 0x704, RO, doc="MCU state", fields=(F("STATUS", 1, 0, MCU_STATUSES),)),
])

# --------------------------------------------------------------------------------------
# PWR_CONTROL (0x0800, arch >= 14 only: Mali-G1)
# --------------------------------------------------------------------------------------

_PWR_IRQ = flags({
    0: "POWER_CHANGED_SINGLE", 1: "POWER_CHANGED_ALL", 2: "DELEGATION_CHANGED",
    3: "RESET_COMPLETED", 4: "RETRACT_COMPLETED", 5: "INSPECT_COMPLETED",
    30: "COMMAND_NOT_ALLOWED", 31: "COMMAND_INVALID"})


def _pwr_domain(name: str, base: int, with_active: bool = True):
    regs = [
        R64(f"PWR_{name}_PRESENT", base, RO, doc=f"{name} domain present (arch 14)"),
        R64(f"PWR_{name}_READY", base + 0x08, RO, doc=f"{name} domain ready"),
        R64(f"PWR_{name}_PWRTRANS", base + 0x10, RO, doc=f"{name} domain in transition"),
    ]
    if with_active:
        regs.append(R64(f"PWR_{name}_PWRACTIVE", base + 0x18, RO, doc=f"{name} domain active"))
    return regs


PWR_CONTROL = RegisterBlock("PWR_CONTROL", 0x0800, size=0x400, since_arch=14,
                            doc="Power controller (arch >= 14)", members=[
    R32("PWR_IRQ_RAWSTAT", 0x800, W1S, fields=_PWR_IRQ, aliases=("PWR_INT_RAWSTAT",),
        doc="PWR IRQ raw status"),
    R32("PWR_IRQ_CLEAR", 0x804, W1C, fields=_PWR_IRQ, aliases=("PWR_INT_CLEAR",),
        doc="Write 1 to clear PWR_IRQ_RAWSTAT bits"),
    R32("PWR_IRQ_MASK", 0x808, RW, fields=_PWR_IRQ, aliases=("PWR_INT_MASK",),
        doc="PWR IRQ mask (panthor: 0xC000003F)"),
    R32("PWR_IRQ_STATUS", 0x80C, RO, fields=_PWR_IRQ, aliases=("PWR_INT_STAT",),
        doc="PWR IRQ status (shares the gpu line)"),
    R64("PWR_STATUS", 0x820, RO, doc="Power controller status", fields=flags({
        0: "ALLOW_L2", 1: "ALLOW_TILER", 8: "ALLOW_SHADER", 14: "ALLOW_BASE", 15: "ALLOW_STACK",
        16: "DELEGATED_L2", 17: "DELEGATED_TILER", 24: "DELEGATED_SHADER",
        30: "DELEGATED_BASE", 31: "DELEGATED_STACK",
        33: "ALLOW_SOFT_RESET", 34: "ALLOW_FAST_RESET",
        41: "POWER_PENDING", 42: "RESET_PENDING", 43: "RETRACT_PENDING", 44: "INSPECT_PENDING"})),
    R32("PWR_COMMAND", 0x828, WO, doc="subdomain << 16 | domain << 8 | command", fields=(
        F("COMMAND", 7, 0, PWR_COMMANDS), F("DOMAIN", 15, 8, PWR_DOMAINS),
        F("SUBDOMAIN", 23, 16, doc="bit 0 = RTU (width assumed)"))),
    R64("PWR_CMDARG", 0x830, RW, doc="PWR_COMMAND argument (domain mask)"),
    *_pwr_domain("L2", 0x900),
    *_pwr_domain("TILER", 0x940),
    *_pwr_domain("SHADER", 0xA00),
    *_pwr_domain("BASE", 0xB80),
    *_pwr_domain("STACK", 0xBC0, with_active=False),
])

# --------------------------------------------------------------------------------------
# JOB_CONTROL (0x1000): the CSF job interrupt
# --------------------------------------------------------------------------------------

_JOB_IRQ = flags({**{n: f"CSG{n}" for n in range(31)}, 31: "GLOBAL_IF"})

JOB_CONTROL = RegisterBlock("JOB_CONTROL", 0x1000, size=0x1000, doc="CSF job IRQ", members=[
    R32("JOB_IRQ_RAWSTAT", 0x1000, W1S, fields=_JOB_IRQ, aliases=("JOB_INT_RAWSTAT",),
        doc="Job IRQ raw status: bit 31 global interface (also the MCU boot signal), bit n CSG slot n"),
    R32("JOB_IRQ_CLEAR", 0x1004, W1C, fields=_JOB_IRQ, aliases=("JOB_INT_CLEAR",),
        doc="Write 1 to clear JOB_IRQ_RAWSTAT bits"),
    R32("JOB_IRQ_MASK", 0x1008, RW, fields=_JOB_IRQ, aliases=("JOB_INT_MASK",), doc="Job IRQ mask"),
    R32("JOB_IRQ_STATUS", 0x100C, RO, fields=_JOB_IRQ, aliases=("JOB_INT_STAT",),
        doc="RAWSTAT & MASK; the job IRQ line"),
])

# --------------------------------------------------------------------------------------
# MMU_CONTROL (0x2000) and the address spaces (0x2400 + n * 0x40)
# --------------------------------------------------------------------------------------

_MMU_IRQ = flags({**{n: f"PAGE_FAULT_AS{n}" for n in range(16)},
                  **{16 + n: f"BUS_ERROR_AS{n}" for n in range(16)}})
_MMU_IRQ_DOC = " (bits 15:0 page fault AS n; bits 31:16 bus error AS n, Tyr: command completed)"

MMU_CONTROL = RegisterBlock("MMU_CONTROL", 0x2000, size=0x400, doc="MMU IRQ", members=[
    R32("MMU_IRQ_RAWSTAT", 0x2000, W1S, fields=_MMU_IRQ, aliases=("MMU_INT_RAWSTAT",),
        doc="MMU IRQ raw status" + _MMU_IRQ_DOC),
    R32("MMU_IRQ_CLEAR", 0x2004, W1C, fields=_MMU_IRQ, aliases=("MMU_INT_CLEAR",),
        doc="Write 1 to clear MMU_IRQ_RAWSTAT bits"),
    R32("MMU_IRQ_MASK", 0x2008, RW, fields=_MMU_IRQ, aliases=("MMU_INT_MASK",),
        doc="MMU IRQ mask (panthor: 0xFFFF)"),
    R32("MMU_IRQ_STATUS", 0x200C, RO, fields=_MMU_IRQ, aliases=("MMU_INT_STAT",),
        doc="RAWSTAT & MASK; the mmu IRQ line"),
])

_AS_STRIDE = 0x40
_AS_TEMPLATES = [
    R64("AS_TRANSTAB", 0x2400, RW, doc="Translation table base (PA of the level-0 table)"),
    R64("AS_MEMATTR", 0x2408, RW, doc="Memory attributes, one byte per MAIR index",
        fields=tuple(F(f"ATTR{i}", 8 * i + 7, 8 * i, doc="see memattr_byte()") for i in range(8))),
    R64("AS_LOCKADDR", 0x2410, RW, doc="Lock region: base | (log2(size) - 1)", fields=(
        F("SIZE", 5, 0, doc="log2(region size) - 1"), F("FLUSH_SKIP_LEVELS", 9, 6),
        F("BASE", 63, 12, doc="region base >> 12"))),
    R32("AS_COMMAND", 0x2418, WO, doc="Address-space command",
        fields=(F("COMMAND", 7, 0, AS_COMMANDS),)),
    R32("AS_FAULTSTATUS", 0x241C, RO, doc="Address-space fault status",
        fields=_FAULTSTATUS_COMMON + (F("SOURCE_ID", 31, 16),)),
    R64("AS_FAULTADDRESS", 0x2420, RO, doc="Faulting virtual address"),
    R32("AS_STATUS", 0x2428, RO, doc="AS_ACTIVE while a command runs (panthor polls it to 0)",
        fields=flags({0: "AS_ACTIVE", 1: "AS_ACTIVE_INT"})),
    R64("AS_TRANSCFG", 0x2430, RW, doc="Translation configuration (panthor: 0x420001C6 for VA 48)",
        fields=(
            F("ADRMODE", 3, 0, AS_ADRMODES), F("INA_BITS", 10, 6, doc="55 - VA bits"),
            F("OUTA_BITS", 18, 14), F("SL_CONCAT", 22),
            F("PTW_MEMATTR", 25, 24, PTW_MEMATTRS), F("PTW_SH", 29, 28, PTW_SHAREABILITY),
            F("PTW_RA", 30), F("DISABLE_HIER_AP", 33), F("DISABLE_AF_FAULT", 34),
            F("WXN", 35), F("XREADABLE", 36), F("PTW_PBHA", 63, 60))),
    R64("AS_FAULTEXTRA", 0x2438, RO, doc="Extra fault information"),
]

MMU_AS = RegisterBlock("MMU_AS", 0x2400, size=MAX_AS * _AS_STRIDE, doc="MMU address spaces 0..15",
                       members=[GroupArray("AS", [RegisterArray(t, MAX_AS, _AS_STRIDE)
                                                  for t in _AS_TEMPLATES], prefix="AS_")])

# --------------------------------------------------------------------------------------
# USER page (0x10000, user-mappable) and doorbells (0x80000 + n * 0x10000)
# --------------------------------------------------------------------------------------

USER = RegisterBlock("USER", 0x10000, size=0x10000, doc="User-mappable page (LATEST_FLUSH_ID)", members=[
    R32("LATEST_FLUSH_ID", 0x10000, RO, reset=1, aliases=("CSF_GPU_LATEST_FLUSH_ID", "LATEST_FLUSH"),
        doc="Cache flush ID counter (mmapped by userspace; keep it nonzero; reset value chosen)"),
])

DOORBELLS = RegisterBlock("DOORBELLS", DOORBELL_BASE, size=NUM_DOORBELLS * DOORBELL_STRIDE, doc="CSF doorbells",
                          members=[
    RegisterArray(R32("DOORBELL", DOORBELL_BASE, WO, aliases=("CSF_DOORBELL",),
                      doc="Doorbell n: 0 = global interface, n = CSG slot + 1; write 1",
                      fields=(F("RING", 0),)), NUM_DOORBELLS, DOORBELL_STRIDE),
])

#: Every block, in address order.
BLOCKS = (GPU_CONTROL, MCU_CONTROL, PWR_CONTROL, JOB_CONTROL, MMU_CONTROL, MMU_AS, USER, DOORBELLS)

#: The whole MMIO map (all architectures).
MALI_MMIO = RegMap("MALI_MMIO", BLOCKS)


def regmap_for_arch(arch_major: int) -> RegMap:
    """The map as a GPU of ``arch_major`` has it (drops PWR_CONTROL below 14 and
    registers whose ``since_arch`` is newer).  Cached per arch."""
    try:
        return _ARCH_MAPS[arch_major]
    except KeyError:
        pass
    blocks = []
    for b in BLOCKS:
        if b.since_arch is not None and arch_major < b.since_arch:
            continue
        keep = [m for m in b.members
                if not isinstance(m, Register) or m.since_arch is None or arch_major >= m.since_arch]
        if len(keep) != len(b.members):
            b = RegisterBlock(b.name, b.base, keep, size=b.size, doc=b.doc, since_arch=b.since_arch)
        blocks.append(b)
    m = _ARCH_MAPS[arch_major] = RegMap(f"MALI_MMIO_ARCH{arch_major}", blocks)
    return m


_ARCH_MAPS: dict[int, RegMap] = {}

# --------------------------------------------------------------------------------------
# Ready-made values
# --------------------------------------------------------------------------------------

GPU_CMD_NOP = 0
GPU_CMD_SOFT_RESET = GPU_CONTROL.GPU_COMMAND.encode(COMMAND="RESET", RESET_MODE="SOFT_RESET")  # 0x101
GPU_CMD_HARD_RESET = GPU_CONTROL.GPU_COMMAND.encode(COMMAND="RESET", RESET_MODE="HARD_RESET")  # 0x201
GPU_CMD_CLEAR_FAULT = GPU_CONTROL.GPU_COMMAND.encode(COMMAND="CLEAR_FAULT")                   # 0x7


def gpu_cmd_flush_caches(l2: int | str, lsc: int | str, other: int | str) -> int:
    """``GPU_COMMAND`` FLUSH_CACHES value; modes are ints (CLEAN=1, INVALIDATE=2) or names.

    ``gpu_cmd_flush_caches(3, 3, 2) == 0x23304`` (what panthor issues around MMU updates).
    """
    return GPU_CONTROL.GPU_COMMAND.encode(COMMAND="FLUSH_CACHES", L2_FLUSH=l2, LSC_FLUSH=lsc,
                                          OTHER_FLUSH=other)


def as_lockaddr(start: int, size: int) -> int:
    """AS_LOCKADDR value for locking ``[start, start + size)`` the way panthor packs it:
    ``w = max(fls64(start ^ (end - 1)), 15) - 1``; ``(start & ~(2**w - 1)) | w``, i.e. the
    aligned 2^(w+1)-byte region covering the range (minimum 32 KiB)."""
    if size <= 0:
        raise ValueError("size must be positive")
    end = start + size
    w = max((start ^ (end - 1)).bit_length(), 15) - 1
    return (start & ~((1 << w) - 1) & ((1 << 64) - 1)) | w


def memattr_byte(memory_type: str, shareability: str = "MIDGARD_INNER", alloc: str = "EXPLICIT",
                 read_alloc: bool = False, write_alloc: bool = False) -> int:
    """One AS_MEMATTR attribute byte: [7:6] type, [5:4] shareability, [3:2] allocation
    policy, bit 1 read-allocate, bit 0 write-allocate (names from mali_regs.enums).
    ``memattr_byte("INNER_OUTER_WB", read_alloc=True, write_alloc=True) == 0x8F``."""
    def code(table, name):
        return next(v for v, n in table.items() if n == name)
    return (code(MEMATTR_TYPES, memory_type) << 6 | code(MEMATTR_SHAREABILITY, shareability) << 4
            | code(MEMATTR_ALLOC, alloc) << 2 | read_alloc << 1 | write_alloc)


def decode_memattr_byte(byte: int) -> str:
    """``0x8F`` -> ``INNER_OUTER_WB MIDGARD_INNER EXPLICIT RW-alloc``."""
    alloc = MEMATTR_ALLOC.get(byte >> 2 & 3, "RESERVED")
    hints = ("R" if byte & 2 else "") + ("W" if byte & 1 else "")
    return " ".join((MEMATTR_TYPES[byte >> 6 & 3], MEMATTR_SHAREABILITY.get(byte >> 4 & 3, "RESERVED"), alloc)
                    + ((f"{hints}-alloc",) if hints else ()))


#: JOB_IRQ bit the MCU raises for the global interface (bits 0..30 are the CSG slots)
JOB_IRQ_GLOBAL_IF = MALI_MMIO["JOB_IRQ_RAWSTAT"].field("GLOBAL_IF").mask
