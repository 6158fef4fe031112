"""One time source for the GPU: timestamps, cycle counters and firmware timers.

Real time by default. The GPU TIMESTAMP ticks at the guest's architected counter frequency
(panthor reports CNTFRQ as the timestamp frequency to user space); CYCLE_COUNT ticks at the
core clock. Tests may substitute a manual clock.
"""

from __future__ import annotations

import time


class Clock:
    def __init__(self, timestamp_hz: int = 1_000_000_000, core_hz: int = 800_000_000):
        self.timestamp_hz = timestamp_hz
        self.core_hz = core_hz
        self._t0 = time.monotonic_ns()

    def now_ns(self) -> int:
        return time.monotonic_ns() - self._t0

    def timestamp(self) -> int:
        return self.now_ns() * self.timestamp_hz // 1_000_000_000

    def cycles(self) -> int:
        return self.now_ns() * self.core_hz // 1_000_000_000


class ManualClock(Clock):
    """A clock that moves only when told to (unit tests)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.ns = 0

    def now_ns(self) -> int:
        return self.ns

    def advance(self, ns: int) -> None:
        self.ns += ns
