"""Unit tests for mali_regs: the register framework and the CSF MMIO map."""

import random

import pytest

from mali_regs import (
    BLOCKS,
    DOORBELLS,
    GPU_CMD_HARD_RESET,
    GPU_CMD_SOFT_RESET,
    GPU_CONTROL,
    JOB_CONTROL,
    MALI_MMIO,
    MAX_AS,
    MCU_CONTROL,
    MMIO_SIZE,
    MMU_AS,
    MMU_CONTROL,
    NUM_DOORBELLS,
    PWR_CONTROL,
    USER,
    Access,
    Part,
    as_lockaddr,
    exception_code,
    exception_name,
    gpu_cmd_flush_caches,
    is_fault,
    regmap_for_arch,
)
from mali_regs.regmap import R32, R64, F, GroupArray, RegisterArray, RegisterBlock, RegMap, flags

# ---------------------------------------------------------------------------------------------
# Offsets: panthor-contract.md §2.1 / §2.4 / §2.5 and panthor_*_regs.h
# ---------------------------------------------------------------------------------------------

CONTRACT_OFFSETS = {
    "GPU_ID": 0x000, "L2_FEATURES": 0x004, "CORE_FEATURES": 0x008, "TILER_FEATURES": 0x00C,
    "MEM_FEATURES": 0x010, "MMU_FEATURES": 0x014, "AS_PRESENT": 0x018, "CSF_ID": 0x01C,
    "GPU_IRQ_RAWSTAT": 0x020, "GPU_IRQ_CLEAR": 0x024, "GPU_IRQ_MASK": 0x028,
    "GPU_IRQ_STATUS": 0x02C, "GPU_COMMAND": 0x030, "GPU_STATUS": 0x034,
    "GPU_FAULTSTATUS": 0x03C, "GPU_FAULTADDRESS": 0x040, "L2_CONFIG": 0x048,
    "PWR_KEY": 0x050, "PWR_OVERRIDE0": 0x054, "PWR_OVERRIDE1": 0x058, "GPU_FEATURES": 0x060,
    "TIMESTAMP_OFFSET": 0x088, "CYCLE_COUNT": 0x090, "TIMESTAMP": 0x098,
    "THREAD_MAX_THREADS": 0x0A0, "THREAD_MAX_WORKGROUP_SIZE": 0x0A4,
    "THREAD_MAX_BARRIER_SIZE": 0x0A8, "THREAD_FEATURES": 0x0AC,
    "TEXTURE_FEATURES[0]": 0x0B0, "TEXTURE_FEATURES[3]": 0x0BC,
    "SHADER_PRESENT": 0x100, "TILER_PRESENT": 0x110, "L2_PRESENT": 0x120,
    "SHADER_READY": 0x140, "TILER_READY": 0x150, "L2_READY": 0x160,
    "SHADER_PWRON": 0x180, "TILER_PWRON": 0x190, "L2_PWRON": 0x1A0,
    "SHADER_PWROFF": 0x1C0, "TILER_PWROFF": 0x1D0, "L2_PWROFF": 0x1E0,
    "SHADER_PWRTRANS": 0x200, "TILER_PWRTRANS": 0x210, "L2_PWRTRANS": 0x220,
    "SHADER_PWRACTIVE": 0x240, "TILER_PWRACTIVE": 0x250, "L2_PWRACTIVE": 0x260,
    "GPU_REVID": 0x280, "ASN_HASH[0]": 0x2C0, "ASN_HASH[2]": 0x2C8,
    "COHERENCY_FEATURES": 0x300, "COHERENCY_ENABLE": 0x304,
    "MCU_CONTROL": 0x700, "MCU_STATUS": 0x704,
    "PWR_IRQ_RAWSTAT": 0x800, "PWR_IRQ_STATUS": 0x80C, "PWR_STATUS": 0x820,
    "PWR_COMMAND": 0x828, "PWR_CMDARG": 0x830, "PWR_L2_PRESENT": 0x900,
    "PWR_TILER_PRESENT": 0x940, "PWR_SHADER_PRESENT": 0xA00, "PWR_STACK_PWRTRANS": 0xBD0,
    "JOB_IRQ_RAWSTAT": 0x1000, "JOB_IRQ_CLEAR": 0x1004, "JOB_IRQ_MASK": 0x1008,
    "JOB_IRQ_STATUS": 0x100C,
    "MMU_IRQ_RAWSTAT": 0x2000, "MMU_IRQ_CLEAR": 0x2004, "MMU_IRQ_MASK": 0x2008,
    "MMU_IRQ_STATUS": 0x200C,
    "AS_TRANSTAB[0]": 0x2400, "AS_MEMATTR[0]": 0x2408, "AS_LOCKADDR[0]": 0x2410,
    "AS_COMMAND[0]": 0x2418, "AS_FAULTSTATUS[0]": 0x241C, "AS_FAULTADDRESS[0]": 0x2420,
    "AS_STATUS[0]": 0x2428, "AS_TRANSCFG[0]": 0x2430, "AS_FAULTEXTRA[0]": 0x2438,
    "LATEST_FLUSH_ID": 0x10000, "DOORBELL[0]": 0x80000, "DOORBELL[1]": 0x90000,
}


