"""The RAWSTAT/CLEAR/MASK/STATUS interrupt quadruples (GPU, JOB, MMU) and the line they drive.

STATUS = RAWSTAT & MASK; the shared, level-triggered line is high while any STATUS is
nonzero. RAWSTAT bits are set only by new events (or a write to RAWSTAT, which sets bits as
on hardware) and cleared by writing 1s to CLEAR — panthor's threaded handler spins if a bit
re-asserts without a new event.
"""

from __future__ import annotations

import logging
from typing import Callable

from mali_base.events import EventBus, Kind
from mali_base.regfile import RegisterFile

log = logging.getLogger("mali.irq")


class IrqBlock:
    def __init__(self, prefix: str, block_id: int, regs: RegisterFile, changed: Callable[[], None],
                 events: EventBus):
        self.prefix = prefix
        self.block_id = block_id
        self.events = events
        self.regs = regs
        self._changed = changed
        self._rawstat = f"{prefix}_RAWSTAT"
        self._mask = f"{prefix}_MASK"
        regs.on_write(f"{prefix}_RAWSTAT", lambda reg, v, m: self.raise_bits(v))
        regs.on_write(f"{prefix}_CLEAR", lambda reg, v, m: self.clear(v))
        regs.on_write(f"{prefix}_MASK", self._write_mask)
        regs.on_read(f"{prefix}_STATUS", lambda reg: self.status)

    @property
    def rawstat(self) -> int:
        return self.regs[self._rawstat]

    @property
    def mask(self) -> int:
        return self.regs[self._mask]

    @property
    def status(self) -> int:
        return self.regs[self._rawstat] & self.regs[self._mask]

    def raise_bits(self, bits: int) -> None:
        if bits & ~self.rawstat:
            self.regs[self._rawstat] = self.rawstat | bits
            if self.events.active:
                self.events.emit(Kind.IRQ_RAWSTAT, self.block_id, self.rawstat)
            self._changed()

    def clear(self, bits: int) -> None:
        if bits & self.rawstat:
            self.regs[self._rawstat] = self.rawstat & ~bits
            if self.events.active:
                self.events.emit(Kind.IRQ_RAWSTAT, self.block_id, self.rawstat)
            self._changed()

    def _write_mask(self, reg, value: int, mask: int) -> None:
        self.regs[self._mask] = value
        self._changed()

    def reset_rawstat(self) -> None:
        self.regs[self._rawstat] = 0
        self._changed()
