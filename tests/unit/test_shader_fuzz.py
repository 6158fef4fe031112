"""Random shader code never breaks the shader core: a seeded stream of words (mostly valid
encodings from the table, some anything) ends in a ShaderFault naming what it met, an MMU
fault, or the program's end — never another exception, never a hang (a step budget)."""

import random

import numpy as np
import pytest

from mali_base.pagetable import MmuFault
from shader import isa
from shader.interp import ShaderFault
from tests.unit.shader_harness import BUF, FlatAspace, dispatch, hi, lo

FORMS = sorted(isa.FORMS)


def random_word(rng: random.Random) -> int:
    if rng.random() < 0.15:
        return rng.getrandbits(63)
    f = isa.FORMS[rng.choice(FORMS)]
    raw = f.spec.opcode << 48 | (f.spec.opcode2 or 0) << f.shift
    noise = rng.getrandbits(48) & ~(0xFFFF << 48)
    if f.spec.opcode2 is not None:
        noise &= ~(f.mask << f.shift)
    raw |= noise | rng.choice([0, 0, 0, 15, 9, 10, 1]) << 59
    if rng.random() < 0.7:  # keep sources on registers and small uniforms
        for s in range(4):
            raw = raw & ~(0xC0 << 8 * s) | rng.choice([0x00, 0x40, 0x80, 0xC0]) << 8 * s if rng.random() < .5 else raw
    return raw & ((1 << 63) - 1)


@pytest.mark.parametrize("seed", range(40))
def test_random_programs_end_in_a_named_fault_or_finish(seed):
    rng = random.Random(seed)
    code = b"".join(random_word(rng).to_bytes(8, "little") for _ in range(24))
    code += (isa.assemble("NOP.end")).to_bytes(8, "little")
    fau = [lo(BUF), hi(BUF)] * 4 + [rng.getrandbits(32) for _ in range(8)]
    try:
        dispatch(code, fau, wg=(16, 1, 1), groups=(2, 1, 1), wls=(1, 1024), budget=64)
    except (ShaderFault, MmuFault):
        pass
    except AssertionError:  # the step budget: a random backwards branch can loop forever
        pass


def test_a_faulting_lane_stops_the_dispatch_with_memory_untouched_by_later_instructions():
    a = FlatAspace()
    with pytest.raises(MmuFault):
        dispatch("""
            SHADDX.u64 r0, u0, r60.w0, shift:0x2
            STORE.i32.slot0 @r60, u2, offset:0
            STORE.i32.slot0.end @r60, r0, offset:0
        """, [lo(BUF), hi(BUF), 0x1000, 0], aspace=a)
    assert not np.frombuffer(a.read(BUF, 256), np.uint8).any()
