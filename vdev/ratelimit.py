"""A rate limit for log lines a peer can provoke at will (bad accesses, full eventfds): a few
lines per interval get through, the rest are counted and summarised ("... and 131,071 more")
in the next line let through or by `flush()`, so a flood costs bounded log and time."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, burst: int = 10, interval: float = 1.0, clock=time.monotonic):
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._start = float("-inf")
        self._count = 0
        self._suppressed = 0   # in the current window, not yet summarised
        self._level = logging.WARNING
        self.suppressed_total = 0

    def log(self, level: int, msg: str, *args) -> bool:
        """Log `msg % args` unless the burst is used up; True if it was logged."""
        now = self._clock()
        with self._lock:
            if now - self._start >= self.interval:
                summary, self._suppressed = self._suppressed, 0
                self._start, self._count = now, 0
            else:
                summary = 0
            if self._count >= self.burst:
                self._suppressed += 1
                self.suppressed_total += 1
                self._level = level
                return False
            self._count += 1
        if summary:
            self._summarise(level, summary)
        self.logger.log(level, msg, *args)
        return True

    def warning(self, msg: str, *args) -> bool:
        return self.log(logging.WARNING, msg, *args)

    def flush(self) -> None:
        """Summarise what was suppressed now (at the end of a burst the caller knows of)."""
        with self._lock:
            summary, self._suppressed = self._suppressed, 0
        if summary:
            self._summarise(self._level, summary)

    def _summarise(self, level: int, n: int) -> None:
        self.logger.log(level, "... and %s more", f"{n:,}")