@pytest.mark.parametrize("name,offset", sorted(CONTRACT_OFFSETS.items()))
def test_contract_offsets(name, offset):
    assert MALI_MMIO[name].offset == offset


PANTHOR_ALIASES = {
    # panthor spelling -> canonical
    "GPU_INT_RAWSTAT": "GPU_IRQ_RAWSTAT", "GPU_INT_CLEAR": "GPU_IRQ_CLEAR",
    "GPU_INT_MASK": "GPU_IRQ_MASK", "GPU_INT_STAT": "GPU_IRQ_STATUS", "GPU_CMD": "GPU_COMMAND",
    "GPU_FAULT_STATUS": "GPU_FAULTSTATUS", "GPU_FAULT_ADDR": "GPU_FAULTADDRESS",
    "GPU_COHERENCY_PROTOCOL": "COHERENCY_ENABLE", "GPU_COHERENCY_FEATURES": "COHERENCY_FEATURES",
    "AMBA_ENABLE": "COHERENCY_ENABLE", "REVIDR": "GPU_REVID", "GPU_L2_CONFIG": "L2_CONFIG",
    "JOB_INT_RAWSTAT": "JOB_IRQ_RAWSTAT", "JOB_INT_STAT": "JOB_IRQ_STATUS",
    "MMU_INT_MASK": "MMU_IRQ_MASK", "PWR_INT_MASK": "PWR_IRQ_MASK",
    "CSF_GPU_LATEST_FLUSH_ID": "LATEST_FLUSH_ID", "GPU_SHADER_PRESENT": "SHADER_PRESENT",
    "GPU_TEXTURE_FEATURES[1]": "TEXTURE_FEATURES[1]", "CSF_DOORBELL[2]": "DOORBELL[2]",
}


@pytest.mark.parametrize("alias,canonical", sorted(PANTHOR_ALIASES.items()))
def test_aliases(alias, canonical):
    assert MALI_MMIO[alias] is MALI_MMIO[canonical]


def test_names_as_constants():
    assert GPU_CONTROL.GPU_ID.offset == 0
    assert GPU_CONTROL.GPU_CMD is GPU_CONTROL.GPU_COMMAND
    assert JOB_CONTROL.JOB_INT_MASK is JOB_CONTROL.JOB_IRQ_MASK
    assert MCU_CONTROL.MCU_STATUS.offset == 0x704
    assert USER.LATEST_FLUSH_ID.offset == 0x10000
    assert GPU_CONTROL.GPU_IRQ_MASK.RESET_COMPLETED.mask == 0x100
    assert GPU_CONTROL.GPU_IRQ_RAWSTAT.CLEAN_CACHES_COMPLETED.mask == 1 << 17
    assert JOB_CONTROL.JOB_IRQ_RAWSTAT.GLOBAL_IF.mask == 1 << 31
    assert MALI_MMIO.GPU_CONTROL is GPU_CONTROL
    with pytest.raises(AttributeError):
        GPU_CONTROL.NO_SUCH_REGISTER
    with pytest.raises(AttributeError):
        GPU_CONTROL.GPU_ID.NO_SUCH_FIELD


