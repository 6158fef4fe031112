"""Where a vfio-user server's time goes, counted on its message path at the cost of two clock
reads per message: how many messages, the time from a message's arrival to its reply sent,
and how long after an interrupt's eventfd signal the client's next message came (the
interrupt's way through the client -- for QEMU with a TCG guest: QEMU's event loop, the
interrupt controller, the vCPU waking and the guest's handler up to its first register
access). `mali-vdev status` shows them; `make bench` divides them by the jobs a guest ran."""

from __future__ import annotations

import time
from collections import deque

SAMPLES = 4096  # the most recent deliveries kept for percentiles


class ServerTiming:
    def __init__(self) -> None:
        self.messages = 0
        self.busy_ns = 0
        self.irq_signals = 0
        self._signal_ns = 0            # the first signal not yet followed by a message
        self.irq_delivery_ns: deque[int] = deque(maxlen=SAMPLES)

    def signalled(self) -> None:
        """An interrupt eventfd was written (any thread)."""
        self.irq_signals += 1
        if not self._signal_ns:
            self._signal_ns = time.monotonic_ns()

    def arrived(self, now_ns: int) -> None:
        """The client's socket became readable at `now_ns`."""
        if self._signal_ns:
            self.irq_delivery_ns.append(now_ns - self._signal_ns)
            self._signal_ns = 0

    def handled(self, since_ns: int, messages: int) -> None:
        self.messages += messages
        self.busy_ns += time.monotonic_ns() - since_ns

    def snapshot(self) -> dict:
        d = sorted(self.irq_delivery_ns)
        pct = (lambda q: round(d[min(len(d) - 1, int(q * len(d)))] / 1000, 1)) if d else (lambda q: None)
        return {"messages": self.messages, "busy_us": self.busy_ns // 1000, "irq_signals": self.irq_signals,
                "irq_delivery_us": {"p50": pct(0.5), "p90": pct(0.9), "samples": len(d)}}
