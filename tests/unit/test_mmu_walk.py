"""The GPU MMU: LPAE 4K walk over guest RAM, latched AS config, faults as the driver sees them."""

import pytest

from mali_base.pagetable import MmuFault
from tests.driver_model import LEAF_RW, PTE_AF, PTE_RDONLY, RAM_BASE, TRANSCFG_4K_48, Gpu, PageTables

MEMATTR = 0x4C4C4C4C_8C4C8F4C


@pytest.fixture
def gpu():
    g = Gpu()
    g.write("MMU_IRQ_MASK", 0xFFFF)
    yield g
    g.close()


def program_as(gpu, n, pt):
    gpu.write(f"AS_TRANSTAB[{n}]", pt.root)
    gpu.write(f"AS_MEMATTR[{n}]", MEMATTR)
    gpu.write(f"AS_TRANSCFG[{n}]", TRANSCFG_4K_48)
    gpu.write(f"AS_COMMAND[{n}]", 1)  # UPDATE


def test_translation_of_pages_and_blocks(gpu):
    pt = PageTables(gpu.ram)
    data_pa = gpu.ram.alloc(0x2000)
    pt.map(0x7F00_0000_1000, data_pa, 0x2000)
    pt.map_block_2m(0x20_0000_0000, RAM_BASE + 0x200000)
    program_as(gpu, 3, pt)
    a = gpu.dev.mmu[3]
    assert a.translate(0x7F00_0000_1234) == data_pa + 0x234
    assert a.translate(0x7F00_0000_2FF8) == data_pa + 0x1FF8
    assert a.translate(0x20_0012_3456) == RAM_BASE + 0x200000 + 0x12_3456
    gpu.ram.write(data_pa + 0xFFC, b"\x11\x22\x33\x44\x55\x66\x77\x88")
    assert a.read(0x7F00_0000_1FFC, 8) == b"\x11\x22\x33\x44\x55\x66\x77\x88"  # across pages
    a.write_u32(0x20_0000_0010, 0xDEADBEEF)
    assert gpu.ram.u32(RAM_BASE + 0x200010) == 0xDEADBEEF
    assert gpu.read("MMU_IRQ_RAWSTAT") == 0 and gpu.read("AS_STATUS[3]") == 0


def test_config_is_latched_only_on_update(gpu):
    pt = PageTables(gpu.ram)
    pt.map(0x1000, gpu.ram.alloc(), 0x1000)
    gpu.write("AS_TRANSTAB[1]", pt.root)
    gpu.write("AS_TRANSCFG[1]", TRANSCFG_4K_48)
    with pytest.raises(MmuFault):
        gpu.dev.mmu[1].translate(0x1000)  # still UNMAPPED: no UPDATE yet
    gpu.write("AS_COMMAND[1]", 1)
    gpu.write("MMU_IRQ_CLEAR", 0xFFFFFFFF)
    gpu.dev.mmu[1].translate(0x1000)


@pytest.mark.parametrize("setup, va, write, code", [
    (lambda pt, pa: None, 0x5000, False, 0xC0),                                   # nothing at level 0
    (lambda pt, pa: pt.map(0x6000, pa, 0x1000), 0x5000, False, 0xC3),              # table ends at level 3
    (lambda pt, pa: pt.map(0x5000, pa, 0x1000, LEAF_RW | PTE_RDONLY), 0x5000, True, 0xCB),  # permission
    (lambda pt, pa: pt.map(0x5000, pa, 0x1000, LEAF_RW & ~PTE_AF), 0x5000, False, 0xDB),   # access flag
    (lambda pt, pa: pt.set_raw(0x5000, 0, 0x123000 | 0b01), 0x5000, False, 0xC0),   # block at level 0
    (lambda pt, pa: pt.set_raw(0x5000, 0, 0x7_0000_0000 | 0b11), 0x5000, False, 0xC1),  # L1 table outside RAM
    (lambda pt, pa: None, 1 << 50, False, 0xE0),                                   # beyond 48-bit VA
])
def test_faults_are_reported_in_as_registers_and_mmu_irq(gpu, setup, va, write, code):
    pt = PageTables(gpu.ram)
    setup(pt, gpu.ram.alloc())
    program_as(gpu, 2, pt)
    a = gpu.dev.mmu[2]
    with pytest.raises(MmuFault) as e:
        a.write_u32(va, 1) if write else a.read_u32(va)
    assert e.value.exception_type == code
    assert gpu.read("MMU_IRQ_RAWSTAT") == 1 << 2 and gpu.line
    status = gpu.read("AS_FAULTSTATUS[2]")
    assert status & 0xFF == code
    assert (status >> 8) & 3 == (3 if write else 2)  # access type WRITE / READ
    assert gpu.read("AS_FAULTADDRESS[2]") == va