# ---------------------------------------------------------------------------------------------
# Arrays and lookup
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(MAX_AS))
def test_as_array_lookup(n):
    base = 0x2400 + n * 0x40
    g = MMU_AS.AS[n]
    expect = {"TRANSTAB": (0x00, 64), "MEMATTR": (0x08, 64), "LOCKADDR": (0x10, 64),
              "COMMAND": (0x18, 32), "FAULTSTATUS": (0x1C, 32), "FAULTADDRESS": (0x20, 64),
              "STATUS": (0x28, 32), "TRANSCFG": (0x30, 64), "FAULTEXTRA": (0x38, 64)}
    for short, (off, width) in expect.items():
        reg = getattr(g, short)
        assert reg is getattr(MMU_AS, "AS_" + short)[n]
        assert reg.offset == base + off and reg.width == width and reg.index == n
        assert MALI_MMIO.lookup(base + off) == (reg, Part.FULL if width == 32 else Part.LO)
        if width == 64:
            assert MALI_MMIO.lookup(base + off + 4) == (reg, Part.HI)
    assert MALI_MMIO.name_of(base + 0x18) == f"AS_COMMAND[{n}]"
    assert MALI_MMIO.name_of(base + 0x04) == f"AS_TRANSTAB_HI[{n}]"
    assert MALI_MMIO.name_of(base + 0x00, 64) == f"AS_TRANSTAB[{n}]"


def test_doorbells():
    assert len(DOORBELLS.DOORBELL) == NUM_DOORBELLS
    for i in range(NUM_DOORBELLS):
        reg, part = MALI_MMIO.lookup(0x80000 + i * 0x10000)
        assert reg is DOORBELLS.DOORBELL[i] and part is Part.FULL
        assert reg.full_name == f"DOORBELL[{i}]"
        assert reg.access is Access.WO
    # Doorbells 0..23 fit the 2 MiB window (panthor: 0 and csg_slot + 1).
    assert DOORBELLS.DOORBELL[23].end <= MMIO_SIZE <= DOORBELLS.DOORBELL[24].offset
    # Nothing lives in the rest of a doorbell page.
    assert MALI_MMIO.lookup(0x80004) is None


def test_indexed_registers():
    tf = GPU_CONTROL.TEXTURE_FEATURES
    assert len(tf) == 4 and [r.offset for r in tf] == [0xB0, 0xB4, 0xB8, 0xBC]
    assert tf.index_of(0xB8) == 2 and tf.index_of(0xC0) is None
    assert MALI_MMIO.lookup(0xB4) == (tf[1], Part.FULL)
    with pytest.raises(IndexError):
        tf[4]
    assert len(GPU_CONTROL.ASN_HASH) == 3 and len(GPU_CONTROL.SYSC_ALLOC) == 8


def test_64bit_halves_lookup():
    for name in ("SHADER_PRESENT", "L2_PWRON", "TIMESTAMP", "CYCLE_COUNT", "GPU_FAULTADDRESS"):
        r = MALI_MMIO[name]
        assert r.width == 64
        assert MALI_MMIO.lookup(r.offset) == (r, Part.LO)
        assert MALI_MMIO.lookup(r.offset + 4) == (r, Part.HI)
        assert MALI_MMIO[name + "_LO"] is r and MALI_MMIO[name + "_HI"] is r
        assert MALI_MMIO.name_of(r.offset + 4) == name + "_HI"


def test_lookup_misses():
    for off in (0x038, 0x04C, 0x3000, 0x2800, 0x10004, 0x1FFFFC):
        assert MALI_MMIO.lookup(off) is None
    assert MALI_MMIO.decode(0x3000, 5) == "UNKNOWN@0x03000 = 0x00000005"


def test_lookup_index_is_a_plain_dict_of_every_word():
    words = sum(r.size // 4 for r in MALI_MMIO)
    assert len(MALI_MMIO.index) == words


# ---------------------------------------------------------------------------------------------
# No overlaps
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.name)
def test_no_overlap_within_block(block):
    regs = sorted(block.registers, key=lambda r: r.offset)
    assert regs, block.name
    for a, b in zip(regs, regs[1:]):
        assert a.end <= b.offset, f"{a.full_name} overlaps {b.full_name}"
    for r in regs:
        assert block.base <= r.offset and r.end <= block.end
        assert r.block == block.name


def test_no_overlap_across_blocks_and_unique_names():
    regs = sorted(MALI_MMIO, key=lambda r: r.offset)
    for a, b in zip(regs, regs[1:]):
        assert a.end <= b.offset, f"{a.full_name} overlaps {b.full_name}"
    names = [r.full_name for r in regs]
    assert len(names) == len(set(names))


