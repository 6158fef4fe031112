"""What every harness shares: a run of one input under watch, and the bounds it asserts.

A harness module defines `one_input(data: bytes) -> None` (raise on a broken invariant; the
input's own errors are caught inside) and `seeds() -> list[bytes]` (a deterministic starting
corpus built through the real encoders). Findings are raised as `Finding`, so libFuzzer (and
the seeded test) report them with the input that caused them.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterable

# A single input that runs longer than this has hung in all but name (libFuzzer's own
# -timeout catches a real hang in the long run; this is the bound the seeded pass checks).
INPUT_TIME_BOUND_S = 20.0
# Per-input output bounds: what a reader may produce per input byte.
MAX_INPUT = 1 << 16


class Finding(AssertionError):
    """A broken invariant: a bug to fix and a regression test to add."""


class _Watch(logging.Handler):
    """Catches what the code under test logs about its own bugs (the 'internal error' paths
    that contain an exception) while keeping log output off the fuzzer's terminal."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.exc_info or "internal error" in msg:
            self.bad.append(f"{record.name}: {msg}" + (f" ({record.exc_info[1]!r})" if record.exc_info else ""))


_watch = _Watch()


def quiet_logging() -> None:
    """Route every log record to the watch only (a fuzzer provokes misuse lines by the million)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_watch)
    root.setLevel(logging.WARNING)


def watched(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
    """`fn` with the invariants every harness shares: no internal error logged, no fd
    left open, bounded time."""

    def one_input(data: bytes) -> None:
        _watch.bad.clear()
        root = logging.getLogger()
        added = _watch not in root.handlers   # under libFuzzer it stays (quiet_logging)
        if added:
            root.addHandler(_watch)
        fds = _fd_count()
        start = time.monotonic()
        try:
            fn(data)
        finally:
            if added:
                root.removeHandler(_watch)
        took = time.monotonic() - start
        if _watch.bad:
            raise Finding("internal error logged: " + "; ".join(_watch.bad[:3]))
        if took > INPUT_TIME_BOUND_S:
            raise Finding(f"one input took {took:.1f} s")
        leaked = _fd_count() - fds
        if leaked > 0:
            raise Finding(f"{leaked} file descriptors left open")

    one_input.__name__ = fn.__name__
    one_input.__doc__ = fn.__doc__
    return one_input


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def mutations(seeds: Iterable[bytes], n: int, seed: int = 0) -> list[bytes]:
    """`n` deterministic mutants of `seeds` (byte flips, interesting values, cuts, splices,
    duplications): the seeded corpus of the test pass, as libFuzzer's mutators would start."""
    rng = random.Random(seed)
    pool = [bytes(s) for s in seeds]
    out = []
    for _ in range(n):
        b = bytearray(rng.choice(pool))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(6)
            if op == 0 and b:                       # flip a bit
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
            elif op == 1 and b:                     # an interesting byte
                b[rng.randrange(len(b))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF))
            elif op == 2 and len(b) > 1:            # cut
                i = rng.randrange(len(b))
                del b[i:i + rng.randint(1, max(1, len(b) // 4))]
            elif op == 3:                           # splice another seed in
                other = rng.choice(pool)
                i = rng.randrange(len(b) + 1)
                b[i:i] = other[rng.randrange(len(other) + 1):][:64]
            elif op == 4 and b:                     # duplicate a run
                i = rng.randrange(len(b))
                b[i:i] = b[i:i + rng.randint(1, 32)]
            elif op == 5 and len(b) >= 4:           # an interesting 32-bit word
                i = rng.randrange(len(b) - 3)
                b[i:i + 4] = rng.choice((0, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, len(b))).to_bytes(4, "little")
        out.append(bytes(b[:MAX_INPUT]))
    return out


def rng_for(data: bytes) -> random.Random:
    """A generator seeded by the input, for the harnesses whose input is a recipe."""
    return random.Random(data)
