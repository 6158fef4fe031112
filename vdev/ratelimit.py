"""A rate limit for log lines a peer can provoke at will (bad accesses, full eventfds): a few
lines per interval get through, the rest are counted and summarised ("... and 131,071 more").

The summary comes with the next line let through, or — when the flood simply stops — from a
timer armed at the first suppressed line of a window, which fires when the window ends; `flush()`
summarises at once (a disconnect, a reset) and every limiter is flushed at interpreter exit.
So the count of what was dropped always reaches the log, and a flood costs bounded log and time.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref

_live: weakref.WeakSet[RateLimitedLog] = weakref.WeakSet()


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
        self._timer: threading.Timer | None = None
        self.suppressed_total = 0
        _live.add(self)

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
                if self._timer is None:
                    self._arm(self._start + self.interval - now)
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

    def _arm(self, delay: float) -> None:
        # One timer per limiter at a time, armed only while lines are being dropped: a quiet
        # limiter costs no thread. Daemon, so a pending summary never holds the process up.
        self._timer = threading.Timer(max(delay, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.name = f"ratelimit-{self.logger.name}"
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self._timer = None
            summary, self._suppressed = self._suppressed, 0
        if summary:
            self._summarise(self._level, summary)

    def _summarise(self, level: int, n: int) -> None:
        self.logger.log(level, "... and %s more", f"{n:,}")


@atexit.register
def _flush_all() -> None:
    for limiter in list(_live):
        limiter.flush()
