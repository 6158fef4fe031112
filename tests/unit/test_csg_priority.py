"""CSG priority as firmware schedules it, through the driver model: strict priority between
levels (CSG_EP_REQ[31:28]), round-robin within a level, and a level whose streams all wait
on sync objects (or have nothing to do) does not hold the lower ones back."""

from mali_regs import csf_iface as I
from scheduler.csg import CSG_ENDPOINT_CONFIG
from scheduler.isa import Op, encode
from tests.driver_model import SYNC_VA, Group, mov32, mov48

ITERATIONS = 2000  # about 6000 instructions: many 256-instruction slices


def _loop(n=ITERATIONS):
    return [mov32(1, 0), mov32(3, n), encode(Op.ADD_IMM32, dst=1, src=1, imm=1),
            encode(Op.ADD_IMM32, dst=3, src=3, imm=-1), encode(Op.BRANCH, cond=3, value=3, offset=-3)]


def _wait_then_loop():
    """Block until the sync object at SYNC_VA is > 0, then loop."""
    return [mov48(10, SYNC_VA), mov32(12, 0), encode(Op.SYNC_WAIT32, addr=10, data=12, cond=1)] + _loop()


def _group(gpu, d, slot, priority):
    g = Group(gpu, d, slot=slot, as_index=1 + slot)
    ci = gpu.dev.mcu.csg(I.CSG_INPUT, slot)
    ci["CSG_EP_REQ"] = (ci["CSG_EP_REQ"] & 0x0FFFFFFF) | priority << 28
    g.request(toggle=CSG_ENDPOINT_CONFIG)
    return g


def _cs(gpu, g):
    return gpu.dev.csg_slots.slots[g.slot].streams[0]


def _round(gpu):
    return gpu.dev.engine.run_once()


def test_a_higher_level_runs_alone_until_it_has_no_work(booted):
    gpu, d = booted
    low, high = _group(gpu, d, 0, 0x3), _group(gpu, d, 1, 0xE)
    low.submit(_loop())
    high.submit(_loop())
    while True:
        _round(gpu)
        if _cs(gpu, high).regs[1] == ITERATIONS:
            break  # (in the round where it finished, the low level had its turn)
        assert _cs(gpu, low).instructions == 0
    for _ in range(1000):
        if not _round(gpu)[0]:
            break
    assert _cs(gpu, low).regs[1] == ITERATIONS


def test_groups_of_one_level_share_it_round_robin(booted):
    gpu, d = booted
    a, b = _group(gpu, d, 0, 0x8), _group(gpu, d, 1, 0x8)
    a.submit(_loop())
    b.submit(_loop())
    for _ in range(5):
        _round(gpu)
    assert _cs(gpu, a).instructions == _cs(gpu, b).instructions > 0


def test_a_blocked_higher_level_lets_the_lower_one_run_until_its_wait_is_over(booted):
    gpu, d = booted
    low, high = _group(gpu, d, 0, 0x1), _group(gpu, d, 1, 0xF)
    high.submit(_wait_then_loop())
    low.submit(_loop(10 * ITERATIONS))
    for _ in range(5):
        _round(gpu)
    ran = _cs(gpu, low).instructions
    assert ran > 0 and _cs(gpu, high).wait is not None
    gpu.ram.u32(high.pa[SYNC_VA], 1)              # the CPU signals the sync object
    _round(gpu)
    ran = _cs(gpu, low).instructions
    while True:
        _round(gpu)
        if _cs(gpu, high).regs[1] == ITERATIONS:
            break
        assert _cs(gpu, low).instructions == ran  # the high level is runnable again: low waits
    assert _cs(gpu, low).regs[1] < 10 * ITERATIONS


def test_an_idle_top_level_and_a_blocked_middle_one_leave_the_bottom_running(booted):
    gpu, d = booted
    bottom, middle, top = _group(gpu, d, 0, 0x2), _group(gpu, d, 1, 0x9), _group(gpu, d, 2, 0xF)
    top.submit([mov32(1, 1)])
    middle.submit(_wait_then_loop())
    bottom.submit(_loop())
    for _ in range(200):
        if not _round(gpu)[0]:
            break
    assert _cs(gpu, top).regs[1] == 1
    assert _cs(gpu, middle).wait is not None
    assert _cs(gpu, bottom).regs[1] == ITERATIONS
