"""What the three trace-reader harnesses share: a real trace to start from, and the path a
file takes through `mali-vdev trace show/stats` (read, decode every event, format, count)."""

from __future__ import annotations

import functools
import io

from mali_trace import binary, jsonl, mmiotrace
from mali_trace.analysis import show, stats
from mali_trace.formats import TraceFormatError, write
from mali_trace.header import TraceHeader

from .harness import Finding, mutations, watched

# The errors a reader may answer a bad file with: what the CLI reports as "cannot read".
FORMAT_ERRORS = (binary.BinaryFormatError, jsonl.JsonlFormatError, mmiotrace.MmiotraceFormatError, TraceFormatError)
# A trace of N bytes holds at most this many events per byte (an mmiotrace line "R 1 0 1 0 0\n" is 12).
MIN_BYTES_PER_EVENT = {"binary": binary.RECORD_SIZE, "jsonl": 8, "mmiotrace": 8}


@functools.lru_cache(maxsize=1)
def real_events() -> tuple[TraceHeader, tuple]:
    """The events of a real run: the firmware boot and a job through the driver model."""
    from mali_trace import RingBuffer
    from tests.driver_model import Gpu, Group, probe_and_boot

    gpu = Gpu()
    try:
        ring = RingBuffer(1 << 12)
        ring.attach(gpu.dev.events)
        d = probe_and_boot(gpu)
        g = Group(gpu, d, slot=0)
        g.submit(g.store_job(0xC0DE))
        g.run()
        ring.detach()
        return TraceHeader.for_device(gpu.dev, source="fuzz seed"), tuple(ring.events())
    finally:
        gpu.close()


def encoded(fmt: str, n_events: int | None = None, **options) -> bytes:
    header, events = real_events()
    events = events if n_events is None else events[:n_events]
    if fmt == "binary":
        f = io.BytesIO()
        write(f, fmt, header, events)
        return f.getvalue()
    s = io.StringIO()
    write(s, fmt, header, events, **options)
    return s.getvalue().encode()


def read(fmt: str, data: bytes):
    """Header, events and warnings of `data` as `open_trace` reads a file of `fmt`."""
    warnings: list = []
    f = io.BytesIO(data)
    if fmt == "binary":
        header, rsize, rest = binary.read_header(f)
        return header, list(binary.iter_records(f, rsize, rest, warnings)), warnings
    text = io.TextIOWrapper(f, encoding="utf-8", errors="replace")
    header, events = (jsonl.read if fmt == "jsonl" else mmiotrace.read)(text, warnings)
    return header, list(events), warnings


def check_reader(fmt: str, data: bytes) -> None:
    """Read `data`, then decode and format every event and count them as the CLI does."""
    try:
        header, events, _ = read(fmt, data)
    except FORMAT_ERRORS:
        return
    bound = len(data) // MIN_BYTES_PER_EVENT[fmt] + 1
    if len(events) > bound:
        raise Finding(f"{len(events)} events out of {len(data)} bytes (bound {bound})")
    try:
        for _ in show(events, header):
            pass
        stats(events, header)
    except FORMAT_ERRORS:
        return  # e.g. a header naming a GPU we do not know: the CLI says so


def reader_harness(fmt: str):
    """`one_input` and `seeds` of the harness of one trace reader."""
    @watched
    def one_input(data: bytes) -> None:
        check_reader(fmt, data)

    def seeds() -> list[bytes]:
        base = [encoded(fmt), encoded(fmt, 8), encoded(fmt, 0)]
        return base + mutations(base, 40, seed=1)
    return one_input, seeds
