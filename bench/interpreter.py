"""CS interpreter throughput, through the real engine, MMU and guest-memory path (no QEMU).

The driver model (tests.driver_model) programs the MCU and a group exactly as panthor
does; we then time (1) a long counted loop (instructions per second) and (2) a stream of
jobs in panthor's own wrapper, each storing a value and signalling its sync object.
"""

from __future__ import annotations

import time

from scheduler.isa import Op, encode
from tests.driver_model import Driver, Gpu, Group, mov32

LOOP_ITERATIONS = 100_000
JOBS = 2_000


def _setup():
    gpu = Gpu()
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    return gpu, d, Group(gpu, d)


def instructions_per_second() -> float:
    gpu, d, g = _setup()
    g.submit([mov32(1, 0), mov32(3, LOOP_ITERATIONS),
              encode(Op.ADD_IMM32, dst=1, src=1, imm=1),
              encode(Op.ADD_IMM32, dst=3, src=3, imm=-1),
              encode(Op.BRANCH, cond=3, value=3, offset=-3)])
    cs = gpu.dev.csg_slots.slots[0].streams[0]
    t0 = time.perf_counter()
    g.run(rounds=10**9)
    dt = time.perf_counter() - t0
    assert cs.regs[1] == LOOP_ITERATIONS
    n = cs.instructions
    gpu.close()
    return n / dt


def jobs_per_second() -> float:
    gpu, d, g = _setup()
    wrapper = g.store_job()
    t0 = time.perf_counter()
    for _ in range(JOBS):
        g.submit(wrapper)
        g.run()
    dt = time.perf_counter() - t0
    assert g.sync() == JOBS
    gpu.close()
    return JOBS / dt


def main() -> None:
    ips = instructions_per_second()
    jps = jobs_per_second()
    print("interpreter: driver model, no QEMU")
    print(f"  CS instructions (counted loop)  {ips:10.0f} instructions/s")
    print(f"  wrapped jobs submit->signal     {jps:10.0f} jobs/s          ({1e6 / jps:6.1f} us each)")
