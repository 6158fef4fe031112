"""CSG slots and the CS interpreter, driven as panthor drives them (no QEMU).

The driver model programs AS0 (MCU) with the shared section and the queue I/O pages, and a
user address space with a ring buffer, user command buffers and sync objects; instructions
are assembled with scheduler.isa.encode and the engine is stepped by hand.
"""

import pytest

from mali_regs import csf_iface as I
from scheduler.isa import Op, encode
from tests.driver_model import BUF_VA, CODE_VA, SUSPEND_VA, SYNC_VA, USER_AS, Group, job_wrapper, mov32, mov48


def test_job_writes_deadbeef_and_signals_its_sync_object(booted):
    gpu, d = booted
    g = Group(gpu, d)
    d.ack_job_irq()
    g.submit(g.store_job(0xDEADBEEF, offset=0x10))
    g.run()
    assert g.buf(0x10) == 0xDEADBEEF
    assert g.sync() == 1 and g.sync(8, 4) == 0        # seqno += 1, status OK
    assert g.extract() == g.insert[0]                  # everything consumed, padding included
    assert d.ack_job_irq() & 1                         # JOB_IRQ bit of slot 0
    ci, co = gpu.dev.mcu.csg(I.CSG_INPUT, 0), g.csg_out()
    assert (ci["CSG_REQ"] ^ co["CSG_ACK"]) & (1 << 28)  # SYNC_UPDATE event pending for the host


def test_counted_loop(booted):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([mov32(1, 0), mov32(3, 37),
              encode(Op.ADD_IMM32, dst=1, src=1, imm=1),
              encode(Op.ADD_IMM32, dst=3, src=3, imm=-1),
              encode(Op.BRANCH, cond=3, value=3, offset=-3),          # NE: back to the first ADD
              mov48(4, BUF_VA), encode(Op.STORE_MULTIPLE, addr=4, base=1, mask=1, offset=0)])
    g.run()
    assert g.buf(0) == 37


def test_scoreboards_order_asynchronous_sync_operations(booted):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([mov48(0, SYNC_VA + 0x40), mov32(2, 5), mov32(3, 2),
              encode(Op.SYNC_SET32, addr=0, data=2, wait_mask=0, signal_slot=1),
              encode(Op.SYNC_ADD32, addr=0, data=3, wait_mask=0b10, signal_slot=2),  # after the SET
              encode(Op.WAIT, wait_mask=0b100),
              encode(Op.LOAD_MULTIPLE, addr=0, base=4, mask=1, offset=0),
              mov48(6, BUF_VA), encode(Op.STORE_MULTIPLE, addr=6, base=4, mask=1, offset=0)])
    g.run()
    assert g.buf(0) == 7


def test_sync_wait_orders_two_queues_of_one_group(booted):
    gpu, d = booted
    g = Group(gpu, d, nstreams=2)
    # queue 1 waits for sync > 0, then stores; queue 0 later sets the sync object
    g.submit([mov48(0, SYNC_VA + 0x80), mov32(2, 0),
              encode(Op.SYNC_WAIT32, addr=0, data=2, cond=1),
              mov48(4, BUF_VA), mov32(6, 0x1111), encode(Op.STORE_MULTIPLE, addr=4, base=6, mask=1, offset=4)],
             stream=1)
    g.run()
    assert g.buf(4) == 0
    g.request(toggle=1 << 5)  # STATUS_UPDATE
    out = g.out(1)
    assert out["CS_STATUS_BLOCKED_REASON"] == 3 and out["CS_STATUS_WAIT"] >> 31
    assert out["CS_STATUS_WAIT_SYNC_PTR"] == SYNC_VA + 0x80
    g.submit([mov48(0, SYNC_VA + 0x80), mov32(2, 1), encode(Op.SYNC_SET32, addr=0, data=2, signal_slot=0),
              encode(Op.WAIT, wait_mask=1)], stream=0)
    g.run()
    assert g.buf(4) == 0x1111


def test_call_return_and_call_depth_overflow(booted):
    gpu, d = booted
    g = Group(gpu, d)
    inner = g.code(0x100, [mov48(0, BUF_VA), mov32(2, 0xC0FFEE),
                           encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=8)])
    g.submit([mov48(10, inner[0]), mov32(12, inner[1]), encode(Op.CALL, addr=10, length=12),
              mov48(0, BUF_VA), mov32(2, 1), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=12)])
    g.run()
    assert g.buf(8) == 0xC0FFEE and g.buf(12) == 1
    recurse = g.code(0x400, [mov48(10, CODE_VA + 0x400), mov32(12, 24), encode(Op.CALL, addr=10, length=12)])
    g.submit([mov48(10, recurse[0]), mov32(12, recurse[1]), encode(Op.CALL, addr=10, length=12)])
    g.run()
    assert g.out()["CS_FATAL"] & 0xFF == 0x4A          # CALL_STACK_OVERFLOW


