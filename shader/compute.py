"""One compute dispatch (RUN_COMPUTE), run a batch of whole workgroups at a time.

A batch is up to MAX_LANES threads of consecutive workgroups run as one wide vector, so a
BARRIER or workgroup-local memory works within each workgroup. step() runs a bounded number
of vector instructions and returns, so the command-stream engine can interleave it with
register accesses and other queues; it returns True once every workgroup has run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from mali_base.pagetable import ACCESS_READ

from . import isa
from .descriptors import DESCRIPTOR_TYPE_SHADER, STAGE_COMPUTE, LocalStorage, shader_program, unpack_wg_size
from .interp import EXC_DATA_INVALID, Program, ShaderFault, Threads
from .memory import LaneMemory

log = logging.getLogger("mali.shader")

MAX_LANES = 1024
# A step also ends after this much time: some vector instructions (per-lane atomics, scattered
# loads over 1024 lanes) cost a hundred times others, and the step runs under the device lock.
STEP_SECONDS = 0.002
CHUNK = 16
WARP = 16


@dataclass(frozen=True)
class ComputeArgs:
    """The staging registers RUN_COMPUTE read (after its select fields)."""
    srt: int
    fau: int                 # address (bits 0-55) | count of 64-bit entries << 56
    spd: int
    tsd: int
    wg_size: int
    job_offset: tuple
    job_size: tuple


class ComputeJob:
    def __init__(self, aspace, args: ComputeArgs, max_lanes: int = MAX_LANES):
        self.aspace, self.args = aspace, args
        self.spd = shader_program(aspace.read(args.spd, 32, ACCESS_READ))
        self.tls = LocalStorage.unpack(aspace.read(args.tsd, 32, ACCESS_READ))
        self._check()
        nfau = args.fau >> 56
        fau_va = args.fau & ((1 << 56) - 1)
        self.fau = (np.frombuffer(aspace.read(fau_va, 8 * nfau, ACCESS_READ), "<u4").copy()
                    if nfau else np.zeros(0, np.uint32))
        self.program = Program(aspace, self.spd.binary)
        self.memory = LaneMemory(aspace)
        sx, sy, sz, _ = unpack_wg_size(args.wg_size)
        self.local = (sx, sy, sz)
        self.wg_threads = sx * sy * sz
        self.counts = tuple(args.job_size)
        self.total = self.counts[0] * self.counts[1] * self.counts[2]
        per = max(1, max_lanes // self.wg_threads)
        if self.tls.has_wls:
            per = min(per, self.tls.wls_instances)
        self.per_batch = per
        self.next_wg = 0
        self.threads: Threads | None = None
        self.thread_instructions = 0
        self.instructions = 0
        self._local_ids = self._locals()

    def describe(self, first: int = 8) -> list[str]:
        """What the dispatch is, for `mali-vdev status` and logs: sizes, the descriptors
        decoded, the shader's address and its first instructions disassembled."""
        a = self.args
        sx, sy, sz = self.local
        nx, ny, nz = self.counts
        lines = [f"workgroup {sx}x{sy}x{sz}, {nx}x{ny}x{nz} workgroups ({self.total * self.wg_threads} threads), "
                 f"{self.per_batch} per batch; SRT 0x{a.srt:x}, FAU 0x{a.fau & ((1 << 56) - 1):x} x{a.fau >> 56}",
                 f"SPD 0x{a.spd:x}: {self.spd.text()}", f"TSD 0x{a.tsd:x}: {self.tls.desc.text()}"]
        for i in range(first):
            op = self.program.op(i)
            text = isa.disassemble(op.ins).strip() if op.ins is not None else "(invalid encoding)"
            lines.append(f"  0x{self.program.va + 8 * i:x}: {text}")
            if op.end:
                break
        return lines

    def _check(self) -> None:
        s, a = self.spd, self.args
        why = None
        reserved = s.reserved()
        if reserved:
            why = f"shader program descriptor at 0x{a.spd:x}: reserved {', '.join(reserved)}"
        elif s.type != DESCRIPTOR_TYPE_SHADER:
            why = f"shader program descriptor at 0x{a.spd:x} has type {s.type}, not 8 (Shader)"
        elif s.stage != STAGE_COMPUTE:
            why = f"shader program descriptor at 0x{a.spd:x} has stage {s.stage}, not 1 (Compute)"
        elif s.suppress_nan or s.suppress_inf:
            why = "shader program Suppress NaN/Suppress Inf are not implemented in this model"
        elif any(a.job_offset):
            why = f"JOB_OFFSET {tuple(a.job_offset)} (nonzero) is not implemented in this model"
        if why:
            raise ShaderFault(EXC_DATA_INVALID, a.spd & 0xFFFFFFFF, why)

    def _locals(self):
        sx, sy, sz = self.local
        i = np.arange(self.wg_threads)
        return (i % sx).astype(np.uint32), (i // sx % sy).astype(np.uint32), (i // (sx * sy)).astype(np.uint32)

    def _start_batch(self) -> None:
        n_wg = min(self.per_batch, self.total - self.next_wg)
        wgs = np.arange(self.next_wg, self.next_wg + n_wg)
        self.next_wg += n_wg
        nx, ny, _ = self.counts
        wx, wy, wz = (wgs % nx).astype(np.uint32), (wgs // nx % ny).astype(np.uint32), (wgs // (nx * ny)).astype(np.uint32)
        T = self.wg_threads
        lx, ly, lz = (np.tile(v, n_wg) for v in self._local_ids)
        wx, wy, wz = (np.repeat(v, T) for v in (wx, wy, wz))
        sx, sy, sz = (np.uint32(v) for v in self.local)
        lanes = n_wg * T
        tls, wls = self.tls, np.zeros(lanes, np.uint64)
        if tls.has_wls:
            slot = np.repeat(np.arange(n_wg, dtype=np.uint64), T)
            wls = np.uint64(tls.wls_base_pointer) + slot * np.uint64(tls.wls_instance_size)
        tls_ptr = np.uint64(tls.tls_base_pointer) + np.arange(lanes, dtype=np.uint64) * np.uint64(tls.tls_thread_size)
        local_index = np.tile(np.arange(T, dtype=np.uint32), n_wg)
        specials = {(1, 1): tls_ptr, (1, 3): wls, (1, 7): np.uint64(self.args.srt & ~0x3F),
                    (3, 1): (local_index % WARP).astype(np.uint64), (3, 3): np.uint64(0)}
        t = Threads(self.program, lanes, self.memory, self.fau, specials, ftz=self.spd.flush_to_zero_mode != 0,
                    warp_lane=local_index % WARP)
        values = {55: lx | ly << np.uint32(16), 56: lz, 57: wx, 58: wy, 59: wz,
                  60: wx * sx + lx, 61: wy * sy + ly, 62: wz * sz + lz}
        for r, v in values.items():
            if self.spd.preload >> (r - 48) & 1:
                t.regs[r] = v
        self.threads = t

    @property
    def done(self) -> bool:
        return self.threads is None and self.next_wg >= self.total

    def step(self, budget: int) -> bool:
        """Run up to `budget` vector instructions; True when the whole dispatch has run.
        Raises ShaderFault or MmuFault (already reported by the address space)."""
        self.memory.forget()
        end = time.monotonic() + STEP_SECONDS
        while budget > 0:
            if self.threads is None:
                if self.next_wg >= self.total:
                    return True
                self._start_batch()
            t = self.threads
            before = t.instructions
            finished = t.run(min(budget, CHUNK))
            budget -= max(1, t.instructions - before)
            if finished:
                self.thread_instructions += t.thread_instructions
                self.instructions += t.instructions
                self.threads = None
            if time.monotonic() > end:
                break
        return self.done
