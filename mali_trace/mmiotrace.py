"""Linux mmiotrace text (Documentation/trace/mmiotrace.rst, format version 20070824).

The kernel's mmiotrace tracer is x86-only, so an arm64 guest cannot produce one; the device
side can. One record per line, keyword first, exactly as kernel/trace/trace_mmiotrace.c
prints them:

    VERSION 20070824
    PCIDEV <bus><devfn> <vendor><device> <irq> <7 resource starts> <7 sizes> <driver>
    MAP <sec>.<usec> <map id> 0x<phys> 0x<virt> 0x<len> 0x<pc> <pid>
    R <width> <sec>.<usec> <map id> 0x<phys> 0x<value> 0x<pc> <pid>
    W <width> <sec>.<usec> <map id> 0x<phys> 0x<value> 0x<pc> <pid>
    MARK <sec>.<usec> <text>
    UNMAP <sec>.<usec> <map id> 0x<pc> <pid>

BAR0 appears at physical `header.bar_phys` (0x10000000 by default) + register offset, as
map id 1; PC and PID are 0 (not recorded). The trace header travels in a first MARK line
(`MARK 0.000000 mali-vdev-trace {json}`), and the events that are not register accesses as
MARK lines that tools print as comments and this parser reads back:

    MARK 0.001234 mali-vdev IRQ_LINE value=0x1 : IRQ line HIGH

CS_INSTR events are left out unless asked for (there are many).
"""

from __future__ import annotations

import json
import re
from typing import Iterator, TextIO

from mali_base.events import Event, Kind
from mali_regs.mmio import MMIO_SIZE

from .decode import Decoder
from .fields import checked
from .header import HeaderError, TraceHeader

VERSION = "20070824"
MAP_ID = 1
VIRT_BASE = 0xFFFF800080000000    # what an arm64 ioremap address looks like; informational
PCI_BUS, PCI_DEVFN = 0x00, 0x08    # QEMU addr "01.0"
ARM_VENDOR, DEVICE_ID = 0x13B5, 0x0001
HEADER_MARK = "mali-vdev-trace"
EVENT_MARK = "mali-vdev"


class MmiotraceFormatError(ValueError):
    pass


def _ts(t_ns: int) -> str:
    us = t_ns // 1000
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


class MmiotraceEncoder:
    def __init__(self, header: TraceHeader, marks: bool = True, instructions: bool = False):
        self.header = header
        self.base = header.bar_phys
        self.marks = marks
        self.instructions = instructions
        self.decoder = Decoder(header) if marks else None
        self._last_t = 0

    def begin(self) -> str:
        b = self.base
        starts = " ".join(f"{x:x}" for x in (b, 0, 0, 0, 0, 0, 0))
        sizes = " ".join(f"{x:x}" for x in (MMIO_SIZE, 0, 0, 0, 0, 0, 0))
        return (f"VERSION {VERSION}\n"
                f"PCIDEV {PCI_BUS:02x}{PCI_DEVFN:02x} {ARM_VENDOR:04x}{DEVICE_ID:04x} 0 {starts} {sizes} \n"
                f"MARK 0.000000 {HEADER_MARK} {json.dumps(self.header.to_dict(), separators=(',', ':'))}\n"
                f"MAP 0.000000 {MAP_ID} 0x{b:x} 0x{VIRT_BASE:x} 0x{MMIO_SIZE:x} 0x0 0\n")

    def encode(self, ev: Event) -> str:
        k = ev.kind
        self._last_t = ev.t_ns
        if k == Kind.REG_READ or k == Kind.REG_WRITE:
            us = ev.t_ns // 1000
            return (f"{'R' if k == Kind.REG_READ else 'W'} {ev.width} {us // 1_000_000}.{us % 1_000_000:06d} "
                    f"{MAP_ID} 0x{self.base + ev.addr:x} 0x{ev.value:x} 0x0 0\n")
        if self.decoder is None:
            return ""
        text = self.decoder.decode(ev)["text"]  # keeps the decoder's state in step
        if k == Kind.CS_INSTR and not self.instructions:
            return ""
        raw = [f"{n}=0x{v:x}" if n != "slot" and n != "stream" else f"{n}={v}"
               for n, v, default in (("addr", ev.addr, 0), ("value", ev.value, 0), ("width", ev.width, 0),
                                     ("slot", ev.slot, -1), ("stream", ev.stream, -1), ("aux", ev.aux, 0))
               if v != default]
        return f"MARK {_ts(ev.t_ns)} {EVENT_MARK} {k.name}{' ' if raw else ''}{' '.join(raw)} : {text}\n"

    def end(self) -> str:
        return f"UNMAP {_ts(self._last_t)} {MAP_ID} 0x0 0\n"


