"""The shader core on small hand-assembled compute shaders (Mesa's assembly syntax).

Results are checked against what each shader means, computed independently in plain
Python/numpy: integer and float arithmetic, a branch that diverges per lane, a loop with a
per-lane trip count, shared memory across a barrier, atomics, and faults.
"""

import numpy as np
import pytest

from shader.interp import ShaderFault
from tests.unit.shader_harness import BUF, WLS, dispatch, hi, lo

OUT = BUF
PTR = [lo(OUT), hi(OUT)]  # u0:u1 = the output buffer


def test_integer_arithmetic_per_global_id():
    a, job = dispatch("""
        SHADDX.u64 r0, u0, r60.w0, shift:0x2
        IMUL.i32 r2, r60, r60
        IADD_IMM.i32 r2, r2, #0x7
        ISUB.s32 r2, r2, u2
        STORE.i32.slot0.end @r2, r0, offset:0
    """, PTR + [5], wg=(32, 1, 1), groups=(4, 1, 1))
    gid = np.arange(128, dtype=np.int64)
    assert (a.u32(OUT, 128) == (gid * gid + 7 - 5) & 0xFFFFFFFF).all()
    assert job.thread_instructions == 5 * 128


def test_ids_in_three_dimensions():
    # out[linear global id] = local x | local y << 8 | wg z << 16 | global y << 24
    a, _ = dispatch("""
        U16_TO_U32 r2, r55.h00
        U16_TO_U32 r3, r55.h10
        LSHIFT_OR.i32 r2, r3, 0xB0A0908.b00, r2
        IADD_IMM.i32 r9, 0x0, #0x10
        LSHIFT_OR.i32 r2, r59, r9.b00, r2
        IADD_IMM.i32 r9, 0x0, #0x18
        LSHIFT_OR.i32 r2, r61, r9.b00, r2
        IMUL.i32 r4, r61, u2
        IADD.u32 r4, r4, r60
        IMUL.i32 r5, r62, u3
        IADD.u32 r4, r4, r5
        SHADDX.u64 r0, u0, r4.w0, shift:0x2
        STORE.i32.slot0.end @r2, r0, offset:0
    """, PTR + [8, 8 * 4], wg=(4, 2, 2), groups=(2, 2, 2))
    out = a.u32(OUT, 8 * 4 * 4)
    for gz in range(4):
        for gy in range(4):
            for gx in range(8):
                lx, ly, wz = gx % 4, gy % 2, gz // 2
                assert out[gx + gy * 8 + gz * 32] == lx | ly << 8 | wz << 16 | gy << 24


def test_float_arithmetic_matches_float32():
    a, _ = dispatch("""
        U32_TO_F32 r2, r60
        FMA.f32 r3, r2, u2, u3
        FADD.f32 r3, r3, r2.neg
        FMAX.f32 r3, r3, 0x0
        F32_TO_S32.rtz r4, r3
        SHADDX.u64 r0, u0, r60.w0, shift:0x3
        STORE.i64.slot0.end @r3:r4, r0, offset:0
    """, PTR + [np.float32(1.7).view(np.uint32), np.float32(-9.25).view(np.uint32)])
    x = np.arange(64, dtype=np.float32)
    f = np.maximum((x.astype(np.float64) * np.float32(1.7) + np.float32(-9.25)).astype(np.float32) - x, 0)
    got = a.u32(OUT, 128).reshape(64, 2)
    assert (got[:, 0].view(np.float32) == f).all()
    assert (got[:, 1] == np.trunc(f).astype(np.uint32)).all()


def test_branch_that_diverges_per_lane():
    a, job = dispatch("""
        IADD_IMM.i32 r4, 0x0, #0x1
        IADD_IMM.i32 r5, 0x0, #0x3
        LSHIFT_AND.i32 r3, r60, 0x0.b00, r4
        SHADDX.u64 r0, u0, r60.w0, shift:0x2
        BRANCHZ.eq.reconverge r3, offset:2
        IMUL.i32 r2, r60, r5
        BRANCHZ.reconverge r4, offset:1
        IADD_IMM.i32.reconverge r2, r60, #0x64
        STORE.i32.slot0.end @r2, r0, offset:0
    """, PTR)
    gid = np.arange(64)
    assert (a.u32(OUT, 64) == np.where(gid & 1, gid * 3, gid + 100)).all()
    # 6 instructions for every lane, the odd ones 2 more, the even ones 1 more
    assert job.thread_instructions == 64 * 6 + 32 * 2 + 32


