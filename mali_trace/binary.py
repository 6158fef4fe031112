"""The compact binary trace: a header, then fixed-size little-endian records, one per event.

Both are declared once with `construct`. Records are packed and unpacked through the
equivalent `struct.Struct` derived from that declaration (the same approach as
vdev/layout.py), because construct costs microseconds per record and the writer sits on the
MMIO and CS-instruction hot paths.

File layout (version 1):

    header   HEADER below: magic "MALITRC\\0", version, header_size, record_size, GPU_ID,
             arch, timestamp rates, wall-clock start, BAR address, then three length-prefixed
             UTF-8 strings (profile key, GPU name, source). Records start at header_size.
    records  RECORD below, 44 bytes each: seq, t_ns, kind, width, slot, stream, addr, value, aux
             (the fields of mali_base.events.Event).

A file cut short (a killed process) ends with whole records up to the last flush; a partial
record at the end is reported and ignored.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Iterator

from construct import Const, FormatField, Int8sl, Int8ul, Int16ul, Int32ul, Int64ul, PascalString, Renamed, Struct

from mali_base.events import Event, Kind

from .header import TraceHeader

MAGIC = b"MALITRC\x00"
MAX_SOURCE = 1024           # characters of the free-text source field
MAX_HEADER = 4096

HEADER = Struct(
    "magic" / Const(MAGIC),
    "version" / Int16ul,
    "header_size" / Int16ul,     # bytes before the first record
    "record_size" / Int16ul,
    "flags" / Int16ul,           # reserved, 0
    "gpu_id" / Int32ul,
    "arch_major" / Int8ul,
    "arch_minor" / Int8ul,
    "arch_rev" / Int8ul,
    "reserved" / Int8ul,
    "timestamp_hz" / Int64ul,    # tick rate of t_ns
    "gpu_timestamp_hz" / Int64ul,
    "start_wall_ns" / Int64ul,   # Unix ns at t_ns == 0
    "bar_phys" / Int64ul,
    "profile" / PascalString(Int8ul, "utf8"),
    "gpu_name" / PascalString(Int8ul, "utf8"),
    "source" / PascalString(Int16ul, "utf8"),
)

RECORD = Struct(
    "seq" / Int64ul,
    "t_ns" / Int64ul,
    "kind" / Int8ul,
    "width" / Int8ul,
    "slot" / Int8sl,
    "stream" / Int8sl,
    "addr" / Int64ul,
    "value" / Int64ul,
    "aux" / Int64ul,
)


def _struct_of(declaration: Struct) -> struct.Struct:
    fmt = "<"
    for sc in declaration.subcons:
        assert isinstance(sc, Renamed) and isinstance(sc.subcon, FormatField), sc
        fmt += sc.subcon.fmtstr[1:]
    s = struct.Struct(fmt)
    assert s.size == declaration.sizeof()
    return s


RECORD_STRUCT = _struct_of(RECORD)
RECORD_SIZE = RECORD_STRUCT.size
RECORD_FIELDS = tuple(sc.name for sc in RECORD.subcons)
_MASKS = (0xFFFFFFFFFFFFFFFF,) * 2 + (0xFF, 0xFF, None, None) + (0xFFFFFFFFFFFFFFFF,) * 3


def header_bytes(h: TraceHeader) -> bytes:
    a = h.arch
    values = dict(version=h.format_version, header_size=0, record_size=RECORD_SIZE, flags=0, gpu_id=h.gpu_id,
                  arch_major=a[0], arch_minor=a[1], arch_rev=a[2], reserved=0, timestamp_hz=h.timestamp_hz,
                  gpu_timestamp_hz=h.gpu_timestamp_hz, start_wall_ns=h.start_wall_ns, bar_phys=h.bar_phys,
                  profile=h.profile, gpu_name=h.gpu_name, source=h.source[:MAX_SOURCE])
    size = len(HEADER.build(values))
    values["header_size"] = size
    return HEADER.build(values)


def record_values(ev: Event) -> tuple:
    """The record tuple of `ev`, with out-of-range fields wrapped (never raises)."""
    vals = []
    for name, mask in zip(RECORD_FIELDS, _MASKS):
        v = int(getattr(ev, name))
        if mask is None:
            v = max(-128, min(127, v))
        else:
            v &= mask
        vals.append(v)
    return tuple(vals)


def pack(ev: Event) -> bytes:
    try:
        return RECORD_STRUCT.pack(ev.seq, ev.t_ns, ev.kind, ev.width, ev.slot, ev.stream, ev.addr, ev.value, ev.aux)
    except struct.error:
        return RECORD_STRUCT.pack(*record_values(ev))


class BinaryFormatError(ValueError):
    pass


def read_header(f: BinaryIO) -> tuple[TraceHeader, int, bytes]:
    """The header of a binary trace, the record size and the bytes read past the header
    (pass them to iter_records; `f` need not be seekable)."""
    head = f.read(MAX_HEADER)
    if not head.startswith(MAGIC):
        raise BinaryFormatError("not a mali-vdev binary trace (bad magic)")
    try:
        h = HEADER.parse(head)
    except Exception as e:  # construct raises many types
        raise BinaryFormatError(f"bad binary trace header: {e}") from None
    if h.record_size < RECORD_SIZE:
        raise BinaryFormatError(f"record size {h.record_size} < {RECORD_SIZE}")
    header = TraceHeader(profile=h.profile, gpu_name=h.gpu_name, gpu_id=h.gpu_id, timestamp_hz=h.timestamp_hz,
                         gpu_timestamp_hz=h.gpu_timestamp_hz, start_wall_ns=h.start_wall_ns, bar_phys=h.bar_phys,
                         source=h.source, format_version=h.version)
    return header, h.record_size, head[h.header_size:]


def iter_records(f: BinaryIO, record_size: int = RECORD_SIZE, initial: bytes = b"",
                 warnings: list | None = None, chunk: int = 1 << 20) -> Iterator[Event]:
    """Events from the records following the header (unknown kinds are skipped)."""
    unpack = RECORD_STRUCT.unpack_from
    want = max(1, chunk // record_size) * record_size
    pending = bytes(initial)
    skipped = 0
    while True:
        data = f.read(want)
        if data:
            pending = pending + data if pending else data
        n = len(pending) // record_size
        for i in range(n):
            seq, t_ns, kind, width, slot, stream, addr, value, aux = unpack(pending, i * record_size)
            try:
                k = Kind(kind)
            except ValueError:
                skipped += 1
                continue
            yield Event(seq, t_ns, k, addr, value, width, slot, stream, aux)
        pending = pending[n * record_size:]
        if not data:
            break
    if warnings is not None:
        if pending:
            warnings.append(f"binary trace ends with a partial record ({len(pending)} of {record_size} bytes): "
                            "the writer did not close cleanly")
        if skipped:
            warnings.append(f"{skipped} records of unknown kinds skipped")