_EVENT_MARK_RE = re.compile(rf"^{EVENT_MARK} ([A-Z_0-9]+)((?: [a-z]+=-?(?:0x)?[0-9a-fA-F]+)*) : ")


def read(f: TextIO, warnings: list | None = None) -> tuple[TraceHeader, Iterator[Event]]:
    """Header and events of an mmiotrace log: R/W lines inside a mapping become register
    events (offset = physical - map base); our MARK lines become the other events.
    Sequence numbers are assigned in line order; timestamps have microsecond resolution."""
    lines = iter(f)
    header = None
    buffered: list[str] = []
    # the header MARK, if any, comes before the first access
    for line in lines:
        buffered.append(line)
        if line.startswith("MARK ") and f" {HEADER_MARK} " in line:
            try:
                header = TraceHeader.from_dict(json.loads(line.split(f" {HEADER_MARK} ", 1)[1]))
            except (json.JSONDecodeError, HeaderError) as e:
                raise MmiotraceFormatError(f"bad header MARK: {e}") from None
            break
        if line[:2] in ("R ", "W ") or line.startswith("MAP "):
            break
    if header is None:
        header = TraceHeader(source="mmiotrace")
        if warnings is not None:
            warnings.append("mmiotrace without a mali-vdev header: assuming the G610 profile")

    def all_lines():
        yield from buffered
        yield from lines

    def events() -> Iterator[Event]:
        maps: dict[int, tuple[int, int]] = {}
        seq = 0
        outside = 0
        for n, line in enumerate(all_lines(), start=1):
            parts = line.split()
            if not parts:
                continue
            kw = parts[0]
            try:
                if kw in ("R", "W"):
                    width, t, map_id, phys, value = int(parts[1]), parts[2], int(parts[3]), int(parts[4], 16), \
                        int(parts[5], 16)
                    m = maps.get(map_id)
                    if m is None or not m[0] <= phys < m[0] + m[1]:
                        # no MAP seen (a cut log): assume our BAR layout
                        if not header.bar_phys <= phys < header.bar_phys + MMIO_SIZE:
                            outside += 1
                            continue
                        base = header.bar_phys
                    else:
                        base = m[0]
                    ev = checked(seq + 1, _parse_ts(t), Kind.REG_READ if kw == "R" else Kind.REG_WRITE,
                                 phys - base, value, width, -1, -1, 0)
                    seq += 1
                    yield ev
                elif kw == "MAP":
                    maps[int(parts[2])] = (int(parts[3], 16), int(parts[5], 16))
                elif kw == "UNMAP":
                    maps.pop(int(parts[2]), None)
                elif kw == "MARK" and len(parts) > 2 and parts[2] == EVENT_MARK:
                    text = line.split(None, 2)[2]
                    m = _EVENT_MARK_RE.match(text)
                    if m is None or m.group(1) not in Kind.__members__:
                        continue
                    kv = dict(item.split("=", 1) for item in m.group(2).split())
                    ev = checked(seq + 1, _parse_ts(parts[1]), Kind[m.group(1)], int(kv.get("addr", "0"), 0),
                                 int(kv.get("value", "0"), 0), int(kv.get("width", "0"), 0),
                                 int(kv.get("slot", "-1"), 0), int(kv.get("stream", "-1"), 0),
                                 int(kv.get("aux", "0"), 0))
                    seq += 1
                    yield ev
            except (ValueError, IndexError) as e:
                if warnings is not None:
                    warnings.append(f"line {n}: cannot parse {line.strip()!r}: {e}")
        if outside and warnings is not None:
            warnings.append(f"{outside} accesses outside the GPU BAR skipped")
    return header, events()


def _parse_ts(s: str) -> int:
    sec, _, frac = s.partition(".")
    frac = (frac + "000000000")[:9]
    return int(sec) * 1_000_000_000 + int(frac)
