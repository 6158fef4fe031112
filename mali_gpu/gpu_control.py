"""GPU_CONTROL: power domains, GPU_COMMAND (reset, cache flush, fault clear), the counters.

Power transitions complete instantly (PWRTRANS stays 0, READY follows PWRON/PWROFF) and
report POWER_CHANGED(_ALL). Cache flushes complete instantly: nothing is cached here, but
LATEST_FLUSH_ID moves on, as the flush-reduction protocol expects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mali_regs.mmio import GPU_IRQ_BITS

from .events import Kind

if TYPE_CHECKING:
    from .device import MaliDevice

log = logging.getLogger("mali.gpu")

GPU_IRQ = {name: 1 << bit for bit, name in GPU_IRQ_BITS.items()}
POWER_DOMAINS = ("SHADER", "TILER", "L2", "STACK")

CMD_NOP, CMD_RESET, CMD_TIME, CMD_FLUSH_CACHES, CMD_CLEAR_FAULT = 0, 1, 3, 4, 7
RESET_FAST, RESET_SOFT, RESET_HARD = 0, 1, 2


class GpuControl:
    def __init__(self, dev: "MaliDevice"):
        self.dev = dev
        regs = dev.regs
        self.regs = regs
        for dom in POWER_DOMAINS:
            if f"{dom}_PWRON" in regs.regmap:
                regs.on_write(f"{dom}_PWRON", self._power(dom, True))
                regs.on_write(f"{dom}_PWROFF", self._power(dom, False))
        regs.on_write("GPU_COMMAND", self._command)
        regs.on_read("TIMESTAMP", lambda r: self.timestamp())
        regs.on_read("CYCLE_COUNT", lambda r: self.cycles())
        self.flush_id = 1
        regs.on_read("LATEST_FLUSH_ID", lambda r: self.flush_id)
        self.flushes = 0
        self.resets = 0

    def timestamp(self) -> int:
        return (self.dev.clock.timestamp() + self.regs["TIMESTAMP_OFFSET"]) & (1 << 64) - 1

    def cycles(self) -> int:
        return self.dev.clock.cycles()

    def _power(self, dom: str, on: bool):
        ready = f"{dom}_READY"
        present = f"{dom}_PRESENT"

        def write(reg, value, mask):
            cores = value & mask
            if cores & ~self.regs[present]:
                self.regs._misuse("%s of cores 0x%x not in %s 0x%x", reg.name, cores, present, self.regs[present])
            cores &= self.regs[present]
            before = self.regs[ready]
            self.regs[ready] = before | cores if on else before & ~cores
            if self.regs[ready] != before:
                log.info("%s %s 0x%x -> %s 0x%x", dom, "on" if on else "off", cores, ready, self.regs[ready])
                self.dev.gpu_irq.raise_bits(GPU_IRQ["POWER_CHANGED"] | GPU_IRQ["POWER_CHANGED_ALL"])
        return write

    def _command(self, reg, value, mask):
        cmd = value & 0xFF
        # Flushes come with every VM update: keep them out of INFO; resets and the rest stay.
        log.log(logging.DEBUG if cmd == CMD_FLUSH_CACHES else logging.INFO, "%s",
                self.regs.regmap.decode(reg.offset, value))
        if self.dev.events.active:
            self.dev.events.emit(Kind.GPU_COMMAND, value=value)
        if cmd == CMD_NOP:
            return
        if cmd == CMD_RESET:
            mode = (value >> 8) & 0xF
            if mode not in (RESET_FAST, RESET_SOFT, RESET_HARD):
                self.regs._misuse("GPU_COMMAND RESET with unknown mode %d", mode)
                return
            self.resets += 1
            self.dev.gpu_reset(hard=mode == RESET_HARD)
            self.dev.gpu_irq.raise_bits(GPU_IRQ["RESET_COMPLETED"])
        elif cmd == CMD_FLUSH_CACHES:
            self.flushes += 1
            self.flush_id = (self.flush_id + 1) & 0xFFFFFF or 1  # 0 means "always flush"
            self.dev.cache_flushed()
            self.dev.gpu_irq.raise_bits(GPU_IRQ["CLEAN_CACHES_COMPLETED"])
        elif cmd == CMD_CLEAR_FAULT:
            self.regs["GPU_FAULTSTATUS"] = 0
            self.regs["GPU_FAULTADDRESS"] = 0
        elif cmd == CMD_TIME:
            pass  # cycle counter and timestamp always run here
        else:
            self.regs._misuse("unsupported GPU_COMMAND 0x%08x", value)

    def reset(self) -> None:
        for dom in POWER_DOMAINS:
            if f"{dom}_READY" in self.regs.regmap:
                self.regs[f"{dom}_READY"] = 0