def test_overlap_is_rejected():
    with pytest.raises(ValueError, match="overlap"):
        RegisterBlock("X", 0, [R64("A", 0x0), R32("B", 0x4)])
    with pytest.raises(ValueError, match="overlap"):
        R32("C", 0x0, fields=(F("X", 3, 0), F("Y", 4, 3)))
    with pytest.raises(ValueError):
        R32("D", 0x2)  # misaligned
    with pytest.raises(ValueError):
        R64("E", 0x4)  # 64-bit registers are 8-byte aligned
    with pytest.raises(ValueError):
        R32("F", 0x0, fields=(F("X", 32, 0),))
    a = RegisterBlock("A", 0x0, [R32("A0", 0x0)])
    b = RegisterBlock("B", 0x0, [R32("B0", 0x0)])
    with pytest.raises(ValueError, match="overlap"):
        RegMap("AB", [a, b])


def test_every_field_fits_its_register_and_fields_do_not_overlap():
    for r in MALI_MMIO:
        for v, vf in list(r.variants.items()) + [(None, ())]:
            fs = r.field_defs + tuple(vf)
            seen = 0
            for f in fs:
                assert f.msb < r.width, (r.full_name, f.name)
                assert not (seen & f.mask), (r.full_name, f.name)
                seen |= f.mask


def test_every_register_is_documented():
    for r in MALI_MMIO:
        assert r.doc, r.full_name


def test_immutable():
    r = GPU_CONTROL.GPU_ID
    with pytest.raises(AttributeError):
        r.offset = 4
    with pytest.raises(Exception):
        r.GPU_ID = 1
    with pytest.raises(Exception):
        r.ARCH_MAJOR.msb = 3


# ---------------------------------------------------------------------------------------------
# Decode / encode
# ---------------------------------------------------------------------------------------------

def test_decode_irq_mask():
    assert MALI_MMIO.decode(0x28, 0x301) == \
        "GPU_IRQ_MASK = 0x00000301 (FAULT|RESET_COMPLETED|POWER_CHANGED)"
    assert MALI_MMIO.decode(0x28, 0x20103) == \
        "GPU_IRQ_MASK = 0x00020103 (FAULT|PROTM_FAULT|RESET_COMPLETED|CLEAN_CACHES_COMPLETED)"
    assert MALI_MMIO.decode(0x28, 0) == "GPU_IRQ_MASK = 0x00000000"
    # bits with no name are shown, not dropped
    assert MALI_MMIO.decode(0x20, 0x1004) == "GPU_IRQ_RAWSTAT = 0x00001004 (UNK=0x1004)"


def test_decode_job_and_mmu_irq():
    assert MALI_MMIO.decode(0x1000, 0x80000005) == \
        "JOB_IRQ_RAWSTAT = 0x80000005 (CSG0|CSG2|GLOBAL_IF)"
    assert MALI_MMIO.decode(0x2008, 0xFFFF).startswith("MMU_IRQ_MASK = 0x0000ffff (PAGE_FAULT_AS0|")
    assert MALI_MMIO.decode(0x2000, 0x00020004) == \
        "MMU_IRQ_RAWSTAT = 0x00020004 (PAGE_FAULT_AS2|BUS_ERROR_AS1)"


def test_decode_gpu_id_and_features():
    assert MALI_MMIO.decode(0x0, 0xA8670005) == (
        "GPU_ID = 0xa8670005 (ARCH_MAJOR=0xa, ARCH_MINOR=0x8, ARCH_REV=0x6, PROD_MAJOR=0x7, "
        "VER_MAJOR=0x0, VER_MINOR=0x0, VER_STATUS=0x5)")
    assert GPU_CONTROL.MMU_FEATURES.fields(0x2830) == {"VA_BITS": 48, "PA_BITS": 40}
    assert GPU_CONTROL.L2_FEATURES.fields(0x07120306) == {
        "LINE_SIZE": 6, "ASSOCIATIVITY": 3, "CACHE_SIZE": 0x12, "BUS_WIDTH": 7}


