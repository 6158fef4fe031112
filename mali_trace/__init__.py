"""mali_trace: capture, store, decode and compare what the virtual GPU and its driver do.

Capture is a sink on the device's event bus (mali_base.events): `TraceWriter` streams to a
file, `RingBuffer` keeps the last N events in fixed memory. Formats (mali_trace.formats):

    binary     compact records declared with construct (the default for `serve --trace`)
    jsonl      JSON Lines with decoded names (registers, fields, IRQ bits, req/ack bits, disassembly)
    mmiotrace  Linux mmiotrace text (VERSION 20070824), BAR0 at physical 0x10000000
    perfetto   Chrome trace-event JSON: CSG residency, jobs per queue, IRQs, doorbells, faults

Binary, JSON Lines and mmiotrace files read back into events (`open_trace`, `load`).
`mali-vdev trace show|stats|diff|perfetto|convert` is the command-line face (mali_trace.cli).
"""

from .capture import RingBuffer, TraceWriter
from .decode import Decoder
from .formats import FORMATS, READABLE, Trace, TraceFormatError, detect, load, open_trace, write
from .header import BAR_PHYS, FORMAT_VERSION, TraceHeader

__all__ = ["TraceWriter", "RingBuffer", "Decoder", "TraceHeader", "FORMATS", "READABLE", "Trace",
           "TraceFormatError", "detect", "load", "open_trace", "write", "BAR_PHYS", "FORMAT_VERSION"]
