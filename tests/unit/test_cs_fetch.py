"""Instruction fetch on the fast path must never run stale code.

The interpreter keeps per-page word views (cached with the translation) and compiled
handlers keyed by the raw word: whatever rewrites a ring or a command buffer — the CPU
between jobs, a ring that wraps, a STORE of the stream itself — is what runs next, and a
remapped page is fetched through its new translation once the driver flushes the MMU.
"""

import logging

from scheduler.isa import Op, encode
from tests.driver_model import CODE_VA, LEAF_RW, RING_SIZE, RING_VA, Group, mov32, mov48


def _add(reg, imm=1):
    return encode(Op.ADD_IMM32, dst=reg, src=reg, imm=imm)


def _call(va, length):
    return [mov48(90, va), mov32(92, length), encode(Op.CALL, addr=90, length=92)]


def _cs(gpu, slot=0, stream=0):
    return gpu.dev.csg_slots.slots[slot].streams[stream]


def test_a_command_buffer_rewritten_by_the_cpu_runs_its_new_instructions(booted):
    gpu, d = booted
    g = Group(gpu, d)
    va, n = g.code(0, [mov32(1, 5), _add(1)])
    g.submit(_call(va, n))
    g.run()
    assert _cs(gpu).regs[1] == 6
    g.code(0, [mov32(1, 40), _add(1, 2)])       # same VA, same length, new words
    gpu.write("GPU_COMMAND", 4 | (3 | 3 << 4 | 2 << 8) << 8)  # FLUSH_CACHES, as panthor between jobs
    g.submit(_call(va, n))
    g.run()
    assert _cs(gpu).regs[1] == 42


def test_a_wrapping_ring_runs_what_the_cpu_wrote_over_old_instructions(booted):
    gpu, d = booted
    g = Group(gpu, d)
    slots = RING_SIZE // 8
    g.submit([_add(1)] * (slots - 2))            # r1 = slots - 2, the ring nearly full
    g.run()
    g.submit([_add(2)] * 4)                      # two at the end, two over the first two slots
    g.run()
    cs = _cs(gpu)
    assert (cs.regs[1], cs.regs[2]) == (slots - 2, 4)
    assert g.extract() == g.insert[0]


def test_a_store_into_its_own_ring_runs_the_stored_instruction(booted):
    gpu, d = booted
    g = Group(gpu, d)
    new = _add(6)                                 # replaces slot 5 ("r5 += 1") after one pass
    g.submit([mov48(0, RING_VA + 8 * 5), mov32(2, new & 0xFFFFFFFF), mov32(3, new >> 32), mov32(4, 2),
              _add(4, -1),                                                     # 4: loop
              _add(5),                                                         # 5: rewritten
              encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=0b11, offset=0),  # 6
              encode(Op.BRANCH, cond=3, value=4, offset=-4)])                  # 7: to 4 while r4
    g.run()
    cs = _cs(gpu)
    assert (cs.regs[4], cs.regs[5], cs.regs[6]) == (0, 1, 1)


def test_a_remapped_command_buffer_is_fetched_through_its_new_translation(booted):
    gpu, d = booted
    g = Group(gpu, d)
    va, n = g.code(0, [mov32(1, 1)])
    g.submit(_call(va, n))
    g.run()
    other = gpu.ram.alloc()
    gpu.ram.u64(other, mov32(1, 2))
    g.pt.map(CODE_VA, other, 4096, LEAF_RW)        # the driver moves the page...
    gpu.write(f"AS_COMMAND[{g.as_index}]", 4)     # ...and flushes the page-table caches (FLUSH_PT)
    g.submit(_call(va, n))
    g.run()
    assert _cs(gpu).regs[1] == 2


def test_unmapping_guest_ram_after_a_run_leaves_no_view_behind(booted, caplog):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([mov32(1, 1)])
    g.run()
    with caplog.at_level(logging.WARNING, logger="vdev.dma"):
        gpu.dma.unmap_all()
    assert not [r for r in caplog.records if "still referenced" in r.getMessage()]
