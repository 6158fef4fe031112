"""Tracing overhead: a boot plus 1,000 jobs through the driver model, untraced and traced.

The same run as the interpreter benchmark's job loop (panthor's wrapper around a user stream
that stores a value, the IRQ acknowledged after every job), preceded by a probe-like boot.
Traced, every event goes through the event bus into a binary TraceWriter on a temporary file
(the `serve --trace` default), or into a RingBuffer. Best of several rounds each; the issue's
target is a slowdown under 25% for the binary writer.
"""

from __future__ import annotations

import os
import tempfile
import time

from mali_trace import RingBuffer, TraceWriter
from tests.driver_model import Gpu, Group, probe_and_boot

JOBS = 1000
ROUNDS = 5


def _noop(ev) -> None:
    pass


def _run(sink: str | None, path: str) -> tuple[float, int]:
    """Seconds for boot + JOBS jobs, and the number of events traced."""
    gpu = Gpu()
    tracer = None
    if sink == "binary":
        tracer = TraceWriter.for_device(gpu.dev, path, "binary")
    elif sink == "ring":
        tracer = RingBuffer(1 << 16)
        tracer.attach(gpu.dev.events)
    elif sink == "bus":  # the event bus alone: Event objects built and handed to a no-op sink
        gpu.dev.events.attach(_noop)
    t0 = time.perf_counter()
    d = probe_and_boot(gpu)
    g = Group(gpu, d)
    d.ack_job_irq()
    wrapper = g.store_job()
    for _ in range(JOBS):
        g.submit(wrapper)
        g.run()
        d.ack_job_irq()
    events = 0
    if sink == "binary":
        tracer.close()   # the flush of the tail belongs to the traced run
        events = tracer.records
    elif sink == "ring":
        tracer.detach()
        events = tracer.total
    dt = time.perf_counter() - t0
    assert g.sync() == JOBS
    gpu.close()
    return dt, events


def overhead() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.mtrace")
        best = {"off": float("inf"), "bus": float("inf"), "binary": float("inf"), "ring": float("inf")}
        events = 0
        _run(None, path)  # warm-up (imports, caches)
        for _ in range(ROUNDS):  # interleaved, so drifts in machine load hit every variant alike
            for sink in best:
                dt, n = _run(None if sink == "off" else sink, path)
                best[sink] = min(best[sink], dt)
                events = max(events, n)
    return {**best, "events": events}


def main() -> None:
    r = overhead()
    off, bus, on, ring = r["off"], r["bus"], r["binary"], r["ring"]
    print(f"tracing: boot + {JOBS} jobs through the driver model, best of {ROUNDS}")
    print(f"  untraced                        {off * 1e3:10.1f} ms")
    print(f"  event bus, no-op sink           {bus * 1e3:10.1f} ms          ratio {bus / off:5.2f}  "
          f"(the cost of building events)")
    print(f"  binary TraceWriter (file)       {on * 1e3:10.1f} ms          ratio {on / off:5.2f}  "
          f"({(on / off - 1) * 100:+.0f}%, target < +25%)")
    print(f"  RingBuffer (64k events)         {ring * 1e3:10.1f} ms          ratio {ring / off:5.2f}")
    print(f"  events traced                   {r['events']:10d}            "
          f"({(on - off) / max(r['events'], 1) * 1e9:6.0f} ns each, bus + sink)")


if __name__ == "__main__":
    main()