def test_first_fault_stays_latched_until_cleared(gpu):
    pt = PageTables(gpu.ram)
    program_as(gpu, 1, pt)
    a = gpu.dev.mmu[1]
    for va in (0x1000, 0x2000):
        with pytest.raises(MmuFault):
            a.read_u32(va)
    assert gpu.read("AS_FAULTADDRESS[1]") == 0x1000
    gpu.write("MMU_IRQ_CLEAR", 1 << 1)
    assert not gpu.line
    with pytest.raises(MmuFault):
        a.read_u32(0x3000)
    assert gpu.read("AS_FAULTADDRESS[1]") == 0x3000


def test_tlb_is_dropped_on_as_commands_and_cache_flush(gpu):
    pt = PageTables(gpu.ram)
    pa1, pa2 = gpu.ram.alloc(), gpu.ram.alloc()
    pt.map(0x9000, pa1, 0x1000)
    program_as(gpu, 4, pt)
    a = gpu.dev.mmu[4]
    assert a.translate(0x9000) == pa1
    pt.map(0x9000, pa2, 0x1000)           # the driver edits the tables under LOCK ...
    assert a.translate(0x9000) == pa1      # ... a cached translation survives until ...
    gpu.write("AS_LOCKADDR[4]", 0x9000 | 14)
    gpu.write("AS_COMMAND[4]", 2)          # LOCK / UNLOCK drop it
    assert a.translate(0x9000) == pa2
    pt.map(0x9000, pa1, 0x1000)
    gpu.write("GPU_COMMAND", 0x23304)      # and so does a cache flush
    assert a.translate(0x9000) == pa1


def test_disabled_as_and_absent_as(gpu, caplog):
    pt = PageTables(gpu.ram)
    pt.map(0x1000, gpu.ram.alloc(), 0x1000)
    program_as(gpu, 0, pt)
    gpu.write("AS_TRANSCFG[0]", 1)  # UNMAPPED, as panthor's as_disable
    gpu.write("AS_COMMAND[0]", 1)
    with pytest.raises(MmuFault):
        gpu.dev.mmu[0].translate(0x1000)
    gpu.write("AS_COMMAND[9]", 1)   # AS_PRESENT is 0xFF
    assert "AS9 is not in AS_PRESENT" in caplog.text


def test_word_accessors_cache_page_views_that_alias_memory_and_keep_permissions(gpu):
    """read_u32/u64 and write_u32/u64 keep a view of each page they touched: the view shows
    guest RAM as it is now, a read-only page still faults on write (reported), an armed
    injection still sees every access, and an AS command drops the views with the TLB."""
    from mali_base.faults import parse_spec
    pt = PageTables(gpu.ram)
    pa1, pa2, ro = gpu.ram.alloc(), gpu.ram.alloc(), gpu.ram.alloc()
    pt.map(0x9000, pa1, 0x1000)
    pt.map(0xA000, ro, 0x1000, LEAF_RW | PTE_RDONLY)
    program_as(gpu, 5, pt)
    a = gpu.dev.mmu[5]
    a.write_u64(0x9FF8, 0x1122334455667788)        # the last aligned u64 of the page
    assert gpu.ram.u64(pa1 + 0xFF8) == 0x1122334455667788
    gpu.ram.u32(pa1 + 0x10, 0xCAFEF00D)             # the CPU writes behind the cached view
    assert a.read_u32(0x9010) == 0xCAFEF00D
    assert a.read_u64(0x9FF8) == 0x1122334455667788
    gpu.ram.write(pa1 + 0x20, bytes(range(8)))
    assert a.read_u64(0x9021) == int.from_bytes(bytes(range(1, 8)) + gpu.ram.read(pa1 + 0x28, 1), "little")
    assert a.read_u32(0xA000) == 0                  # readable, cached for reading ...
    with pytest.raises(MmuFault) as e:
        a.write_u32(0xA000, 1)                      # ... never for writing
    assert e.value.exception_type == 0xCB and gpu.read("AS_FAULTADDRESS[5]") == 0xA000
    gpu.write("MMU_IRQ_CLEAR", 1 << 5)
    gpu.dev.inject(parse_spec("mmu_fault:as=5,va=0x9000"))
    with pytest.raises(MmuFault):
        a.read_u32(0x9010)                          # a cached page meets the armed injection
    assert gpu.read("AS_FAULTADDRESS[5]") == 0x9010
    gpu.write("MMU_IRQ_CLEAR", 1 << 5)
    pt.map(0x9000, pa2, 0x1000)
    gpu.ram.u32(pa2 + 0x10, 0x600DCAFE)
    gpu.write("AS_COMMAND[5]", 1)                   # UPDATE drops the views with the TLB
    assert a.read_u32(0x9010) == 0x600DCAFE
    a.write_u32(0x9014, 7)
    assert gpu.ram.u32(pa2 + 0x14) == 7 and gpu.ram.u32(pa1 + 0x14) == 0
