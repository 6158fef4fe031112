"""GPU_CONTROL and the interrupt quadruples, driven the way panthor drives them."""

import logging

from mali_regs.mmio import gpu_cmd_flush_caches

RESET_COMPLETED, POWER_CHANGED_ALL, CLEAN_CACHES_COMPLETED = 1 << 8, 1 << 10, 1 << 17


def test_id_registers_of_the_profile(gpu):
    assert gpu.read("GPU_ID") == 0xA8670005
    assert gpu.read("MMU_FEATURES") == 0x2830
    assert gpu.read("SHADER_PRESENT") == 0x50005
    assert gpu.read("COHERENCY_FEATURES") & 1  # ACE-Lite, for the dma-coherent DT node


def test_irq_quadruple_semantics(gpu):
    gpu.write("GPU_IRQ_MASK", 0x20103)
    assert not gpu.line
    gpu.write("GPU_COMMAND", 0x101)                      # soft reset
    assert gpu.read("GPU_IRQ_RAWSTAT") & RESET_COMPLETED
    assert gpu.read("GPU_IRQ_STATUS") == RESET_COMPLETED  # STATUS = RAWSTAT & MASK
    assert gpu.line
    gpu.write("GPU_IRQ_MASK", 0)                          # hard handler masks: line drops
    assert not gpu.line and gpu.read("GPU_IRQ_STATUS") == 0
    gpu.write("GPU_IRQ_CLEAR", RESET_COMPLETED)           # threaded handler clears
    gpu.write("GPU_IRQ_MASK", 0x20103)
    assert gpu.read("GPU_IRQ_RAWSTAT") & RESET_COMPLETED == 0
    assert not gpu.line


def test_rawstat_write_sets_bits(gpu):
    gpu.write("JOB_IRQ_MASK", 0xFFFFFFFF)
    gpu.write("JOB_IRQ_RAWSTAT", 1 << 3)
    assert gpu.read("JOB_IRQ_STATUS") == 1 << 3 and gpu.line


def test_l2_power_on_off(gpu):
    assert gpu.read("L2_PWRTRANS") == 0 and gpu.read("L2_READY") == 0
    gpu.write("L2_PWRON", 1)
    assert gpu.read("L2_READY") == 1 and gpu.read("L2_PWRTRANS") == 0
    assert gpu.read("GPU_IRQ_RAWSTAT") & POWER_CHANGED_ALL
    gpu.write("SHADER_PWRON", 0xFFFFFFFF)                  # only present cores power up
    assert gpu.read("SHADER_READY") == 0x50005
    gpu.write("L2_PWROFF", 1)
    assert gpu.read("L2_READY") == 0


def test_cache_flush_completes_and_moves_the_flush_id(gpu):
    before = gpu.read("LATEST_FLUSH_ID")
    assert before != 0
    gpu.write("GPU_COMMAND", gpu_cmd_flush_caches(3, 3, 2))
    assert gpu.read("GPU_IRQ_RAWSTAT") & CLEAN_CACHES_COMPLETED
    assert gpu.read("LATEST_FLUSH_ID") not in (0, before)


def test_soft_reset_keeps_masks_and_drops_state(gpu):
    gpu.write("GPU_IRQ_MASK", 0x20103)
    gpu.write("JOB_IRQ_MASK", 0xFFFFFFFF)
    gpu.write("L2_PWRON", 1)
    gpu.write("JOB_IRQ_RAWSTAT", 1)
    gpu.write("GPU_COMMAND", 0x101)
    assert gpu.read("GPU_IRQ_MASK") == 0x20103 and gpu.read("JOB_IRQ_MASK") == 0xFFFFFFFF
    assert gpu.read("L2_READY") == 0 and gpu.read("JOB_IRQ_RAWSTAT") == 0
    assert gpu.read("GPU_IRQ_RAWSTAT") & RESET_COMPLETED


def test_timestamp_and_cycle_counter_follow_the_clock(gpu):
    t0, c0 = gpu.read("TIMESTAMP"), gpu.read("CYCLE_COUNT")
    gpu.clock.advance(1_000_000)  # 1 ms
    assert gpu.read("TIMESTAMP") - t0 == 62_500
    assert gpu.read("CYCLE_COUNT") - c0 == 800_000
    gpu.write("TIMESTAMP_OFFSET", 1000)
    assert gpu.read("TIMESTAMP") - t0 == 63_500


def test_misuse_is_logged_with_the_register_name(gpu, caplog):
    with caplog.at_level(logging.WARNING, logger="mali.regs"):
        gpu.write("GPU_ID", 1)
        gpu.dev.bar_read(0, gpu.off("GPU_COMMAND"), 4)
        gpu.dev.bar_write(0, 0x3FC, 4, 5)
        gpu.write("GPU_COMMAND", 0xEE)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "read-only GPU_ID" in text
    assert "write-only GPU_COMMAND" in text
    assert "unmapped offset 0x003fc" in text
    assert "unsupported GPU_COMMAND 0x000000ee" in text
    assert gpu.read("GPU_ID") == 0xA8670005
