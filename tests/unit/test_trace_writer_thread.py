"""The trace writer's file I/O stays off the MMIO path: a stalled file never stalls a register
access, and the trace is still complete once the file drains."""

from __future__ import annotations

import os
import threading

from mali_base.events import Event, Kind
from mali_trace import TraceHeader, TraceWriter, load
from mali_trace import binary as B
from tests.driver_model import Gpu

READS = 4000     # 4000 * 44 bytes: more than a pipe buffer holds


def _drain(fd: int, out: bytearray, go: threading.Event) -> None:
    go.wait()
    os.set_blocking(fd, True)
    while chunk := os.read(fd, 1 << 16):
        out.extend(chunk)


def test_a_blocked_trace_file_does_not_block_register_reads(tmp_path):
    fifo = str(tmp_path / "stalled.mtrace")
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader that reads nothing until `go`
    gpu = Gpu()
    w = TraceWriter.for_device(gpu.dev, fifo, flush_bytes=44 * 8, flush_interval=None)
    data, go = bytearray(), threading.Event()
    reader = threading.Thread(target=_drain, args=(rfd, data, go), daemon=True)
    reader.start()
    done = threading.Event()

    def reads():
        for _ in range(READS):
            gpu.read("GPU_ID")
        done.set()

    t = threading.Thread(target=reads, daemon=True)
    t.start()
    try:
        # The pipe fills after ~1500 events and the writer thread blocks in write(); the reads
        # (each emitting an event under device.lock) must go on regardless.
        assert done.wait(10), "register reads blocked behind the trace file's write"
        assert w.dropped_bytes == 0
    finally:
        go.set()
        w.close()                          # drains everything queued into the pipe
        reader.join(10)
        os.close(rfd)
        gpu.close()
    out = tmp_path / "copy.mtrace"
    out.write_bytes(bytes(data))
    reads_seen = [e for e in load(str(out)).events if e.kind == Kind.REG_READ and e.addr == 0]
    assert len(reads_seen) == READS        # complete: nothing dropped, nothing reordered away
    assert len(data) == len(B.header_bytes(w.header)) + 44 * w.records


class _StalledFile:
    """A file whose write waits for `release`."""

    def __init__(self, release: threading.Event):
        self.release, self.data = release, bytearray()

    def write(self, b) -> int:
        self.release.wait()
        self.data.extend(b)
        return len(b)

    def close(self) -> None:
        pass


def test_chunks_beyond_the_bound_are_dropped_and_counted(tmp_path):
    release = threading.Event()
    w = TraceWriter(str(tmp_path / "x.mtrace"), TraceHeader(), flush_bytes=44, flush_interval=None,
                    max_pending=44 * 4)
    w._file.close()
    w._file = stalled = _StalledFile(release)
    for seq in range(1, 101):
        w.sink(Event(seq, seq, Kind.REG_READ, addr=0, value=seq, width=4))   # never blocks
    assert w.dropped_bytes > 0 and w.dropped_bytes % 44 == 0
    release.set()
    w.close()
    kept = (len(stalled.data) - w._header_size) // 44
    assert kept == w.records and kept + w.dropped_bytes // 44 == 100
