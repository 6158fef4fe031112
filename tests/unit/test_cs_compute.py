"""RUN_COMPUTE through the driver model, as Mesa's panvk emits it: staging registers, the
endpoint scoreboard entry, a deferred SYNC_ADD64 and a WAIT; results read back from guest
memory. A bad address in the shader is an MMU fault and a CS fatal, as panthor sees them.
"""

import numpy as np

from mali_regs import csf_iface as I
from scheduler.isa import Op, encode
from tests.compute_model import SB, run_compute_cs, setup_compute
from tests.driver_model import BUF_VA, USER_AS, Group

# Mesa's vk_meta fill, in essence: offset = 4 * global id x; if offset < size: store data there
FILL = """
    SHADDX.u64 r0, u0, r60.w0, shift:0x2
    LSHIFT_OR.i32 r3, r60, 0x3020100.b22, 0x0
    ICMP_OR.u32.lt.m1 r4, r3, u3, 0x0
    MOV.i32 r2, u2
    BRANCHZ.eq.reconverge r4, offset:1
    STORE.i32.slot0 @r2, r0, offset:0
    NOP.end
"""


def test_run_compute_fills_a_buffer_and_the_deferred_sync_add_fires_after_it(booted):
    gpu, d = booted
    g = Group(gpu, d)
    size = 4 * 1000  # not a whole number of workgroups: the bounds check diverges in the last one
    nfau, wg = setup_compute(g, FILL, [BUF_VA, 0, 0xC0FFEE42, size])
    g.submit(run_compute_cs(nfau, wg, (16, 1, 1)))
    g.run(rounds=200)
    assert g.out()["CS_FATAL"] == 0
    got = np.frombuffer(gpu.ram.read(g.pa[BUF_VA], 4 * 1024), "<u4")
    assert (got[:1000] == 0xC0FFEE42).all() and (got[1000:] == 0).all()
    assert g.sync() == 1
    assert g.extract() == g.insert[0]


def test_the_dispatch_runs_in_bounded_slices_and_its_entry_stays_busy_until_done(booted):
    gpu, d = booted
    g = Group(gpu, d)
    loop = """
        IADD_IMM.i32 r3, 0x0, #0x0
        IADD_IMM.i32 r3, r3, #0x1
        ICMP_OR.u32.lt.m1 r4, r3, u3, 0x0
        BRANCHZ.reconverge r4, offset:-3
        SHADDX.u64 r0, u0, r60.w0, shift:0x2
        STORE.i32.slot0.end @r3, r0, offset:0
    """
    nfau, wg = setup_compute(g, loop, [BUF_VA, 0, 0, 400])
    g.submit(run_compute_cs(nfau, wg, (16, 1, 1)))
    gpu.dev.engine.run_once()
    assert g.sync() == 0                                   # one slice is not the whole dispatch
    g.request(toggle=1 << 5)                               # STATUS_UPDATE
    out = g.out()
    assert out["CS_STATUS_SCOREBOARDS"] & 1 << SB          # the endpoint entry is busy
    assert out["CS_STATUS_BLOCKED_REASON"] == 1            # SB_WAIT: the deferred SYNC_ADD waits on it
    assert gpu.read("GPU_ID") == gpu.read("GPU_ID")        # registers are served between slices
    g.run(rounds=2000)
    got = np.frombuffer(gpu.ram.read(g.pa[BUF_VA], 4 * 1024), "<u4")
    assert (got == 400).all() and g.sync() == 1


def test_a_shader_store_to_an_unmapped_address_is_an_mmu_fault_and_a_cs_fatal(booted):
    gpu, d = booted
    gpu.write("MMU_IRQ_MASK", 0xFFFF)
    g = Group(gpu, d)
    d.ack_job_irq()
    nfau, wg = setup_compute(g, FILL, [0x7700_0000, 0, 1, 4096])
    g.submit(run_compute_cs(nfau, wg, (1, 1, 1)))
    g.run(rounds=50)
    assert gpu.read("MMU_IRQ_RAWSTAT") == 1 << USER_AS
    assert gpu.read(f"AS_FAULTADDRESS[{USER_AS}]") == 0x7700_0000
    assert gpu.read(f"AS_FAULTSTATUS[{USER_AS}]") & 0x3FF == 0x3C1  # WRITE, TRANSLATION_FAULT_1
    out = g.out()
    assert out["CS_FATAL"] & 0xFF == 0xC1 and out["CS_FATAL_INFO"] == 0x7700_0000
    ci = gpu.dev.mcu.cs(I.CS_INPUT, 0, 0)
    assert (ci["CS_REQ"] ^ out["CS_ACK"]) & (1 << 30)           # FATAL event
    assert d.ack_job_irq() & 1
    assert g.sync() == 0                                        # the deferred SYNC_ADD never ran