def test_gpu_command_variants():
    cmd = GPU_CONTROL.GPU_COMMAND
    assert GPU_CMD_SOFT_RESET == 0x101 and GPU_CMD_HARD_RESET == 0x201
    assert gpu_cmd_flush_caches(3, 3, 2) == 0x23304
    assert gpu_cmd_flush_caches("CLEAN", "CLEAN", "NONE") == 0x1104
    assert cmd.encode(command="flush_caches", l2_flush="clean_invalidate") == 0x304
    assert cmd.fields(0x23304) == {"COMMAND": 4, "L2_FLUSH": 3, "LSC_FLUSH": 3, "OTHER_FLUSH": 2}
    assert cmd.fields(0x201) == {"COMMAND": 1, "RESET_MODE": 2}
    assert MALI_MMIO.decode(0x30, 0x101) == "GPU_COMMAND = 0x00000101 (COMMAND=RESET, RESET_MODE=SOFT_RESET)"
    assert MALI_MMIO.decode(0x30, 0x23304) == (
        "GPU_COMMAND = 0x00023304 (COMMAND=FLUSH_CACHES, L2_FLUSH=CLEAN_INVALIDATE, "
        "LSC_FLUSH=CLEAN_INVALIDATE, OTHER_FLUSH=INVALIDATE)")
    assert MALI_MMIO.decode(0x30, 0x7) == "GPU_COMMAND = 0x00000007 (COMMAND=CLEAR_FAULT)"
    with pytest.raises(KeyError):
        cmd.encode(COMMAND="RESET", L2_FLUSH=3)  # a FLUSH_CACHES field on a RESET
    with pytest.raises(ValueError):
        cmd.encode(COMMAND="NO_SUCH_COMMAND")
    with pytest.raises(ValueError):
        cmd.encode(COMMAND="FLUSH_CACHES", L2_FLUSH=16)  # does not fit 4 bits


def test_decode_unknown_enum_value():
    assert MALI_MMIO.decode(0x2418, 0x9) == "AS_COMMAND[0] = 0x00000009 (COMMAND=0x9(?))"


def test_mmu_registers():
    transcfg = MMU_AS.AS[0].TRANSCFG
    v = transcfg.encode(ADRMODE="AARCH64_4K", INA_BITS=55 - 48, PTW_MEMATTR="WRITE_BACK", PTW_RA=1)
    assert v == 0x420001C6  # panthor's TRANSCFG for a 48-bit VA (contract §2.4)
    assert transcfg.encode(ADRMODE="UNMAPPED") == 1
    assert MMU_AS.AS[0].COMMAND.encode(COMMAND="UPDATE") == 1
    assert MMU_AS.AS[0].COMMAND.encode(COMMAND="FLUSH_MEM") == 5
    fs = MMU_AS.AS[2].FAULTSTATUS
    assert MALI_MMIO.decode(fs.offset, 0x000302C3) == (
        "AS_FAULTSTATUS[2] = 0x000302c3 (EXCEPTION_TYPE=TRANSLATION_FAULT_3, ACCESS_TYPE=READ, "
        "SOURCE_ID=0x3)")
    memattr = MMU_AS.AS[0].MEMATTR
    assert memattr.fields(0x4C4C4C4C8C4C8F4C)["ATTR1"] == 0x8F
    assert MMU_AS.AS[1].STATUS.encode(AS_ACTIVE=True) == 1


def test_lockaddr():
    # Tyr doc A.3 #13 and panthor's packing rule
    assert as_lockaddr(0x0, 0x10000) == 0xF
    assert as_lockaddr(0x400000, 0x10000) == 0x40000F
    assert as_lockaddr(0x800000, 0x20000) == 0x800010
    assert as_lockaddr(0x2000000, 0x40000) == 0x2000011
    assert as_lockaddr(0x1000, 0x1000) == 14  # minimum region 32 KiB
    la = MMU_AS.AS[0].LOCKADDR
    assert la.fields(as_lockaddr(0x800000, 0x20000)) == {"SIZE": 0x10, "FLUSH_SKIP_LEVELS": 0, "BASE": 0x800}