def test_store_to_unmapped_va_is_an_mmu_fault_and_a_cs_fatal(booted):
    gpu, d = booted
    gpu.write("MMU_IRQ_MASK", 0xFFFF)
    g = Group(gpu, d)
    d.ack_job_irq()
    g.submit([mov48(0, 0x7700_0000), mov32(2, 1), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0)])
    g.run()
    assert gpu.read("MMU_IRQ_RAWSTAT") == 1 << USER_AS
    assert gpu.read(f"AS_FAULTADDRESS[{USER_AS}]") == 0x7700_0000
    assert gpu.read(f"AS_FAULTSTATUS[{USER_AS}]") & 0x3FF == 0x3C1  # WRITE, TRANSLATION_FAULT_1
    out = g.out()
    assert out["CS_FATAL"] & 0xFF == 0xC1 and out["CS_FATAL_INFO"] == 0x7700_0000
    ci, co = gpu.dev.mcu.cs(I.CS_INPUT, 0, 0), out
    assert (ci["CS_REQ"] ^ co["CS_ACK"]) & (1 << 30)               # FATAL event
    cin, cout = gpu.dev.mcu.csg(I.CSG_INPUT, 0), g.csg_out()
    assert (cin["CSG_IRQ_ACK"] ^ cout["CSG_IRQ_REQ"]) & 1          # CS 0 needs attention
    assert d.ack_job_irq() & 1


@pytest.mark.parametrize("word, code", [
    (0xFE << 56, 0x49),                                                   # no such opcode
    (int(Op.RUN_IDVS) << 56, 0x49),                                      # needs the tiler
])
def test_invalid_and_unemulated_instructions_are_fatal(booted, word, code):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([word])
    g.run()
    assert g.out()["CS_FATAL"] & 0xFF == code


def test_endless_loop_does_not_starve_another_group(booted):
    gpu, d = booted
    g0 = Group(gpu, d, slot=0)
    g1 = Group(gpu, d, slot=1, as_index=2)
    g0.submit([mov32(1, 1), encode(Op.BRANCH, cond=6, value=1, offset=-1)])  # spin forever
    g1.submit([mov48(0, BUF_VA), mov32(2, 42), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0)])
    g1.run(rounds=3)
    assert g1.buf(0) == 42
    assert gpu.dev.csg_slots.slots[0].streams[0].instructions > 256  # and g0 kept running too
    g0.request(state=0)  # TERMINATE recovers the slot, as the driver does after its job timeout
    busy, _ = gpu.dev.engine.run_once()
    assert not busy


def test_suspend_and_resume_keep_registers_and_ring_position(booted):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([mov32(20, 0xABCD), mov48(0, SYNC_VA + 0x100), mov32(2, 0),
              encode(Op.SET_SB_ENTRY, endpoint_entry=3, other_entry=1),
              encode(Op.SYNC_WAIT32, addr=0, data=2, cond=1),
              mov48(4, BUF_VA), encode(Op.STORE_MULTIPLE, addr=4, base=20, mask=1, offset=0x20)])
    g.run()
    g.request(state=2)                                   # SUSPEND
    cs = gpu.dev.csg_slots.slots[0].streams[0]
    cs.regs[20] = 0                                      # the slot is now free for someone else
    cs.sb_endpoint = cs.sb_other = 0
    gpu.ram.u32(g.pa[SYNC_VA] + 0x100, 1)                # the wait is satisfied while suspended
    g.run()
    assert g.buf(0x20) == 0
    g.request(state=3)                                   # RESUME restores from the buffer
    g.run()
    assert g.buf(0x20) == 0xABCD
    assert (cs.sb_endpoint, cs.sb_other) == (3, 1)       # SET_SB_ENTRY state came back too
    assert g.extract() == g.insert[0]


def test_resume_inside_a_call_after_another_group_used_the_slot(booted):
    """SUSPEND in the middle of a CALLed buffer; the slot runs someone else; the driver's STOP
    is acked by a stray doorbell; RESUME must continue inside the call, not skip the job."""
    gpu, d = booted
    g = Group(gpu, d)
    inner = g.code(0x200, [mov48(0, SYNC_VA + 0x200), mov32(2, 0),
                           encode(Op.SYNC_WAIT32, addr=0, data=2, cond=1),
                           mov48(4, BUF_VA), mov32(6, 0x5EED), encode(Op.STORE_MULTIPLE, addr=4, base=6, mask=1, offset=0x40)])
    g.submit(job_wrapper(*inner, SYNC_VA))
    g.run()
    assert len(gpu.dev.csg_slots.slots[0].streams[0].frames) == 2  # blocked inside the CALL
    g.request(state=2)                                              # SUSPEND
    saved = gpu.ram.read(g.susp_pa, 0x4000)
    mcu = gpu.dev.mcu
    ci = mcu.cs(I.CS_INPUT, 0, 0)
    ci["CS_REQ"] = ci["CS_REQ"] & ~7                                # panthor: STOP, no doorbell
    g.request(toggle=1 << 5)                                        # a later STATUS_UPDATE acks it
    other = Group(gpu, d, slot=0, as_index=2)                       # someone else's group in the slot
    other.submit([mov32(1, 1)])
    other.run()
    other.request(state=0)
    d.pt.map(SUSPEND_VA, g.susp_pa, 0x4000)                         # our group's buffers again
    d.pt.map(g.io_va(0), g.io_pa, 0x2000)
    gpu.write("AS_COMMAND[0]", 2)
    assert gpu.ram.read(g.susp_pa, 0x4000) == saved
    ci["CS_REQ"] = (ci["CS_REQ"] & ~7) | 1                          # reprogrammed for the resume
    cfg = mcu.csg(I.CSG_INPUT, 0)
    cfg["CSG_CONFIG"] = USER_AS
    gpu.write(f"AS_COMMAND[{USER_AS}]", 1)
    g.request(state=3)                                              # RESUME
    gpu.ram.u32(g.pa[SYNC_VA] + 0x200, 1)
    g.run()
    assert g.buf(0x40) == 0x5EED                                    # the job really ran
    assert g.sync() == 1