def test_an_invalid_shader_instruction_is_a_cs_fatal_naming_it(booted, caplog):
    gpu, d = booted
    g = Group(gpu, d)
    nfau, wg = setup_compute(g, "FRCP.f16 r0, r1.h00\nNOP.end", [BUF_VA, 0])
    g.submit(run_compute_cs(nfau, wg, (1, 1, 1)))
    g.run(rounds=50)
    assert g.out()["CS_FATAL"] & 0xFF == 0x51                    # INSTR_INVALID_ENC
    assert "FRCP.f16 r0, r1.h00: not implemented" in caplog.text


def test_run_compute_with_no_descriptors_faults_reading_the_shader_descriptor(booted):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([encode(Op.RUN_COMPUTE)])
    g.run()
    assert g.out()["CS_FATAL"] & 0xF8 == 0xC0                    # a translation fault at VA 0
    assert g.out()["CS_FATAL_INFO"] == 0


def test_the_same_group_runs_the_next_dispatch(booted):
    gpu, d = booted
    g = Group(gpu, d)
    nfau, wg = setup_compute(g, FILL, [BUF_VA, 0, 7, 256])
    g.submit(run_compute_cs(nfau, wg, (1, 1, 1)))
    g.run(rounds=100)
    nfau, wg = setup_compute(g, FILL, [BUF_VA + 256, 0, 9, 256])
    g.submit(run_compute_cs(nfau, wg, (1, 1, 1)))
    g.run(rounds=100)
    got = np.frombuffer(gpu.ram.read(g.pa[BUF_VA], 512), "<u4")
    assert (got[:64] == 7).all() and (got[64:128] == 9).all() and g.sync() == 2


def test_a_dispatch_keeps_running_while_its_stream_waits_on_a_sync_object(booted):
    from scheduler.isa import Op as CsOp
    from tests.driver_model import SYNC_VA, mov32, mov48
    gpu, d = booted
    g = Group(gpu, d)
    nfau, wg = setup_compute(g, FILL, [BUF_VA, 0, 5, 4096])
    cs = run_compute_cs(nfau, wg, (16, 1, 1), sync=False)
    cs += [mov48(50, SYNC_VA + 0x80), mov32(52, 0),
           encode(CsOp.SYNC_WAIT32, addr=50, data=52, cond=1)]        # waits for the CPU, forever here
    g.submit(cs)
    for _ in range(100):
        busy, _ = gpu.dev.engine.run_once()
        if g.buf(4 * 1023) == 5:
            break
        assert busy  # work in flight: the engine must not sleep on the poll interval
    got = np.frombuffer(gpu.ram.read(g.pa[BUF_VA], 4096), "<u4")
    assert (got == 5).all()                                            # the dispatch finished meanwhile
    g.request(toggle=1 << 5)
    assert g.out()["CS_STATUS_BLOCKED_REASON"] == 3                    # and the stream still waits


def test_run_compute_indirect_reads_the_same_staging_registers(booted):
    # Mesa avoids it, but it exists: same staging registers, the job size from SR37-39
    from scheduler.isa import Op as CsOp
    gpu, d = booted
    g = Group(gpu, d)
    nfau, wg = setup_compute(g, FILL, [BUF_VA, 0, 0xAB, 512])
    cs = run_compute_cs(nfau, wg, (2, 1, 1))
    i = next(k for k, w in enumerate(cs) if w >> 56 == int(CsOp.RUN_COMPUTE))
    cs[i] = encode(CsOp.RUN_COMPUTE_INDIRECT, workgroups_per_task=1)
    g.submit(cs)
    g.run(rounds=100)
    got = np.frombuffer(gpu.ram.read(g.pa[BUF_VA], 1024), "<u4")
    assert (got[:128] == 0xAB).all() and (got[128:] == 0).all() and g.sync() == 1
