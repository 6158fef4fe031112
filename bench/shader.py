"""Shader-core throughput: an ALU-bound compute shader dispatched with RUN_COMPUTE through
the real engine, MMU and guest-memory path (driver model, no QEMU).

Thread-instructions/s = (threads x instructions each thread executes) / wall time; the
count per thread follows from the shader (a prologue, LOOP iterations of an 8-instruction
body, an epilogue) and is checked against the results in guest memory.
"""

from __future__ import annotations

import time

import numpy as np

from tests.compute_model import run_compute_cs, setup_compute
from tests.driver_model import BUF_VA, Driver, Gpu, Group

TARGET = 10_000_000  # issue 13: thread-instructions/s, ALU-bound
LOOP = 200
WG, GROUPS = (256, 1, 1), (16, 1, 1)

ALU = """
    IADD_IMM.i32 r2, 0x0, #0x0
    IADD_IMM.i32 r3, 0x0, #0x0
    U32_TO_F32 r4, r60
    IADD.u32 r2, r2, r3
    FMA.f32 r4, r4, u2, u3
    LSHIFT_XOR.i32 r5, r2, 0x0.b00, r3
    IMUL.i32 r6, r5, r2
    FADD.f32 r4, r4, r4
    IADD_IMM.i32 r3, r3, #0x1
    ICMP_OR.u32.lt.m1 r7, r3, u4, 0x0
    BRANCHZ.reconverge r7, offset:-8
    SHADDX.u64 r0, u0, r60.w0, shift:0x2
    STORE.i32.slot0.end @r2, r0, offset:0
"""
PER_THREAD = 3 + 8 * LOOP + 2


def thread_instructions_per_second() -> tuple[float, int]:
    gpu = Gpu()
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    threads = WG[0] * GROUPS[0]
    nfau, wg = setup_compute(g, ALU, [BUF_VA, 0, 0x3F800000, 0x3F000000, LOOP], WG)
    g.submit(run_compute_cs(nfau, wg, GROUPS))
    t0 = time.perf_counter()
    g.run(rounds=10**9)
    dt = time.perf_counter() - t0
    got = np.frombuffer(gpu.ram.read(g.pa[BUF_VA], 4 * threads), "<u4")
    assert (got == LOOP * (LOOP - 1) // 2).all() and g.sync() == 1
    gpu.close()
    return threads * PER_THREAD / dt, threads * PER_THREAD


def main() -> None:
    rate, n = thread_instructions_per_second()
    print("shader core: RUN_COMPUTE through the driver model, no QEMU")
    print(f"  ALU-bound compute shader ({n:,} thread-instructions)  {rate:12.0f} thread-instructions/s"
          f"   target >= {TARGET:,}")


if __name__ == "__main__":
    main()
