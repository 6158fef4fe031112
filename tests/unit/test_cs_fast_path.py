"""The compiled fast path computes what the handler table computes.

Random register-only programs (moves, 32/64-bit adds around the wrap and sign boundaries,
UMIN32, forward branches on every condition, a counted loop) run once as the engine runs
them and once with compilation switched off, so every instruction goes through
Interpreter._execute; the registers must agree word for word.
"""

import random

import pytest

from scheduler import compiled
from scheduler.isa import Op, encode
from tests.driver_model import Driver, Gpu, Group, mov32, mov48

EDGE = (0, 1, 2, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF)


def _program(rng: random.Random, length: int = 120) -> list[int]:
    prog = [mov32(r, rng.choice(EDGE) if rng.random() < 0.75 else rng.getrandbits(32)) for r in range(16)]
    while len(prog) < length:
        k = rng.randrange(6)
        d, s, t = rng.randrange(15), rng.randrange(15), rng.randrange(16)
        if k == 0:
            prog.append(encode(Op.ADD_IMM32, dst=d, src=s, imm=rng.choice((-1, 1, -0x80000000, 0x7FFFFFFF,
                                                                           rng.randrange(-2**31, 2**31)))))
        elif k == 1:
            prog.append(encode(Op.ADD_IMM64, dst=d, src=s, imm=rng.randrange(-2**31, 2**31)))
        elif k == 2:
            prog.append(encode(Op.UMIN32, dst=d, src0=s, src1=t))
        elif k == 3:
            prog.append(mov48(d, rng.getrandbits(48)))
        elif k == 4:  # forward only: every program ends
            prog.append(encode(Op.BRANCH, cond=rng.randrange(8), value=t, offset=rng.randrange(0, 6)))
        else:
            prog.append(encode(Op.NOP))
    # a counted loop at the end (no branch above reaches into it): backward branches inside the fetch window
    return prog + [encode(Op.NOP)] * 6 + [mov32(20, rng.randrange(1, 40)), encode(Op.ADD_IMM32, dst=21, src=21, imm=3),
                   encode(Op.ADD_IMM32, dst=20, src=20, imm=-1), encode(Op.BRANCH, cond=3, value=20, offset=-3)]


def _run(prog: list[int]) -> list[int]:
    gpu = Gpu()
    try:
        d = Driver(gpu)
        gpu.write("MCU_CONTROL", 2)
        g = Group(gpu, d)
        g.submit(prog)
        g.run(rounds=100)
        cs = gpu.dev.csg_slots.slots[0].streams[0]
        assert cs.fatal is None and g.extract() == g.insert[0]
        return list(cs.regs)
    finally:
        gpu.close()


def _edges() -> list[int]:
    """Results below 0 and past 2**64, and every branch condition on 0, 1, -1 and INT_MIN."""
    prog = [mov32(0, 5), mov32(1, 0), encode(Op.ADD_IMM64, dst=2, src=0, imm=-10),
            mov32(4, 0xFFFFFFFF), mov32(5, 0xFFFFFFFF), encode(Op.ADD_IMM64, dst=6, src=4, imm=1),
            encode(Op.ADD_IMM32, dst=8, src=4, imm=1), encode(Op.ADD_IMM32, dst=9, src=1, imm=-1),
            encode(Op.UMIN32, dst=10, src0=4, src1=0)]
    for cond in range(8):
        for value in (0, 1, 0xFFFFFFFF, 0x80000000):
            prog += [mov32(11, value), encode(Op.BRANCH, cond=cond, value=11, offset=1),
                     encode(Op.ADD_IMM32, dst=12 + cond % 4, src=12 + cond % 4, imm=1 << cond)]
    return prog


@pytest.mark.parametrize("seed", [*range(24), "edges"])
def test_compiled_instructions_match_the_handler_table(seed, monkeypatch):
    prog = _edges() if seed == "edges" else _program(random.Random(seed))
    fast = _run(prog)
    monkeypatch.setattr(compiled, "compile_instr", lambda ins, nregs: compiled.SLOW)
    monkeypatch.setattr(compiled, "_TABLES", {})
    assert _run(prog) == fast
