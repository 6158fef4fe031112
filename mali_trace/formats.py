"""The four formats by name, reading any trace file, and converting between them."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from mali_base.events import Event

from . import binary, jsonl, mmiotrace, perfetto
from .header import TraceHeader

#: format name -> default file extension
FORMATS = {"binary": ".mtrace", "jsonl": ".jsonl", "mmiotrace": ".mmiotrace", "perfetto": ".perfetto.json"}
#: formats that can be read back into events
READABLE = ("binary", "jsonl", "mmiotrace")


class TraceFormatError(ValueError):
    pass


class BinaryEncoder:
    """Same interface as the text encoders, producing bytes."""

    def __init__(self, header: TraceHeader):
        self.header = header

    def begin(self) -> bytes:
        return binary.header_bytes(self.header)

    def encode(self, ev: Event) -> bytes:
        return binary.pack(ev)

    def end(self) -> bytes:
        return b""


def encoder(fmt: str, header: TraceHeader, **options):
    """An encoder with begin()/encode(ev)/end() for `fmt`; text encoders return str."""
    if fmt == "binary":
        return BinaryEncoder(header)
    if fmt == "jsonl":
        return jsonl.JsonlEncoder(header, **options)
    if fmt == "mmiotrace":
        return mmiotrace.MmiotraceEncoder(header, **options)
    if fmt == "perfetto":
        return perfetto.PerfettoEncoder(header, **options)
    raise TraceFormatError(f"unknown trace format {fmt!r}; formats: {', '.join(FORMATS)}")


def detect(head: bytes) -> str:
    """The format of a file starting with `head`."""
    if head.startswith(binary.MAGIC):
        return "binary"
    text = head.lstrip()
    if text.startswith(b"{"):
        first = text.split(b"\n", 1)[0]
        if b'"traceEvents"' in text[:4096] or b'"displayTimeUnit"' in first:
            return "perfetto"
        return "jsonl"
    if text.startswith(b"["):
        return "perfetto"
    for kw in (b"VERSION ", b"MARK ", b"MAP ", b"R ", b"W ", b"PCIDEV ", b"LSPCI "):
        if text.startswith(kw):
            return "mmiotrace"
    raise TraceFormatError("unrecognised trace file (not binary, JSON Lines, mmiotrace or Perfetto JSON)")


@dataclass
class Trace:
    """An opened trace: header and an iterator of events (read once), or a list if loaded."""
    path: str
    format: str
    header: TraceHeader
    events: Iterable[Event]
    warnings: list = field(default_factory=list)
    _file: object = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_trace(path: str) -> Trace:
    """Open a binary, JSON Lines or mmiotrace file (format detected from its content)."""
    f = open(path, "rb")
    try:
        head = f.read(4096)
        f.seek(0)
        if not head:
            raise TraceFormatError(f"{path}: empty file")
        fmt = detect(head)
        warnings: list = []
        if fmt == "binary":
            header, rsize, rest = binary.read_header(f)
            events: Iterator[Event] = binary.iter_records(f, rsize, rest, warnings)
            return Trace(path, fmt, header, events, warnings, f)
        if fmt == "perfetto":
            raise TraceFormatError(f"{path}: a Perfetto timeline is an export; it cannot be read back into events")
        text = io.TextIOWrapper(f, encoding="utf-8", errors="replace")
        reader = jsonl.read if fmt == "jsonl" else mmiotrace.read
        header, events = reader(text, warnings)
        return Trace(path, fmt, header, events, warnings, text)
    except Exception:
        f.close()
        raise


def load(path: str) -> Trace:
    """Open and read all events into a list."""
    with open_trace(path) as t:
        t.events = list(t.events)
    return t


def write(path_or_file, fmt: str, header: TraceHeader, events: Iterable[Event], **options) -> int:
    """Write `events` in `fmt` to a path or an open file (binary mode for "binary")."""
    enc = encoder(fmt, header, **options)
    if isinstance(path_or_file, (str, os.PathLike)):
        mode = "wb" if fmt == "binary" else "w"
        with open(path_or_file, mode, **({} if fmt == "binary" else {"encoding": "utf-8"})) as f:
            return _write(f, enc, events)
    return _write(path_or_file, enc, events)


def _write(f, enc, events) -> int:
    f.write(enc.begin())
    n = 0
    buf = []
    for ev in events:
        s = enc.encode(ev)
        if s:
            buf.append(s)
        n += 1
        if len(buf) >= 4096:
            f.write(buf[0][:0].join(buf))
            buf.clear()
    if buf:
        f.write(buf[0][:0].join(buf))
    f.write(enc.end())
    return n