def test_64bit_decode_parts():
    tc = MMU_AS.AS[3].TRANSCFG
    lo, hi = tc.offset, tc.offset + 4
    assert MALI_MMIO.decode(lo, 0x420001C6) == (
        "AS_TRANSCFG_LO[3] = 0x420001c6 (ADRMODE=AARCH64_4K, INA_BITS=0x7, OUTA_BITS=0x0, "
        "PTW_MEMATTR=WRITE_BACK, PTW_SH=NON_SHAREABLE, PTW_RA)")
    assert MALI_MMIO.decode(hi, 0x10) == "AS_TRANSCFG_HI[3] = 0x00000010 (PTW_PBHA=0x0, XREADABLE)"
    full = MALI_MMIO.decode(lo, 0x10_420001C6, 64)
    assert full.startswith("AS_TRANSCFG[3] = 0x00000010420001c6 (ADRMODE=AARCH64_4K")
    assert full.endswith("PTW_RA|XREADABLE)")
    assert MALI_MMIO.decode(lo, 0x10_420001C6, 8) == full  # width in bytes accepted
    # a field straddling the halves is shown partially
    la = MMU_AS.AS[0].LOCKADDR
    assert MALI_MMIO.decode(la.offset + 4, 0x1) == "AS_LOCKADDR_HI[0] = 0x00000001 (BASE[63:32]=0x1)"
    assert MALI_MMIO.decode(la.offset, 0x800010) == \
        "AS_LOCKADDR_LO[0] = 0x00800010 (SIZE=0x10, FLUSH_SKIP_LEVELS=0x0, BASE[31:12]=0x800)"
    # present masks have no fields: plain value
    assert MALI_MMIO.decode(0x100, 0x50005) == "SHADER_PRESENT_LO = 0x00050005"
    assert MALI_MMIO.decode(0x100, 0x50005, 64) == "SHADER_PRESENT = 0x0000000000050005"
    # a 64-bit access spanning two 32-bit registers decodes both
    assert MALI_MMIO.decode(0x700, 0x1_00000002, 64) == \
        "MCU_CONTROL = 0x00000002 (MODE=AUTO); MCU_STATUS = 0x00000001 (STATUS=ENABLED)"
    with pytest.raises(ValueError):
        MALI_MMIO.decode(0x0, 0, 16)


def _covered_mask(reg, value):
    m = 0
    for f in reg.fields_for(value):
        m |= f.mask
    return m


def test_encode_decode_round_trip_every_register():
    rnd = random.Random(1234)
    for reg in MALI_MMIO:
        for _ in range(20):
            value = rnd.getrandbits(reg.width)
            if reg.variant_field is not None and rnd.random() < 0.7:
                # bias toward values whose discriminator selects a variant
                sel = rnd.choice(sorted(reg.variants))
                value = reg.field(reg.variant_field).insert(value, sel)
            fields = reg.fields(value)
            masked = value & _covered_mask(reg, value)
            assert reg.encode(**fields) == masked, reg.full_name
            assert reg.encode(value, **fields) == value
            # named round trip (enum names back to values)
            named = reg.unpack_named(value)
            assert reg.encode(**named) == masked, reg.full_name
            # decode never fails and names the register
            d = reg.describe(value)
            assert d.startswith(reg.full_name + " = 0x")
            if reg.width == 64:
                assert reg.describe(value & 0xFFFFFFFF, Part.LO).startswith(reg.part_name(Part.LO))
                assert reg.describe(value >> 32, Part.HI).startswith(reg.part_name(Part.HI))


def test_set_keeps_other_fields():
    r = MCU_CONTROL.MCU_CONTROL
    v = r.encode(MODE="AUTO", DOORBELL_DISABLE=1)
    assert v == 0x80000002
    assert r.set(v, MODE="DISABLE") == 0x80000000


def test_access_kinds():
    assert GPU_CONTROL.GPU_IRQ_CLEAR.access is Access.W1C and not GPU_CONTROL.GPU_IRQ_CLEAR.readable
    assert GPU_CONTROL.GPU_IRQ_RAWSTAT.access is Access.W1S and GPU_CONTROL.GPU_IRQ_RAWSTAT.readable
    assert GPU_CONTROL.GPU_ID.access is Access.RO and not GPU_CONTROL.GPU_ID.writable
    assert GPU_CONTROL.GPU_COMMAND.access is Access.WO
    assert MMU_AS.AS[0].STATUS.access is Access.RO
    for blk, prefix in ((GPU_CONTROL, "GPU"), (JOB_CONTROL, "JOB"), (MMU_CONTROL, "MMU"),
                        (PWR_CONTROL, "PWR")):
        raw, clr, mask, stat = (getattr(blk, f"{prefix}_IRQ_{s}") for s in
                                ("RAWSTAT", "CLEAR", "MASK", "STATUS"))
        assert (raw.offset + 4, raw.offset + 8, raw.offset + 12) == (clr.offset, mask.offset, stat.offset)
        assert [f.name for f in raw.field_defs] == [f.name for f in stat.field_defs]
        assert (raw.access, clr.access, mask.access, stat.access) == \
            (Access.W1S, Access.W1C, Access.RW, Access.RO)


