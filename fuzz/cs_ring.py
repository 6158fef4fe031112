"""The CS interpreter: random ring words in a group — instructions of every opcode with fuzzed
fields (registers pointing into the group's mapped buffers half of the time, so loads, stores
and sync objects also succeed) and raw words — plus user code for CALL/JUMP to land in.

Invariants: a hardware answer (fault, fatal, wait or nothing), never an internal error or the
CS_UNRECOVERABLE fatal that stands for one; the register interface still answers; a job in
another group on another slot runs to completion."""

from __future__ import annotations

import atheris

from scheduler.isa import FIELDS, Op, encode
from tests.driver_model import BUF_VA, CODE_VA, SYNC_VA, Gpu, Group, mov48, probe_and_boot

from .harness import Finding, mutations, watched

OPS = list(Op)
REGISTERS = ("addr", "base", "data", "dst", "src", "src0", "src1", "value")
CS_REGS = 96
MAPPED = (BUF_VA, CODE_VA, SYNC_VA)
MAX_WORDS = 64
EXC_CS_UNRECOVERABLE = 0x41


def _instr(fdp: atheris.FuzzedDataProvider) -> int:
    op = OPS[fdp.ConsumeIntInRange(0, len(OPS) - 1)]
    fields = {}
    for s in FIELDS[op]:
        wild = fdp.ConsumeIntInRange(0, 15) == 0
        if s.name in REGISTERS and not wild:
            v = fdp.ConsumeIntInRange(0, CS_REGS // 2 - 1) * 2
        elif s.name in ("count", "length") and not wild:
            v = fdp.ConsumeIntInRange(0, 8)
        elif s.signed:
            lo, hi = (-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1) if wild else (-8, 8)
            v = fdp.ConsumeIntInRange(lo, hi)
        else:
            v = fdp.ConsumeIntInRange(0, (1 << s.width) - 1)
        fields[s.name] = v << s.scale
    return encode(op, **fields)


def _word(fdp: atheris.FuzzedDataProvider) -> int:
    return fdp.ConsumeInt(8) & (1 << 64) - 1 if fdp.ConsumeIntInRange(0, 31) == 0 else _instr(fdp)


@watched
def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    gpu = Gpu()
    try:
        d = probe_and_boot(gpu)
        g = Group(gpu, d, slot=0)
        g.code(0, [_word(fdp) for _ in range(fdp.ConsumeIntInRange(0, 16))])
        words = []
        for reg in range(0, 16, 2):  # a base address in some of the low register pairs
            if fdp.ConsumeBool():
                words.append(mov48(reg, MAPPED[fdp.ConsumeIntInRange(0, 2)] + 8 * fdp.ConsumeIntInRange(0, 64)))
        while fdp.remaining_bytes() and len(words) < MAX_WORDS:
            words.append(_word(fdp))
        g.submit(words)
        g.run(rounds=40)
        if gpu.read("GPU_ID") != gpu.dev.profile.gpu_id:
            raise Finding("the register interface no longer answers GPU_ID")
        fatal = g.out()["CS_FATAL"] & 0xFF
        if fatal == EXC_CS_UNRECOVERABLE:
            raise Finding(f"CS_UNRECOVERABLE (the internal-error answer): {g.out()['CS_FATAL_INFO']:#x}")
        h = Group(gpu, d, slot=1, as_index=2)
        d.ack_job_irq()
        h.submit(h.store_job(0xC0FFEE00, offset=0x20))
        h.run()
        if h.buf(0x20) != 0xC0FFEE00 or h.sync() != 1:
            raise Finding(f"a job in another group did not complete (buf 0x{h.buf(0x20):x}, sync {h.sync()})")
    finally:
        gpu.close()


def seeds() -> list[bytes]:
    import random

    rng = random.Random(4)
    base = [rng.randbytes(rng.choice((32, 128, 512))) for _ in range(8)]
    return base + mutations(base, 24, seed=4)
