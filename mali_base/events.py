"""One event bus for everything the virtual GPU does.

Blocks report register accesses, interrupt changes, doorbells, firmware-interface
transitions, MMU commands and faults, CSG/CS state changes, executed CS instructions, DMA
map changes and resets here. Logging, tracing, statistics and fault injection are sinks
on this bus rather than code spread through the blocks. Records are compact: names are
derived from offsets and kinds at display time through mali_regs, the single source of
names. With no sink attached, `bus.active` is False and call sites skip building events.
"""

from __future__ import annotations

import enum
import threading
import time
from dataclasses import dataclass
from typing import Callable


class Kind(enum.IntEnum):
    REG_READ = 1        # addr=offset, value, width (bytes)
    REG_WRITE = 2
    IRQ_LINE = 3        # value=level
    IRQ_RAWSTAT = 4     # addr=block (0 GPU, 1 JOB, 2 MMU), value=new RAWSTAT
    DOORBELL = 5        # addr=doorbell index
    IFACE = 6           # addr=block id (IfaceBlockId), slot, stream, value=new ACK, aux=REQ
    MMU_COMMAND = 7     # slot=AS, value=command
    MMU_FAULT = 8       # slot=AS, addr=VA, value=FAULTSTATUS
    CSG_STATE = 9       # slot, value=new state
    CS_STATE = 10       # slot, stream, value=1 start / 0 stop
    CS_INSTR = 11       # slot, stream, addr=VA, value=raw instruction
    CS_FATAL = 12       # slot, stream, value=exception type, aux=info
    DMA_MAP = 13        # addr=IOVA, value=size, aux=flags (0 = unmap)
    RESET = 14          # value=0 device reset, 1 soft, 2 hard
    MCU_STATUS = 15     # value=new status
    GPU_COMMAND = 16    # value=command
    JOB = 17            # slot, stream, addr=VA of a RUN_* instruction, value=the instruction (closes its JOB_DATA)
    JOB_DATA = 18       # slot, stream, what the job read: addr=VA, value=up to 8 bytes (width); aux=1: addr=SR, value


class IfaceBlockId(enum.IntEnum):
    GLB = 0
    CSG = 1
    CS = 2


@dataclass(slots=True)  # not frozen: a frozen dataclass costs five times as much to create
class Event:
    seq: int
    t_ns: int           # monotonic, since the bus was created
    kind: Kind
    addr: int = 0
    value: int = 0
    width: int = 0
    slot: int = -1
    stream: int = -1
    aux: int = 0


Sink = Callable[[Event], None]

ALL_KINDS = frozenset(Kind)


class EventBus:
    """Sinks run in the emitting thread, under the bus lock (and usually the device lock):
    a sink must be quick and never do I/O — one that writes files buffers and hands the
    writing to a thread of its own (mali_trace.TraceWriter). attach/detach replace the sink
    tables, so an emit in flight keeps the sinks it started with.

    A sink says which kinds it wants (`attach(sink, kinds)`, or a `kinds` attribute of the
    sink; default all): an event is built only if some sink wants its kind, and `wants`
    tells producers cheaply whether a kind is wanted at all. That matters for CS_INSTR, one
    per executed instruction: the interpreter keeps its compiled fast path when nobody wants
    them, and hands them over a run at a time (`emit_instrs`) when somebody does. A sink with
    an `instrs(seq0, t_ns, slot, stream, flat)` attribute takes such a run whole (records
    seq0 + 1, seq0 + 2, ...), without an Event per instruction."""

    def __init__(self):
        self._sinks: tuple[Sink, ...] = ()
        self._entries: tuple[tuple[Sink, frozenset], ...] = ()
        self._by_kind: dict[Kind, tuple[Sink, ...]] = {}
        self._instr_sinks: tuple = ()  # (sink, its instrs() or None) for CS_INSTR
        self._held: tuple | None = None  # (flat, slot, stream) of the run being recorded
        self._seq = 0
        self._lock = threading.Lock()
        self._attach_lock = threading.Lock()  # not the emit lock: a sink may detach itself
        self.t0_ns = time.monotonic_ns()  # event times are relative to this monotonic instant
        self.active = False
        self.wants: frozenset = frozenset()  # the kinds some sink wants

    def attach(self, sink: Sink, kinds=None) -> None:
        """Attach `sink` for `kinds` (an iterable of Kind; None: the sink's own `kinds`
        attribute, or every kind)."""
        if kinds is None:
            kinds = getattr(sink, "kinds", None)
        kinds = ALL_KINDS if kinds is None else frozenset(Kind(k) for k in kinds)
        with self._attach_lock:
            self._rebuild(self._entries + ((sink, kinds),))

    def detach(self, sink: Sink) -> None:
        with self._attach_lock:
            entries = list(self._entries)
            for i, (s, _) in enumerate(entries):
                if s == sink:
                    del entries[i]
                    break
            else:
                raise ValueError("detach of a sink that is not attached")
            self._rebuild(tuple(entries))

    def _rebuild(self, entries) -> None:
        self._by_kind = {k: tuple(s for s, kinds in entries if k in kinds) for k in Kind}
        self._instr_sinks = tuple((s, getattr(s, "instrs", None)) for s in self._by_kind[Kind.CS_INSTR])
        self._entries = entries
        self._sinks = tuple(s for s, _ in entries)
        self.wants = frozenset(k for k, sinks in self._by_kind.items() if sinks)
        self.active = bool(entries)

    def emit(self, kind: Kind, addr: int = 0, value: int = 0, width: int = 0, slot: int = -1,
             stream: int = -1, aux: int = 0) -> None:
        sinks = self._by_kind.get(kind)
        if not sinks:
            return
        with self._lock:  # sequence numbers and timestamps increase together across threads
            held = self._held
            if held is not None and held[0]:  # instructions that ran before this event
                self._instrs_locked(*held)
            self._seq += 1
            ev = Event(self._seq, time.monotonic_ns() - self.t0_ns, kind, addr, value, width, slot, stream, aux)
            for sink in sinks:
                sink(ev)

    def hold(self, flat: list, slot: int, stream: int) -> None:
        """A run of CS instructions is being recorded into `flat` ([va, raw, ...]): any
        event emitted meanwhile first hands over what is there (keeping the order), and
        release() hands over the rest. One run at a time (the engine's, under device.lock)."""
        self._held = (flat, slot, stream)

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None and held[0]:
            self.emit_instrs(*held)

    def emit_instrs(self, flat: list, slot: int, stream: int) -> None:
        """CS_INSTR events for a run of executed instructions, `flat` = [va, raw, va, raw, ...]
        in execution order, under one lock and with one timestamp. Takes them out of `flat`."""
        with self._lock:
            self._instrs_locked(flat, slot, stream)

    def _instrs_locked(self, flat: list, slot: int, stream: int) -> None:
        n = len(flat) & ~1
        run = flat[:n]
        del flat[:n]  # what the recording thread appends meanwhile stays for the next hand-over
        sinks = self._instr_sinks
        if not sinks:
            return
        kind = Kind.CS_INSTR
        seq0 = self._seq
        t = time.monotonic_ns() - self.t0_ns
        for sink, batch in sinks:
            if batch is not None:
                batch(seq0, t, slot, stream, run)
            else:
                seq = seq0
                for i in range(0, n, 2):
                    seq += 1
                    sink(Event(seq, t, kind, run[i], run[i + 1], 0, slot, stream, 0))
        self._seq = seq0 + n // 2