def test_ring_insert_behind_extract_is_a_fatal_not_a_runaway(booted):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([mov32(1, 1), mov32(2, 2)])
    g.run()
    gpu.ram.u64(g.io_pa, 8)  # the driver moved insert backwards
    d.doorbell(1)
    g.run()
    assert g.out()["CS_FATAL"] & 0xFF == 0x50  # INSTR_INVALID_PC
    assert gpu.dev.csg_slots.slots[0].streams[0].instructions == 2


def test_errors_propagate_through_sync_objects(booted):
    """A wait with error_reject on a failed sync object takes the error on; a SYNC_ADD with
    error_propagate then passes it to the next sync object; ERROR_BARRIER clears it."""
    gpu, d = booted
    g = Group(gpu, d)
    gpu.ram.u64(g.pa[SYNC_VA] + 0x300, 1)
    gpu.ram.u32(g.pa[SYNC_VA] + 0x308, 0xBAD)           # the producer failed
    g.submit([mov48(0, SYNC_VA + 0x300), mov48(2, 0),
              encode(Op.SYNC_WAIT64, addr=0, data=2, cond=1, error_reject=1),
              mov48(4, SYNC_VA + 0x340), mov48(6, 1),
              encode(Op.SYNC_ADD64, addr=4, data=6, error_propagate=1, signal_slot=0),
              encode(Op.ERROR_BARRIER),
              mov48(8, SYNC_VA + 0x380),
              encode(Op.SYNC_ADD64, addr=8, data=6, error_propagate=1, signal_slot=0)])
    g.run()
    assert g.sync(0x340) == 1 and g.sync(0x348, 4) == 0xBAD  # the error travelled on
    assert g.sync(0x388, 4) == 0                              # after the barrier: clean
    assert g.sync(0x380) == 1


def test_an_internal_error_is_a_cs_fatal_not_a_dead_engine(booted, monkeypatch):
    gpu, d = booted
    g = Group(gpu, d)
    from scheduler.stream import Interpreter

    def broken(self, cs, aspace, ins, va):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(Interpreter, "_execute", broken)  # the handler table (MOVE32 is compiled)
    g.submit([encode(Op.WAIT, wait_mask=0)])
    g.run()
    assert g.out()["CS_FATAL"] == 0x41                    # the driver resets the GPU on it
    monkeypatch.undo()
    g2 = Group(gpu, d, slot=1, as_index=2)                # and the engine still runs work
    g2.submit([mov48(0, BUF_VA), mov32(2, 9), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0)])
    g2.run()
    assert g2.buf(0) == 9


def test_a_page_table_pointing_outside_guest_ram_is_a_bus_fault(booted):
    gpu, d = booted
    gpu.write("GPU_IRQ_MASK", 0x20103)
    g = Group(gpu, d)
    g.pt.map(0x7000_0000, 0x9_0000_0000, 0x1000)     # a PA no DMA map covers
    gpu.write(f"AS_COMMAND[{USER_AS}]", 2)
    g.submit([mov48(0, 0x7000_0000), mov32(2, 1), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0)])
    g.run()
    assert g.out()["CS_FATAL"] == 0x80
    assert gpu.read("GPU_FAULTSTATUS") == 0x80 and gpu.read("GPU_FAULTADDRESS") == 0x9_0000_0000
    assert gpu.read("GPU_IRQ_STATUS") & 1


def test_mcu_that_loses_as0_under_a_running_stream_goes_fatal(booted):
    """AS0 re-programmed under the running firmware: the ring's pages and the interface are
    gone, so the MCU faults on AS0 and stops (MCU_STATUS FATAL); the engine keeps running."""
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([encode(Op.BRANCH, cond=6, value=0, offset=-1)])  # ALWAYS: an endless loop
    g.run(rounds=2)
    gpu.write("AS_TRANSCFG[0]", 1)   # ADRMODE UNMAPPED
    gpu.write("AS_COMMAND[0]", 1)    # UPDATE
    g.run(rounds=4)
    assert gpu.read("MCU_STATUS") == 3  # FATAL
    assert "lost the shared section while reporting on CSG0 CS0" in gpu.dev.mcu.fatal_reason
    assert gpu.read("MMU_IRQ_RAWSTAT") & 1  # the fault is reported on AS0
    busy, waiting = gpu.dev.engine.run_once()
    assert (busy, waiting) == (False, False)  # nothing runs without the firmware
