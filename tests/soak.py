"""Soak bookkeeping: a process's RSS, open fds and threads sampled from /proc, and the check
that they stay flat after warm-up (a leak per job or per connection shows as growth)."""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Sample:
    t: float
    rss_kb: int
    fds: int
    threads: int
    work: int = 0   # jobs (or whatever the soak counts) done when sampled


def sample(pid: int, work: int = 0) -> Sample:
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return Sample(time.monotonic(), rss, len(os.listdir(f"/proc/{pid}/fd")), threads, work)


@dataclass
class Sampler:
    """Samples `pid` every `interval` seconds in a thread until stop()."""
    pid: int
    interval: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    work: int = 0   # set by the soak as it goes

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="soak-sampler")

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.samples.append(sample(self.pid, self.work))
            except (FileNotFoundError, ProcessLookupError):
                return   # the process is gone: the soak's own checks say why
            if self._stop.wait(self.interval):
                return

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(10)
        self.samples.append(sample(self.pid, self.work))
        return self.samples


def growth(samples: list[Sample], warmup: float = 0.25) -> dict:
    """RSS growth (median of the last fifth against the median of the fifth after warm-up),
    fd and thread growth (max after warm-up against the first sample after it)."""
    if len(samples) < 10:
        raise ValueError(f"{len(samples)} samples are too few to judge a trend")
    steady = samples[int(len(samples) * warmup):]
    k = max(2, len(steady) // 5)
    base = statistics.median(s.rss_kb for s in steady[:k])
    end = statistics.median(s.rss_kb for s in steady[-k:])
    return {"samples": len(samples), "rss_kb_start": samples[0].rss_kb, "rss_kb_base": int(base),
            "rss_kb_end": int(end), "rss_growth": (end - base) / base,
            "fds_base": steady[0].fds, "fds_max": max(s.fds for s in steady),
            "threads_base": steady[0].threads, "threads_max": max(s.threads for s in steady),
            "work": samples[-1].work, "seconds": round(samples[-1].t - samples[0].t, 1)}


def assert_flat(samples: list[Sample], rss_tolerance: float = 0.03, slack: int = 2) -> dict:
    """RSS within `rss_tolerance` after warm-up; fds and threads within `slack` of their
    steady value (a connection being replaced, a rate-limit timer), never climbing."""
    g = growth(samples)
    assert g["rss_growth"] < rss_tolerance, f"RSS grew {g['rss_growth']:.1%} after warm-up: {g}"
    assert g["fds_max"] <= g["fds_base"] + slack, f"open fds grew: {g}"
    assert g["threads_max"] <= g["threads_base"] + slack, f"threads grew: {g}"
    return g


class ServerSampling:
    """`boot(watch=...)` callbacks that sample the boot's server from the guest output line
    matching `start` to the one matching `end` (e.g. the start and the status of a
    `panthor-client jobs` run); `samples(result)` afterwards."""

    def __init__(self, start: str, end: str, interval: float = 0.1, limit_s: float = 3600.0):
        self.start, self.end, self.interval, self.limit_s = start, end, interval, limit_s
        self._done = threading.Event()

    def watch(self) -> dict:
        return {self.start: self._sample, self.end: lambda live, line: self._done.set()}

    def _sample(self, live, line) -> list[Sample]:
        sampler = Sampler(live.server_pid, self.interval).start()
        self._done.wait(self.limit_s)
        return sampler.stop()

    def samples(self, result) -> list[Sample]:
        w = result.watched.get(self.start)
        assert w is not None, f"no guest line matched {self.start!r}"
        if w.error is not None:
            raise w.error
        assert self.end in result.watched, f"no guest line matched {self.end!r}"
        return w.value