def test_loop_with_a_per_lane_trip_count():
    a, _ = dispatch("""
        IADD_IMM.i32 r2, 0x0, #0x0
        IADD_IMM.i32 r3, 0x0, #0x0
        SHADDX.u64 r0, u0, r60.w0, shift:0x2
        IADD.u32 r2, r2, r3
        IADD_IMM.i32 r3, r3, #0x1
        ICMP_OR.u32.ge.m1 r6, r60, r3, 0x0
        BRANCHZ.reconverge r6, offset:-4
        STORE.i32.slot0.end @r2, r0, offset:0
    """, PTR, wg=(16, 1, 1), groups=(3, 1, 1))
    gid = np.arange(48)
    assert (a.u32(OUT, 48) == gid * (gid + 1) // 2).all()


def test_shared_memory_across_a_barrier_in_each_workgroup():
    # each thread stores its local id to WLS, then reads its neighbour's (lid + 1) % 64
    a, job = dispatch("""
        U16_TO_U32 r10, r55.h00
        SHADDX.u64 r8, workgroup_local_pointer.w0, r10.w0, shift:0x2
        IADD.u32 r12, r10, r57
        STORE.i32.slot0 @r12, r8, offset:0
        BARRIER.slot7.wait
        IADD_IMM.i32 r11, r10, #0x1
        IADD_IMM.i32 r14, 0x0, #0x3F
        LSHIFT_AND.i32 r11, r11, 0x0.b00, r14
        SHADDX.u64 r8, workgroup_local_pointer.w0, r11.w0, shift:0x2
        LOAD.i32.unsigned.slot0.wait0 @r13, r8, offset:0
        SHADDX.u64 r0, u0, r60.w0, shift:0x2
        STORE.i32.slot0.end @r13, r0, offset:0
    """, PTR, wg=(64, 1, 1), groups=(5, 1, 1), wls=(3, 256), max_lanes=256)
    gid = np.arange(5 * 64)
    wg, lid = gid // 64, gid % 64
    assert (a.u32(OUT, 5 * 64) == (lid + 1) % 64 + wg).all()
    assert job.per_batch == 4  # 256 lanes, so two batches, each workgroup its own WLS instance
    assert (a.u32(WLS + 256 * 3, 64) == np.arange(64) + 3).all()


def test_atomics_return_every_old_value_once():
    counter = OUT + 0x4000
    a, _ = dispatch("""
        IADD_IMM.i32 r4, 0x0, #0x1
        ATOM_RETURN.i32.slot0.aadd.wait0 @r5, @r4, u2, offset:0x0
        ATOM.i32.slot0.aadd @r60, u2, offset:0x4
        ATOM.i32.slot0.aumax @r60, u2, offset:0x8
        SHADDX.u64 r0, u0, r60.w0, shift:0x2
        STORE.i32.slot0.end @r5, r0, offset:0
    """, PTR + [lo(counter), hi(counter)], wg=(32, 1, 1), groups=(3, 1, 1))
    assert sorted(a.u32(OUT, 96)) == list(range(96))
    assert list(a.u32(counter, 3)) == [96, sum(range(96)), 95]


def test_store_to_an_unmapped_address_is_a_real_mmu_fault():
    from mali_base.pagetable import MmuFault
    with pytest.raises(MmuFault) as e:
        dispatch("""
            SHADDX.u64 r0, u0, r60.w0, shift:0x2
            STORE.i32.slot0.end @r60, r0, offset:0
        """, [0x5000, 0x1])
    assert e.value.va == 0x1_0000_5000


def test_an_unimplemented_instruction_faults_naming_it():
    with pytest.raises(ShaderFault, match=r"FRCP\.f16 r0, r1\.h00: not implemented"):
        dispatch("FRCP.f16 r0, r1.h00\nNOP.end", PTR)


def test_running_off_the_end_of_the_program_is_an_encoding_fault():
    with pytest.raises(ShaderFault, match="all-zero word"):
        dispatch("MOV.i32 r0, r1", PTR)


def test_an_invalid_word_after_the_end_is_only_a_fault_if_it_runs():
    # the rest of the page is fetched (and compiled) at once: a reserved encoding there is harmless
    from shader import isa
    from tests.unit.shader_harness import CODE, FlatAspace
    a = FlatAspace()
    a.write(CODE + 16, (0x0125000000000000).to_bytes(8, "little"))  # TEX_FETCH, reserved write mask 0
    a2, _ = dispatch("SHADDX.u64 r0, u0, r60.w0, shift:0x2\nSTORE.i32.slot0.end @r60, r0, offset:0", PTR, aspace=a)
    assert (a2.u32(OUT, 64) == np.arange(64)).all()
    with pytest.raises(isa.InvalidEncoding):
        isa.decode(0x0125000000000000)
    a.write(CODE + 8, (0x0125000000000000).to_bytes(8, "little"))
    with pytest.raises(ShaderFault, match="reserved write_mask value 0"):
        dispatch("NOP", PTR, aspace=a)  # runs into it


def test_subgroup_broadcast_shuffle_xor_and_ballot_within_each_warp():
    # workgroups of 24 threads: warps of 16 and 8 lanes; odd lanes branch away before the ballot
    a, _ = dispatch("""
        U16_TO_U32 r10, r55.h00
        IADD_IMM.i32 r11, 0x0, #0x3
        CLPER.i32 r2, r10, r11.b00
        IADD_IMM.i32 r11, 0x0, #0x5
        CLPER.i32.xor.umax r3, r10, r11.b00
        IADD_IMM.i32 r12, 0x0, #0x1
        LSHIFT_AND.i32 r13, r10, 0x0.b00, r12
        BRANCHZ.reconverge r13, offset:1
        WMASK r4, r12
        SHADDX.u64 r0, u0, r60.w0, shift:0x4
        STORE.i96.slot0.end @r2:r3:r4, r0, offset:0
    """, PTR, wg=(24, 1, 1), groups=(2, 1, 1))
    out = a.u32(OUT, 4 * 48).reshape(48, 4)[:, :3]
    for g in range(48):
        lid = g % 24
        base, size = (0, 16) if lid < 16 else (16, 8)
        lane = lid - base
        assert out[g, 0] == base + 3, g                                   # broadcast of lane 3
        assert out[g, 1] == (base + (lane ^ 5) if (lane ^ 5) < size else 0xFFFFFFFF), g
        if lane % 2 == 0:                                                 # even lanes: the ballot ran here
            assert out[g, 2] == sum(1 << k for k in range(0, size, 2)), g
