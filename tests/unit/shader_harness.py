"""A flat GPU address space for shader-core tests, and a dispatch helper.

FlatAspace maps [BASE, BASE + SIZE) to one numpy array; anything else is a translation
fault reported like the real AddressSpace does (report, then raise MmuFault).
"""

from __future__ import annotations

import struct

import numpy as np

from mali_base.pagetable import ACCESS_WRITE, TRANSLATION_FAULT_0, MmuFault
from shader import isa
from shader.compute import ComputeArgs, ComputeJob

BASE, SIZE = 0x100000, 0x100000
CODE, SPD, TSD, FAU, BUF, WLS = BASE, BASE + 0x8000, BASE + 0x8100, BASE + 0x8200, BASE + 0x10000, BASE + 0x80000


class _Mem:
    def __init__(self, arr):
        self.arr = arr

    def view(self, pa, n, write=False):
        return self.arr[pa:pa + n]


class FlatAspace:
    def __init__(self):
        self.arr = np.zeros(SIZE, np.uint8)
        self.memory = _Mem(self.arr)
        self.faults = []

    def translate(self, va, access=0):
        if not BASE <= va < BASE + SIZE:
            fault = MmuFault(TRANSLATION_FAULT_0 + 3, va, access, "unmapped")
            self.faults.append(fault)
            raise fault
        return va - BASE

    def read(self, va, n, access=0):
        self.translate(va, access)
        self.translate(va + n - 1, access)
        return self.arr[va - BASE:va - BASE + n].tobytes()

    def write(self, va, data):
        self.translate(va, ACCESS_WRITE)
        self.translate(va + len(data) - 1, ACCESS_WRITE)
        self.arr[va - BASE:va - BASE + len(data)] = np.frombuffer(bytes(data), np.uint8)

    def u32(self, va, n=1):
        return np.frombuffer(self.read(va, 4 * n), "<u4").copy()


def spd(preload: int, ftz: int = 0, code: int = CODE) -> bytes:
    w0 = 8 | 1 << 4 | ftz << 17
    return struct.pack("<IIQ", w0, preload, code) + bytes(16)


def tsd(wls_log2_instances: int | None = None, wls_size: int = 0) -> bytes:
    if wls_log2_instances is None:
        w1 = 31
        wls = 0
    else:
        w1 = wls_log2_instances | (wls_size.bit_length()) << 8   # scale = log2(size) + 1
        wls = WLS
    return struct.pack("<IIIIQ", 0, w1, 0, 0, wls) + bytes(8)


PRELOAD_ALL = 0xFF << 7  # r55..r62


def dispatch(asm: str | bytes, fau: list[int], wg=(64, 1, 1), groups=(1, 1, 1), wls=None, preload=PRELOAD_ALL,
             aspace=None, max_lanes=1024, budget=1 << 30, ftz=0, srt=0):
    """Assemble `asm` (or take code bytes), lay out SPD/TSD/FAU, run the whole dispatch;
    returns (aspace, job)."""
    a = aspace or FlatAspace()
    a.write(CODE, asm if isinstance(asm, bytes) else isa.assemble_program(asm))
    a.write(SPD, spd(preload, ftz))
    a.write(TSD, tsd(*wls) if wls else tsd())
    words = b"".join(struct.pack("<I", w & 0xFFFFFFFF) for w in fau)
    words += bytes(-len(words) % 8)
    a.write(FAU, words)
    wg_size = (wg[0] - 1) | (wg[1] - 1) << 10 | (wg[2] - 1) << 20
    args = ComputeArgs(srt, FAU | (len(words) // 8) << 56, SPD, TSD, wg_size, (0, 0, 0), groups)
    job = ComputeJob(a, args, max_lanes)
    steps = 0
    while not job.step(256):
        steps += 1
        assert steps < budget
    return a, job


def lo(va):
    return va & 0xFFFFFFFF


def hi(va):
    return va >> 32
