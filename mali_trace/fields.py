"""The raw fields of a trace event and their ranges: the binary record's widths, which every
reader enforces (a float, a negative number or a 2**70 from a text trace would reach the
decoders and the binary packer otherwise: a negative ACK word looped forever in the
interface decoder's bit walk)."""

from __future__ import annotations

from mali_base.events import Event, Kind

U64, I8 = (0, 1 << 64), (-128, 128)
FIELDS = (("seq", None, U64), ("t_ns", None, U64), ("addr", 0, U64), ("value", 0, U64),
          ("width", 0, (0, 256)), ("slot", -1, I8), ("stream", -1, I8), ("aux", 0, U64))


def checked(seq: int, t_ns: int, kind: Kind, addr: int, value: int, width: int, slot: int, stream: int,
            aux: int) -> Event:
    """The event, or ValueError naming the first field outside its range."""
    for (name, _, (lo, hi)), v in zip(FIELDS, (seq, t_ns, addr, value, width, slot, stream, aux)):
        if not lo <= v < hi:
            raise ValueError(f"field {name} is {v!r}, not an integer in [{lo}, {hi})")
    return Event(seq, t_ns, kind, addr, value, width, slot, stream, aux)
