"""JSON Lines: one object per line, the header first, then one event per line.

    {"type": "header", "format": "mali-vdev-trace", "format_version": 1, "profile": "g610", ...}
    {"seq": 1, "t_ns": 5120, "kind": "REG_READ", "addr": 0, "value": 2825322501, "width": 4,
     "block": "GPU_CONTROL", "reg": "GPU_ID", "text": "GPU_ID = 0xa8670005 (...)", "fields": {...}}

The raw event fields (seq, t_ns, kind, addr, value, width, slot, stream, aux; slot/stream are
left out when -1, width/aux when 0) are what the parser reads back; everything else is the
decoded view (mali_trace.decode): register block/name/fields, IRQ block and raised bits,
interface ACK/REQ bits decoded one by one, instruction disassembly, fault names.
"""

from __future__ import annotations

import json
from typing import Iterator, TextIO

from mali_base.events import Event, Kind

from .decode import Decoder
from .fields import FIELDS, checked
from .header import HeaderError, TraceHeader

FORMAT_NAME = "mali-vdev-trace"


class JsonlFormatError(ValueError):
    pass


class JsonlEncoder:
    def __init__(self, header: TraceHeader, decode: bool = True):
        self.header = header
        self.decoder = Decoder(header) if decode else None
        self._dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def begin(self) -> str:
        return self._dumps({"type": "header", "format": FORMAT_NAME, **self.header.to_dict()}) + "\n"

    def event_dict(self, ev: Event) -> dict:
        d = {"seq": ev.seq, "t_ns": ev.t_ns, "kind": ev.kind.name, "addr": ev.addr, "value": ev.value}
        if ev.width:
            d["width"] = ev.width
        if ev.slot != -1:
            d["slot"] = ev.slot
        if ev.stream != -1:
            d["stream"] = ev.stream
        if ev.aux:
            d["aux"] = ev.aux
        if self.decoder is not None:
            d.update(self.decoder.decode(ev))
        return d

    def encode(self, ev: Event) -> str:
        return self._dumps(self.event_dict(ev)) + "\n"

    def end(self) -> str:
        return ""


def event_from_dict(d: dict) -> Event:
    """An event from its JSON object: integer fields in their record's range (a float, an
    infinity or a 2**70 would reach the decoders and the binary packer otherwise)."""
    try:
        kind = d["kind"]
        kind = Kind[kind] if isinstance(kind, str) else Kind(kind)
        vals = []
        for name, default, (lo, hi) in FIELDS:
            v = d[name] if default is None else d.get(name, default)
            if not isinstance(v, int) or isinstance(v, bool):  # the ranges: checked()
                raise ValueError(f"field {name} is {v!r}, not an integer in [{lo}, {hi})")
            vals.append(v)
        seq, t_ns, addr, value, width, slot, stream, aux = vals
        return checked(seq, t_ns, kind, addr, value, width, slot, stream, aux)
    except (KeyError, ValueError, TypeError) as e:
        raise JsonlFormatError(f"not a trace event: {e!r}") from None


def read(f: TextIO, warnings: list | None = None) -> tuple[TraceHeader, Iterator[Event]]:
    """Header and events of a JSON Lines trace (a file without a header line gets the
    default G610 header)."""
    first = ""
    for line in f:
        if line.strip():
            first = line
            break
    try:
        obj = json.loads(first) if first else {}
    except json.JSONDecodeError as e:
        raise JsonlFormatError(f"line 1 is not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise JsonlFormatError(f"line 1 is a JSON {type(obj).__name__}, not an object")
    if obj.get("type") == "header":
        try:
            header = TraceHeader.from_dict(obj)
        except HeaderError as e:
            raise JsonlFormatError(f"line 1: {e}") from None
        pending: list = []
    else:
        header = TraceHeader()
        if warnings is not None:
            warnings.append("JSON Lines trace without a header line: assuming the G610 profile")
        pending = [obj] if obj else []

    def events() -> Iterator[Event]:
        for o in pending:
            yield event_from_dict(o)
        for n, line in enumerate(f, start=2):
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except json.JSONDecodeError as e:
                if warnings is not None:
                    warnings.append(f"line {n}: not JSON ({e}); stopped here")
                return
            if not isinstance(o, dict):
                raise JsonlFormatError(f"line {n} is a JSON {type(o).__name__}, not an event object")
            if o.get("type") not in (None, "event"):
                continue
            yield event_from_dict(o)
    return header, events()
