"""Fast codecs for fixed-size `construct` structs.

The wire layouts are declared once, with `construct`. Parsing through construct costs
microseconds per message even when compiled, which is most of an MMIO round trip, so for
structs made only of fixed-size integer fields we derive the equivalent `struct.Struct`
format from the declaration itself and decode into a named tuple.
"""

from __future__ import annotations

import struct
from collections import namedtuple

from construct import Bytes, FormatField, Renamed, Struct


def _field_format(subcon) -> str:
    if isinstance(subcon, FormatField):
        return subcon.fmtstr[1:]
    if isinstance(subcon, Bytes) and isinstance(subcon.length, int):
        return f"{subcon.length}s"
    raise TypeError(f"{subcon!r} is not a fixed-size field")


class Layout:
    """A fixed-size little-endian record declared by a construct `Struct`."""

    def __init__(self, name: str, declaration: Struct):
        fields = [sc for sc in declaration.subcons if isinstance(sc, Renamed)]
        self.name = name
        self.declaration = declaration
        self.names = tuple(sc.name for sc in fields)
        self.struct = self._struct = struct.Struct("<" + "".join(_field_format(sc.subcon) for sc in fields))
        self.size = self._struct.size
        self.record = namedtuple(name, self.names)
        if declaration.sizeof() != self.size:
            raise AssertionError(f"{name}: struct size {self.size} != construct size")

    def unpack(self, buf, offset: int = 0):
        """Decode from `buf` at `offset`; raises ValueError if `buf` is too short."""
        if len(buf) - offset < self.size:
            raise ValueError(f"{self.name} needs {self.size} bytes, got {len(buf) - offset}")
        return self.record._make(self._struct.unpack_from(buf, offset))

    def pack(self, *values, **fields) -> bytes:
        if fields:
            values = tuple(fields[n] for n in self.names)
        return self._struct.pack(*values)
