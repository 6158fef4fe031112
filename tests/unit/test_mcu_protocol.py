"""The emulated MCU: boot through AS0, the GLB req/ack toggle protocol, halt, stop, reset."""

from mali_regs import csf_iface as I
from tests.driver_model import GLB_IN, GLB_OUT, JOB_GLOBAL, SHARED, Driver
from tests.driver_model import glb_bits as bits


def test_boot_publishes_the_interface(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 1
    assert d.ack_job_irq() == JOB_GLOBAL
    assert d.u32(SHARED + 0x0) == 0x01010000                # GLB version 1.1.0
    assert d.u32(SHARED + 0x8) == GLB_IN and d.u32(SHARED + 0xC) == GLB_OUT
    assert d.u32(SHARED + 0x10) == 8 and d.u32(SHARED + 0x14) == 0xA0
    csg7 = SHARED + 0x1000 + 7 * 0xA0
    assert d.u32(csg7 + 0x0C) > 0 and d.u32(csg7 + 0x14) == 8  # suspend size, stream_num
    cs = csg7 + 0x40 + 7 * 0xC
    assert d.u32(cs) == 0x7085F                                  # 96 regs, 8 scoreboards
    # every published VA lies inside the 64 KiB shared section
    for va in (d.u32(csg7 + 4), d.u32(csg7 + 8), d.u32(cs + 4), d.u32(cs + 8)):
        assert SHARED <= va < SHARED + 0x10000


def test_boot_without_as0_is_fatal(gpu):
    gpu.write("JOB_IRQ_MASK", 0xFFFFFFFF)
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 3
    assert gpu.read("JOB_IRQ_RAWSTAT") == 0


def test_glb_requests_are_acked_and_irq_only_when_asked(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    d.ack_job_irq()
    d.u32(GLB_IN + 0x4, bits("CFG_ALLOC_EN", "PING", "CFG_PROGRESS_TIMER", "CFG_POWEROFF_TIMER", "IDLE_EN"))
    d.u32(GLB_IN + 0x10, 2_560_000)
    d.toggle(bits("CFG_ALLOC_EN", "CFG_POWEROFF_TIMER", "CFG_PROGRESS_TIMER"))
    d.u32(GLB_IN, d.u32(GLB_IN) | bits("IDLE_EN", "COUNTER_EN"))
    d.doorbell()
    assert (d.u32(GLB_IN) ^ d.u32(GLB_OUT)) & I.GLB_REQ_MASK == 0
    assert d.ack_job_irq() == JOB_GLOBAL
    assert gpu.dev.mcu.glb_timers["GLB_PROGRESS_TIMER"] == 2_560_000
    for _ in range(3):  # the 12 s watchdog: PING toggles, each acked within the doorbell
        d.toggle(bits("PING"))
        d.doorbell()
        assert (d.u32(GLB_IN) ^ d.u32(GLB_OUT)) & bits("PING") == 0
        assert d.ack_job_irq() == JOB_GLOBAL
    d.u32(GLB_IN + 0x4, 0)                 # PING no longer in ACK_IRQ_MASK
    d.toggle(bits("PING"))
    d.doorbell()
    assert (d.u32(GLB_IN) ^ d.u32(GLB_OUT)) & bits("PING") == 0
    assert gpu.read("JOB_IRQ_RAWSTAT") == 0
    assert gpu.dev.mcu.pings == 4


def test_doorbell_req_is_mirrored_without_irq(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    d.ack_job_irq()
    d.u32(GLB_IN + 0x4, 0xFFFFFFFF)
    d.u32(GLB_IN + 0x8, d.u32(GLB_OUT + 0x8) ^ 0b101)  # CSG 0 and 2
    d.doorbell()
    assert d.u32(GLB_OUT + 0x8) == d.u32(GLB_IN + 0x8)
    assert gpu.read("JOB_IRQ_RAWSTAT") & JOB_GLOBAL == 0


def test_halt_stop_and_fast_resume(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    d.ack_job_irq()
    d.u32(GLB_IN, d.u32(GLB_IN) | bits("HALT"))
    d.doorbell()
    assert gpu.read("MCU_STATUS") == 2                       # HALT
    assert d.u32(GLB_OUT) & bits("HALT") == 0                # never acked in GLB_ACK
    gpu.write("MCU_CONTROL", 0)
    assert gpu.read("MCU_STATUS") == 0
    d.doorbell()                                             # a stopped MCU ignores doorbells
    d.u32(GLB_IN, d.u32(GLB_IN) & ~bits("HALT"))             # resume: clear HALT, then boot
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 1 and d.ack_job_irq() == JOB_GLOBAL
    assert gpu.dev.mcu.boots == 2


def test_soft_reset_stops_the_mcu(gpu):
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    gpu.write("GPU_COMMAND", 0x101)
    assert gpu.read("MCU_STATUS") == 0
    assert gpu.read("JOB_IRQ_RAWSTAT") == 0
    gpu.write("AS_COMMAND[0]", 1)  # AS0 configuration was dropped by the reset
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 3
    d.__init__(gpu)                # the driver reprograms AS0 after a reset
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 1


def test_shared_section_mapped_outside_guest_ram_is_a_fatal_boot(gpu):
    d = Driver(gpu)
    d.pt.map(SHARED, 0x9_0000_0000, 0x10000)  # AS0 sends the shared section nowhere
    gpu.write("AS_COMMAND[0]", 1)
    gpu.write("MCU_CONTROL", 2)
    assert gpu.read("MCU_STATUS") == 3          # FATAL: panthor reports "Failed to boot MCU"
    assert gpu.read("JOB_IRQ_RAWSTAT") == 0
