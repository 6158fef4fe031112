"""GPU_CONTROL: power domains, GPU_COMMAND (reset, cache flush, fault clear), the counters.

Power transitions complete instantly (PWRTRANS stays 0, READY follows PWRON/PWROFF) and
report POWER_CHANGED(_ALL). Cache flushes complete instantly: nothing is cached here, but
LATEST_FLUSH_ID moves on, as the flush-reduction protocol expects.
"""

from __future__ import annotations

import logging
from typing import Callable

from mali_base.clock import Clock
from mali_base.events import EventBus, Kind
from mali_base.regfile import RegisterFile
from mali_regs.enums import GPU_COMMAND, RESET_MODE, RESET_MODES
from mali_regs.mmio import GPU_IRQ_BITS

from .irq import IrqBlock

log = logging.getLogger("mali.gpu")

GPU_IRQ = {name: 1 << bit for bit, name in GPU_IRQ_BITS.items()}
POWER_DOMAINS = ("SHADER", "TILER", "L2", "STACK")

CMD_NOP, CMD_RESET, CMD_TIME, CMD_FLUSH_CACHES, CMD_CLEAR_FAULT = (
    GPU_COMMAND[n] for n in ("NOP", "RESET", "TIME", "FLUSH_CACHES", "CLEAR_FAULT"))
RESET_HARD = RESET_MODE["HARD_RESET"]


class GpuControl:
    """`reset(hard)` resets the whole GPU and `flushed()` drops what caches translations:
    both are the device's, which knows every block."""

    def __init__(self, regs: RegisterFile, gpu_irq: IrqBlock, events: EventBus, clock: Clock,
                 reset: Callable[[bool], None], flushed: Callable[[], None]):
        self.regs = regs
        self.irq = gpu_irq
        self.events = events
        self.clock = clock
        self._gpu_reset = reset
        self._flushed = flushed
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
        return (self.clock.timestamp() + self.regs["TIMESTAMP_OFFSET"]) & (1 << 64) - 1

    def cycles(self) -> int:
        return self.clock.cycles()

    def _power(self, dom: str, on: bool):
        ready = f"{dom}_READY"
        present = f"{dom}_PRESENT"

        def write(reg, value, mask):
            cores = value & mask
            if cores & ~self.regs[present]:
                self.regs.report_misuse("%s of cores 0x%x not in %s 0x%x", reg.name, cores, present, self.regs[present])
            cores &= self.regs[present]
            before = self.regs[ready]
            self.regs[ready] = before | cores if on else before & ~cores
            if self.regs[ready] != before:
                log.info("%s %s 0x%x -> %s 0x%x", dom, "on" if on else "off", cores, ready, self.regs[ready])
                self.irq.raise_bits(GPU_IRQ["POWER_CHANGED"] | GPU_IRQ["POWER_CHANGED_ALL"])
        return write

    def _command(self, reg, value, mask):
        cmd = value & 0xFF
        # Flushes come with every VM update: keep them out of INFO; resets and the rest stay.
        log.log(logging.DEBUG if cmd == CMD_FLUSH_CACHES else logging.INFO, "%s",
                self.regs.regmap.decode(reg.offset, value))
        if self.events.active:
            self.events.emit(Kind.GPU_COMMAND, value=value)
        if cmd == CMD_NOP:
            return
        if cmd == CMD_RESET:
            mode = (value >> 8) & 0xF
            if mode not in RESET_MODES:
                self.regs.report_misuse("GPU_COMMAND RESET with unknown mode %d", mode)
                return
            self.resets += 1
            self._gpu_reset(mode == RESET_HARD)
            self.irq.raise_bits(GPU_IRQ["RESET_COMPLETED"])
        elif cmd == CMD_FLUSH_CACHES:
            self.flushes += 1
            self.flush_id = (self.flush_id + 1) & 0xFFFFFF or 1  # 0 means "always flush"
            self._flushed()
            self.irq.raise_bits(GPU_IRQ["CLEAN_CACHES_COMPLETED"])
        elif cmd == CMD_CLEAR_FAULT:
            self.regs["GPU_FAULTSTATUS"] = 0
            self.regs["GPU_FAULTADDRESS"] = 0
        elif cmd == CMD_TIME:
            pass  # cycle counter and timestamp always run here
        else:
            self.regs.report_misuse("unsupported GPU_COMMAND 0x%08x", value)

    def reset(self) -> None:
        for dom in POWER_DOMAINS:
            if f"{dom}_READY" in self.regs.regmap:
                self.regs[f"{dom}_READY"] = 0
