"""Capture: sinks on the device's event bus (mali_base.events).

`TraceWriter` streams every event to a file in one of the formats, through a bounded
buffer flushed when it fills, every `flush_interval` seconds (so a live file can be read)
and on close. The binary format packs each event straight into the buffer (one
`struct.pack`, no per-event objects); the text formats go through their encoders.

`RingBuffer` keeps the last `capacity` events in a preallocated buffer of binary records:
memory stays at `capacity * 44` bytes however long the run; `events()` and `save()` give them
back.

Sinks run inside the bus's `emit`, on whichever thread emitted, one at a time; they never
raise into the device.
"""

from __future__ import annotations

import logging
import struct
import threading
from typing import Iterator

from mali_base.events import Event, Kind

from . import binary
from .formats import FORMATS, TraceFormatError, encoder
from .formats import write as write_events
from .header import TraceHeader

log = logging.getLogger("mali.trace")

DEFAULT_FLUSH_BYTES = 1 << 20


class _BusSink:
    """Attaching `self.sink` to an event bus, and detaching it (idempotent)."""

    _bus = None

    def attach(self, bus) -> None:
        self._bus = bus
        bus.attach(self.sink)

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
                 flush_interval: float | None = 1.0, **options):
        if fmt not in FORMATS:
            raise TraceFormatError(f"unknown trace format {fmt!r}; formats: {', '.join(FORMATS)}")
        self.path = str(path)
        self.header = header
        self.format = fmt
        self.bytes = 0          # written to the file so far
        self._enc = encoder(fmt, header, **options)
        self._text = fmt != "binary"
        self._file = open(self.path, "wb")
        self._buf = bytearray()
        self._flush_lock = threading.Lock()
        self._flush_bytes = flush_bytes
        self._closed = False
        self._bus = None
        self._write(self._enc.begin())
        self._header_size = len(self._buf)
        self.sink = self._binary_sink() if fmt == "binary" else self._text_sink()
        self._stop = threading.Event()
        self._timer = None
        if flush_interval:
            self._timer = threading.Thread(target=self._flusher, args=(flush_interval,), daemon=True,
                                           name="trace-flush")
            self._timer.start()

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
        flush = self.flush
        slow = binary.pack

        def sink(ev: Event) -> None:
            try:
                extend(pack(ev.seq, ev.t_ns, ev.kind, ev.width, ev.slot, ev.stream, ev.addr, ev.value, ev.aux))
            except struct.error:
                extend(slow(ev))
            if len(buf) >= limit:
                flush()
        return sink

    def _text_sink(self):
        buf = self._buf
        extend = buf.extend
        encode = self._enc.encode
        limit = self._flush_bytes
        flush = self.flush

        def sink(ev: Event) -> None:
            try:
                s = encode(ev)
            except Exception:  # a decoding bug must not break the device
                log.exception("trace: cannot encode %r", ev)
                return
            if s:
                extend(s.encode())
            if len(buf) >= limit:
                flush()
        return sink

    def __call__(self, ev: Event) -> None:
        self.sink(ev)

    @property
    def records(self) -> int | None:
        """Events written or buffered so far (binary format only)."""
        if self.format != "binary":
            return None
        return (self.bytes + len(self._buf) - self._header_size) // binary.RECORD_SIZE

    # -- bus -----------------------------------------------------------------------------


    # -- file ----------------------------------------------------------------------------

    def _write(self, data) -> None:
        if isinstance(data, str):
            data = data.encode()
        if data:
            self._buf.extend(data)

    def flush(self) -> None:
        """Write the buffered records (whole records only) and flush the file."""
        with self._flush_lock:
            if self._file is None:
                return
            buf = self._buf
            n = len(buf)
            if n:
                data = buf[:n]
                del buf[:n]  # appends made meanwhile (other threads) stay
                self._file.write(data)
                self.bytes += n
            self._file.flush()

    def _flusher(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except (OSError, ValueError) as e:
                log.error("trace: cannot write %s: %s", self.path, e)
                return

    def close(self) -> None:
        """Detach, write the format's trailer, flush and close; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.detach()
        self._stop.set()
        if self._timer is not None:
            self._timer.join(5)
        try:
            self._write(self._enc.end())
        except Exception:
            log.exception("trace: cannot finish %s", self.path)
        self.flush()
        with self._flush_lock:
            f, self._file = self._file, None
            if f is not None:
                f.close()
        log.info("trace: %s written (%s, %d bytes)", self.path, self.format, self.bytes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RingBuffer(_BusSink):
    """The last `capacity` events, as binary records in a preallocated buffer."""

    def __init__(self, capacity: int = 1 << 16):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
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
