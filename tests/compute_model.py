"""A compute dispatch as Mesa's panvk lays it out, on the driver model's group (tests, bench).

setup_compute() writes an assembled shader, its Shader Program and Local Storage descriptors
and the FAU (push constants) into the group's memory; run_compute_cs() is the CS sequence:
staging registers, SET_SB_ENTRY, RUN_COMPUTE, then a SYNC_ADD64 deferred on the endpoint entry
and a WAIT, as panvk_vX_cmd_dispatch.c emits it.
"""

from __future__ import annotations

import struct

from scheduler.isa import Op, encode
from shader import isa as visa

from .driver_model import BUF_VA, CODE_VA, SYNC_VA, Group, mov32, mov48

SHADER_VA = CODE_VA + 0x8000
SPD_VA, TSD_VA, FAU_VA = BUF_VA + 0x8000, BUF_VA + 0x8040, BUF_VA + 0x8080
SB = 2  # the iteration scoreboard entry

def setup_compute(g: Group, asm: str, fau_words: list[int], wg=(64, 1, 1)):
    ram = g.gpu.ram
    code = visa.assemble_program(asm)
    ram.write(g.pa[CODE_VA] + 0x8000, code + bytes(16))
    spd = struct.pack("<IIQ", 8 | 1 << 4, 1 << 12, SHADER_VA) + bytes(16)         # compute, preload r60
    tsd = struct.pack("<IIIIQ", 0, 31, 0, 0, 0) + bytes(8)                          # no WLS, no TLS
    fau = b"".join(struct.pack("<I", w) for w in fau_words)
    fau += bytes(-len(fau) % 8)
    for va, data in ((SPD_VA, spd), (TSD_VA, tsd), (FAU_VA, fau)):
        ram.write(g.pa[BUF_VA] + va - BUF_VA, data)
    return len(fau) // 8, (wg[0] - 1) | (wg[1] - 1) << 10 | (wg[2] - 1) << 20


def run_compute_cs(nfau, wg_size, groups, sync=True):
    cs = [mov48(0, 0), mov32(8, FAU_VA), mov32(9, nfau << 24), mov48(16, SPD_VA), mov48(24, TSD_VA),
          mov32(32, 0), mov32(33, wg_size), mov32(34, 0), mov32(35, 0), mov32(36, 0),
          mov32(37, groups[0]), mov32(38, groups[1]), mov32(39, groups[2]),
          encode(Op.SET_SB_ENTRY, endpoint_entry=SB, other_entry=1),
          encode(Op.RUN_COMPUTE, task_increment=1, task_axis=0)]
    if sync:
        cs += [mov48(40, SYNC_VA), mov48(42, 1),
               encode(Op.SYNC_ADD64, addr=40, data=42, scope=0, wait_mask=1 << SB, signal_slot=0),
               encode(Op.WAIT, wait_mask=1 << SB | 1)]
    return cs
