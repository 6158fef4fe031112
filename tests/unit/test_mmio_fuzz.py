"""Random register traffic: a guest that programs nonsense gets logged misuse, faults and
interrupts, never an exception out of the device model; after a reset the GPU boots and
runs a job as before.

Accesses go mostly to real registers (every block, doorbells, MCU_CONTROL, GPU_COMMAND,
AS commands) with random values and widths, with the engine stepped in between.
"""

import logging
import random

import pytest

from mali_regs.mmio import MALI_MMIO
from tests.driver_model import Driver, Gpu, Group

SEEDS = range(300)
ACCESSES = 400
REGISTERS = list(MALI_MMIO.registers)


def random_access(gpu: Gpu, rng: random.Random) -> None:
    if rng.random() < 0.9:
        reg = rng.choice(REGISTERS)
        offset, width = reg.offset, reg.width // 8
    else:  # anywhere in the BAR, any width
        width = rng.choice((1, 2, 4, 8))
        offset = rng.randrange(0, MALI_MMIO.size - 8) & ~(width - 1)
    if rng.random() < 0.5:
        gpu.dev.bar_read(0, offset, width)
    else:
        value = rng.choice((0, 1, 2, 3, 0xFFFFFFFF, rng.getrandbits(8 * width)))
        gpu.dev.bar_write(0, offset, width, value & ((1 << (8 * width)) - 1))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_register_traffic_then_reset_and_a_job(gpu, seed, caplog):
    rng = random.Random(seed)
    if seed % 2:  # half of the runs start from a booted MCU with a group running
        d = Driver(gpu)
        gpu.write("MCU_CONTROL", 2)
        Group(gpu, d, slot=rng.randrange(8)).submit([0] * 4)
    with caplog.at_level(logging.DEBUG):
        for i in range(ACCESSES):
            random_access(gpu, rng)
            if i % 16 == 0:
                gpu.dev.engine.run_once()
    crashes = [r for r in caplog.records if r.exc_info or "internal error" in r.getMessage()]
    assert crashes == [], f"seed {seed}: {[r.getMessage() for r in crashes]}"
    # What a driver does to recover: reset, boot the firmware, run a job.
    gpu.dev.reset()
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 1, f"seed {seed}"
    d.ack_job_irq()
    g = Group(gpu, d, slot=0)
    g.submit(g.store_job(0xFACE0000 | seed))
    g.run()
    assert g.buf(0) == 0xFACE0000 | seed and g.sync() == 1, f"seed {seed}"