def test_exception_codes():
    assert exception_name(0xC3) == "TRANSLATION_FAULT_3"
    assert exception_name(0x41) == "CS_UNRECOVERABLE"
    assert exception_name(0x1C3) == "TRANSLATION_FAULT_3"  # only bits [7:0]
    assert exception_name(0x3E) == "UNKNOWN_0x3e"
    assert exception_code("PERM_FAULT_1") == 0xC9
    assert is_fault(0x40) and not is_fault(0x3F) and not is_fault(0x04)
    assert MALI_MMIO.decode(0x3C, 0x00010480) == (
        "GPU_FAULTSTATUS = 0x00010480 (EXCEPTION_TYPE=GPU_BUS_FAULT, ACCESS_TYPE=ATOMIC, "
        "JASID=0x0, SOURCE_ID=0x1, ADDRESS_VALID)")


def test_arch_maps():
    m10, m14 = regmap_for_arch(10), regmap_for_arch(14)
    assert "PWR_STATUS" not in m10 and m10.lookup(0x820) is None
    assert "PWR_STATUS" in m14 and m14.lookup(0x820)[0].name == "PWR_STATUS"
    assert "GPU_FEATURES" in m10  # panthor reads it on every arch
    assert regmap_for_arch(10) is m10  # cached
    assert len(m14) == len(MALI_MMIO)
    # the same Register objects everywhere: usable as dict keys across maps
    for name in ("GPU_ID", "AS_COMMAND[5]", "DOORBELL[1]", "SHADER_PRESENT"):
        assert m10[name] is m14[name] is MALI_MMIO[name]
    assert MMU_AS.AS[5].COMMAND is m10["AS_COMMAND[5]"]


def test_block_at_prefers_the_innermost_block():
    assert MALI_MMIO.block_at(0x0704).name == "MCU_CONTROL"
    assert MALI_MMIO.block_at(0x0E00).name == "GPU_CONTROL"
    assert MALI_MMIO.block_at(0x24C0).name == "MMU_AS"
    assert MALI_MMIO.block_at(0x3000) is None


def test_group_array_framework():
    t = [R32("X_A", 0x100), R64("X_B", 0x108)]
    blk = RegisterBlock("T", 0x100, [GroupArray("X", [RegisterArray(r, 4, 0x20) for r in t],
                                                prefix="X_")])
    assert blk.X[2].B is blk.X_B[2] and blk.X[2].B.offset == 0x148
    assert [r.full_name for r in blk.X[1]] == ["X_A[1]", "X_B[1]"]
    assert blk.lookup(0x14C)[1] is Part.HI
    with pytest.raises(ValueError):
        RegisterArray(R64("Y", 0x0), 2, 4)  # stride smaller than the register
    f = flags({3: "A", 1: "B"})
    assert [x.name for x in f] == ["B", "A"]


def test_lookup_speed_sanity():
    # The hot path is a single dict lookup; make sure nothing slow crept in.
    import time
    lookup = MALI_MMIO.lookup
    offs = [0x0, 0x28, 0x1004, 0x2418, 0x80000, 0x3000] * 2000
    t = time.perf_counter()
    for o in offs:
        lookup(o)
    assert time.perf_counter() - t < 0.5


def test_rebuilding_a_block_keeps_register_identity():
    blk = RegisterBlock("T", 0x0, [R32("A", 0x0), R32("B", 0x4, since_arch=11),
                                   RegisterArray(R32("C", 0x8), 2, 4)])
    again = RegisterBlock("T", 0x0, [m for m in blk.members if getattr(m, "since_arch", None) is None])
    assert again.A is blk.A and again.C is blk.C and again.C[1] is blk.C[1]
    assert "B" in blk and "B" not in again
    with pytest.raises(ValueError, match="outside"):
        RegisterBlock("U", 0x10, [R32("D", 0x0)])
    with pytest.raises(ValueError, match="outside"):
        RegisterBlock("V", 0x0, [RegisterArray(R32("E", 0x0), 4, 4)], size=0x8)
