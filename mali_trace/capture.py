"""Capture: sinks on the device's event bus (mali_base.events).

`TraceWriter` streams every event to a file in one of the formats. Sinks run inside the bus's
`emit`, on whichever thread emitted and usually under `device.lock`, so the sink only packs
or encodes the event into a buffer; a full buffer (or, every `flush_interval` seconds, a
partial one, so a live file can be read) is handed as one chunk to the writer's own thread,
the only one that touches the file. No file I/O runs on the MMIO path.

Backpressure policy: none on the device. Chunks waiting for the writer thread are bounded by
`max_pending` bytes; a chunk that would exceed it is dropped and counted (`dropped_bytes`,
logged at close), so a stalled disk never stalls the guest. In a normal run nothing is
dropped: the bound is 64 chunks, and `close()` drains every chunk before it returns.

`RingBuffer` keeps the last `capacity` events in a preallocated buffer of binary records:
memory stays at `capacity * 44` bytes however long the run; `events()` and `save()` give them
back.

Sinks never raise into the device.
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
from typing import Iterator

from mali_base.events import Event, Kind

from . import binary
from .formats import FORMATS, TraceFormatError, encoder
from .formats import write as write_events
from .header import TraceHeader

log = logging.getLogger("mali.trace")
CS_INSTR = int(Kind.CS_INSTR)

DEFAULT_FLUSH_BYTES = 1 << 20
_STOP = object()    # writer thread: exit (after everything queued before it)


class _BusSink:
    """Attaching `self.sink` to an event bus for the kinds in `self.kinds` (None: all), and
    detaching it (idempotent). Leaving CS_INSTR out keeps the interpreter's fast path."""

    _bus = None
    kinds = None

    def attach(self, bus) -> None:
        self._bus = bus
        bus.attach(self.sink, self.kinds)

    def detach(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            try:
                bus.detach(self.sink)
            except ValueError:
                pass


class TraceWriter(_BusSink):
    """A streaming trace file. Use as a sink: `writer.attach(device.events)` ... `close()`."""

    def __init__(self, path: str, header: TraceHeader, fmt: str = "binary", flush_bytes: int = DEFAULT_FLUSH_BYTES,
                 flush_interval: float | None = 1.0, max_pending: int | None = None, kinds=None, **options):
        if fmt not in FORMATS:
            raise TraceFormatError(f"unknown trace format {fmt!r}; formats: {', '.join(FORMATS)}")
        self.path = str(path)
        self.header = header
        self.format = fmt
        self.kinds = None if kinds is None else frozenset(Kind(k) for k in kinds)
        self.bytes = 0              # written to the file so far (by the writer thread)
        self.dropped_bytes = 0      # chunks dropped because the writer thread fell behind
        self._enc = encoder(fmt, header, **options)
        self._file = open(self.path, "wb", buffering=0)   # whole chunks per write: a live file holds whole records
        self._buf = bytearray()
        self._flush_bytes = flush_bytes
        self._max_pending = max_pending if max_pending is not None else 64 * max(flush_bytes, 1 << 16)
        self._pending = 0           # bytes queued for the writer thread
        self._handed = 0            # bytes taken from the buffer so far (queued, written or dropped)
        self._take_lock = threading.Lock()   # held for a buffer copy, never for I/O
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._bus = None
        self._write(self._enc.begin())
        self._header_size = len(self._buf)
        self.sink = self._binary_sink() if fmt == "binary" else self._text_sink()
        self._thread = threading.Thread(target=self._writer, args=(flush_interval or None,), daemon=True,
                                        name="trace-writer")
        self._thread.start()

    @classmethod
    def for_device(cls, device, path: str, fmt: str = "binary", source: str = "", attach: bool = True, **kw):
        """A writer for `device` (header from its profile and bus), attached to its bus."""
        w = cls(path, TraceHeader.for_device(device, source=source), fmt, **kw)
        if attach:
            w.attach(device.events)
        return w

    # -- sinks (called by EventBus.emit) -------------------------------------------------

    def _binary_sink(self):
        buf = self._buf
        extend = buf.extend
        pack = binary.RECORD_STRUCT.pack
        limit = self._flush_bytes
        hand_off = self._hand_off
        slow = binary.pack

        def sink(ev: Event) -> None:
            try:
                extend(pack(ev.seq, ev.t_ns, ev.kind, ev.width, ev.slot, ev.stream, ev.addr, ev.value, ev.aux))
            except struct.error:
                extend(slow(ev))
            if len(buf) >= limit:
                hand_off()

        def instrs(seq0: int, t_ns: int, slot: int, stream: int, flat: list) -> None:
            seq = seq0
            for i in range(0, len(flat), 2):  # no Event objects: a run of CS_INSTR records
                seq += 1
                extend(pack(seq, t_ns, CS_INSTR, 0, slot, stream, flat[i], flat[i + 1], 0))
            if len(buf) >= limit:
                hand_off()
        sink.instrs = instrs
        return sink

    def _text_sink(self):
        buf = self._buf
        extend = buf.extend
        encode = self._enc.encode
        limit = self._flush_bytes
        hand_off = self._hand_off

        def sink(ev: Event) -> None:
            try:
                s = encode(ev)
            except Exception:  # a decoding bug must not break the device
                log.exception("trace: cannot encode %r", ev)
                return
            if s:
                extend(s.encode())
            if len(buf) >= limit:
                hand_off()
        return sink

    def __call__(self, ev: Event) -> None:
        self.sink(ev)

    @property
    def records(self) -> int | None:
        """Events written, queued or buffered so far, dropped ones not counted (binary format only)."""
        if self.format != "binary":
            return None
        kept = self._handed - self.dropped_bytes + len(self._buf) - self._header_size
        return kept // binary.RECORD_SIZE

    # -- buffer -> writer thread ---------------------------------------------------------

    def _write(self, data) -> None:
        if isinstance(data, str):
            data = data.encode()
        if data:
            self._buf.extend(data)

    def _hand_off(self) -> None:
        """Move the buffer (whole events: only sinks append) to the writer thread's queue."""
        with self._take_lock:   # one taker at a time, so chunks queue in buffer order
            buf = self._buf
            n = len(buf)
            if not n:
                return
            data = bytes(buf[:n])
            del buf[:n]          # appends made meanwhile (other threads) stay
            self._handed += n
            if self._pending and self._pending + n > self._max_pending:   # one chunk always fits: the header
                self.dropped_bytes += n
                return
            self._pending += n
        self._queue.put(data)

    def _writer(self, interval: float | None) -> None:
        """The only thread that writes the file: chunks in order, a partial buffer every period."""
        get, failed = self._queue.get, False
        while True:
            try:
                item = get(timeout=interval)
            except queue.Empty:
                self._hand_off()
                continue
            if item is _STOP:
                return
            if isinstance(item, threading.Event):   # flush(): everything before it is written
                item.set()
                continue
            with self._take_lock:
                self._pending -= len(item)
            if failed:
                self.dropped_bytes += len(item)
                continue
            try:
                view = memoryview(item)
                while view:
                    view = view[self._file.write(view):]
                self.bytes += len(item)
            except (OSError, ValueError) as e:
                log.error("trace: cannot write %s: %s (dropping the rest)", self.path, e)
                failed = True
                self.dropped_bytes += len(item)

    def flush(self, timeout: float | None = None) -> bool:
        """Hand the buffer to the writer thread and wait until it has written everything so far.
        Never call it under device.lock: it waits for file I/O."""
        if not self._thread.is_alive():
            return True
        self._hand_off()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self) -> None:
        """Detach, write the format's trailer, drain the writer thread and close; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.detach()
        try:
            self._write(self._enc.end())
        except Exception:
            log.exception("trace: cannot finish %s", self.path)
        self._hand_off()
        self._queue.put(_STOP)
        self._thread.join()      # the trace stays complete: every queued chunk is written first
        f, self._file = self._file, None
        if f is not None:
            f.close()
        if self.dropped_bytes:
            log.error("trace: %s: dropped %d bytes the writer thread could not keep up with",
                      self.path, self.dropped_bytes)
        log.info("trace: %s written (%s, %d bytes)", self.path, self.format, self.bytes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RingBuffer(_BusSink):
    """The last `capacity` events, as binary records in a preallocated buffer."""

    def __init__(self, capacity: int = 1 << 16, kinds=None):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.kinds = None if kinds is None else frozenset(Kind(k) for k in kinds)
        size = binary.RECORD_SIZE
        self._buf = buf = bytearray(capacity * size)
        self._total = [0]
        total = self._total
        pack_into = binary.RECORD_STRUCT.pack_into
        slow = binary.record_values
        self._bus = None

        def sink(ev: Event) -> None:
            n = total[0]
            off = (n % capacity) * size
            try:
                pack_into(buf, off, ev.seq, ev.t_ns, ev.kind, ev.width, ev.slot, ev.stream, ev.addr, ev.value,
                          ev.aux)
            except struct.error:
                pack_into(buf, off, *slow(ev))
            total[0] = n + 1

        def instrs(seq0: int, t_ns: int, slot: int, stream: int, flat: list) -> None:
            n, seq = total[0], seq0
            for i in range(0, len(flat), 2):
                seq += 1
                pack_into(buf, (n % capacity) * size, seq, t_ns, CS_INSTR, 0, slot, stream, flat[i], flat[i + 1], 0)
                n += 1
            total[0] = n
        sink.instrs = instrs
        self.sink = sink

    def __call__(self, ev: Event) -> None:
        self.sink(ev)


    @property
    def total(self) -> int:
        """Events seen since creation."""
        return self._total[0]

    @property
    def dropped(self) -> int:
        """Events overwritten (seen but no longer held)."""
        return max(0, self._total[0] - self.capacity)

    def __len__(self) -> int:
        return min(self._total[0], self.capacity)

    def events(self) -> Iterator[Event]:
        """Held events, oldest first (a snapshot: detach first for an exact one)."""
        n = self._total[0]
        held = min(n, self.capacity)
        data = bytes(self._buf)
        size = binary.RECORD_SIZE
        unpack = binary.RECORD_STRUCT.unpack_from
        for i in range(n - held, n):
            seq, t_ns, kind, width, slot, stream, addr, value, aux = unpack(data, (i % self.capacity) * size)
            yield Event(seq, t_ns, Kind(kind), addr, value, width, slot, stream, aux)

    def save(self, path: str, header: TraceHeader, fmt: str = "binary", **options) -> int:
        return write_events(path, fmt, header, self.events(), **options)
