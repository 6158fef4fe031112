"""Random command streams: whatever a guest puts in a ring, the interpreter answers as
hardware would (a fault, a fatal, a wait or nothing) and never with an internal error; the
device keeps working for the next group.

Streams mix valid instructions with random fields (registers pointing into the group's
mapped buffers half of the time, so loads, stores and sync objects also succeed) and raw
random words; seeded, so a failure names its seed.
"""

import logging
import random

import pytest

from scheduler.isa import FIELDS, Op, encode
from tests.driver_model import BUF_VA, CODE_VA, SYNC_VA, Group, mov48

SEEDS = range(300)
WORDS = 24
MAPPED = (BUF_VA, CODE_VA, SYNC_VA)


REGISTERS = ("addr", "base", "data", "dst", "src", "src0", "src1", "value")
CS_REGS = 96


def random_instr(rng: random.Random) -> int:
    """Mostly in range (registers that exist, short offsets and counts), so streams get past
    their first instruction; sometimes anything the field can hold."""
    shaders = rng.random() < 0.03  # RUN_*/FINISH_*: most fault the queue at once (no shader cores)
    op = rng.choice([o for o in Op if o.name.startswith(("RUN_", "FINISH_")) == shaders])
    fields = {}
    for s in FIELDS[op]:
        wild = rng.random() < 0.05
        if s.name in REGISTERS and not wild:
            v = rng.randrange(0, CS_REGS, 2)
        elif s.name in ("count", "length") and not wild:
            v = rng.randint(0, 8)
        elif s.signed:
            v = rng.randint(-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1)
            v = v if wild else max(-8, min(8, v))
        elif s.name in ("signal_slot",) and not wild:
            v = rng.randint(0, 7)
        else:
            v = rng.randint(0, (1 << s.width) - 1)
        fields[s.name] = v << s.scale
    return encode(op, **fields)


def random_stream(rng: random.Random) -> list[int]:
    words = []
    for reg in range(0, 16, 2):  # a base address in half of the low register pairs
        if rng.random() < 0.5:
            words.append(mov48(reg, rng.choice(MAPPED) + 8 * rng.randint(0, 64)))
    while len(words) < WORDS:
        words.append(random_instr(rng) if rng.random() < 0.97 else rng.getrandbits(64))
    return words


@pytest.mark.parametrize("seed", SEEDS)
def test_random_stream_gets_a_hardware_answer_and_the_device_survives(booted, seed, caplog):
    gpu, d = booted
    rng = random.Random(seed)
    g = Group(gpu, d, slot=0)
    # user code for CALL/JUMP to land in, too
    g.code(0, [random_instr(rng) for _ in range(16)])
    with caplog.at_level(logging.WARNING):
        g.submit(random_stream(rng))
        g.run(rounds=40)
    internal = [r.getMessage() for r in caplog.records if "internal error" in r.getMessage()]
    assert internal == [], f"seed {seed}: {internal}"
    assert gpu.read("GPU_ID") == gpu.dev.profile.gpu_id  # the register interface still answers
    # The CS either still runs/waits or was stopped with a real exception code.
    fatal = g.out()["CS_FATAL"] & 0xFF
    assert fatal != 0x41, f"seed {seed}: CS_UNRECOVERABLE is the internal-error answer"
    # Another group on another slot still runs a job to completion.
    h = Group(gpu, d, slot=1, as_index=2)
    d.ack_job_irq()
    h.submit(h.store_job(0xC0FFEE00 | seed & 0xFF, offset=0x20))
    h.run()
    assert h.buf(0x20) == 0xC0FFEE00 | seed & 0xFF, f"seed {seed}"
    assert h.sync() == 1
