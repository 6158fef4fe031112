"""The register interface: random BAR accesses to a `MaliDevice` (mostly real registers with
fuzzed values and widths, sometimes any offset), the engine stepped in between; then what a
driver does to recover — a device reset, probe, firmware boot and a job — must work.

The input is a recipe read through atheris' FuzzedDataProvider, so libFuzzer's mutations
change one access at a time."""

from __future__ import annotations

import atheris

from mali_regs.mmio import MALI_MMIO
from tests.driver_model import Driver, Gpu, Group, probe_and_boot

from .harness import Finding, mutations, watched

REGISTERS = list(MALI_MMIO.registers)
MAX_ACCESSES = 400
VALUES = (0, 1, 2, 3, 0x101, 0xFFFFFFFF)


def _access(gpu: Gpu, fdp: atheris.FuzzedDataProvider) -> None:
    if fdp.ConsumeIntInRange(0, 9):
        reg = REGISTERS[fdp.ConsumeIntInRange(0, len(REGISTERS) - 1)]
        offset, width = reg.offset, reg.width // 8
    else:  # anywhere in the BAR, any width, aligned as the client's split makes it
        width = (1, 2, 4, 8)[fdp.ConsumeIntInRange(0, 3)]
        offset = fdp.ConsumeIntInRange(0, MALI_MMIO.size - 8) & ~(width - 1)
    if fdp.ConsumeBool():
        gpu.dev.bar_read(0, offset, width)
    else:
        pick = fdp.ConsumeIntInRange(0, len(VALUES))
        value = VALUES[pick] if pick < len(VALUES) else fdp.ConsumeInt(8 * width)
        gpu.dev.bar_write(0, offset, width, value & ((1 << (8 * width)) - 1))


@watched
def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    gpu = Gpu()
    try:
        if fdp.ConsumeBool():  # from a booted MCU with a group resident
            d = Driver(gpu)
            gpu.write("MCU_CONTROL", 2)
            Group(gpu, d, slot=fdp.ConsumeIntInRange(0, 7)).submit([0] * 4)
        for i in range(MAX_ACCESSES):
            if not fdp.remaining_bytes():
                break
            _access(gpu, fdp)
            if i % 16 == 15:
                gpu.dev.engine.run_once()
        gpu.dev.engine.run_once()
        # The recovery a driver makes: PCI reset, probe (soft reset), firmware boot, a job.
        gpu.dev.reset()
        d = probe_and_boot(gpu)
        if gpu.read("MCU_STATUS") != 1:
            raise Finding(f"the MCU does not boot after a reset (MCU_STATUS {gpu.read('MCU_STATUS')})")
        g = Group(gpu, d, slot=len(data) % 8)
        g.submit(g.store_job(0xFACE0000 | len(data) & 0xFFFF))
        g.run()
        if g.buf(0) != 0xFACE0000 | len(data) & 0xFFFF or g.sync() != 1:
            raise Finding(f"a job after the reset did not complete (buf 0x{g.buf(0):x}, sync {g.sync()})")
    finally:
        gpu.close()


def seeds() -> list[bytes]:
    import random

    rng = random.Random(3)
    base = [bytes([i]) + rng.randbytes(rng.choice((16, 64, 256, 1024))) for i in range(8)]
    return base + mutations(base, 24, seed=3)
