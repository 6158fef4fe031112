"""Jobs and CSG residency, reconstructed from the event stream.

A *job* is what a driver puts in a queue's ring for one submission. panthor's block is
`MOVE32 · FLUSH_CACHE2 · MOVE48 · MOVE32 · WAIT · CALL user-stream · MOVE48 · MOVE48 · WAIT ·
SYNC_ADD64 · ERROR_BARRIER` plus NOP padding. So, per stream, from CS_INSTR events:

* the call depth is tracked by return addresses: a CALL at VA v returns to v + 8;
* a job starts at the first ring-level (depth 0) instruction that is not NOP/ERROR_BARRIER
  padding once the previous job has ended;
* it ends at a ring-level SYNC_ADD/SYNC_SET (the driver's fence signal), or when the stream
  stops, faults, its group leaves the slot, goes idle, or the GPU resets.

A *residency* is a CSG slot from START/RESUME to SUSPEND/TERMINATE (or reset).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mali_base.events import Event, IfaceBlockId, Kind
from scheduler.isa import Op

_PADDING = {int(Op.NOP), int(Op.ERROR_BARRIER)}
_SIGNALS = {int(Op.SYNC_ADD32), int(Op.SYNC_ADD64), int(Op.SYNC_SET32), int(Op.SYNC_SET64)}
_CALL = int(Op.CALL)
_MAX_DEPTH = 8
CSG_IDLE = 1 << 29


@dataclass
class Job:
    slot: int
    stream: int
    index: int                 # per-stream job number, from 1
    start_ns: int
    start_va: int
    start_seq: int
    instructions: int = 0
    calls: int = 0
    end_ns: int | None = None
    end_va: int | None = None
    end_seq: int | None = None
    ended_by: str = ""         # "SYNC_ADD64", "idle", "stop", "fatal", "suspend", "reset", "end of trace"

    @property
    def duration_ns(self) -> int:
        return (self.end_ns if self.end_ns is not None else self.start_ns) - self.start_ns


@dataclass
class Residency:
    slot: int
    start_ns: int
    state: str                 # START or RESUME
    as_index: int
    end_ns: int | None = None
    ended_by: str = ""


@dataclass
class _Stream:
    stack: list = field(default_factory=list)
    job: Job | None = None
    count: int = 0


class JobTracker:
    """Feed every event in order; `feed` returns what started or ended with it:
    a list of ("job_start" | "job_end" | "csg_start" | "csg_end", Job | Residency)."""

    def __init__(self):
        self.streams: dict[tuple[int, int], _Stream] = {}
        self.residency: dict[int, Residency] = {}
        self._csg_ack: dict[int, int] = {}
        self.jobs_done = 0

    def _stream(self, slot: int, stream: int) -> _Stream:
        s = self.streams.get((slot, stream))
        if s is None:
            s = self.streams[(slot, stream)] = _Stream()
        return s

    def _end(self, s: _Stream, ev: Event, why: str, out: list) -> None:
        job = s.job
        if job is not None:
            job.end_ns, job.end_seq, job.ended_by = ev.t_ns, ev.seq, why
            if job.end_va is None and ev.kind == Kind.CS_INSTR:
                job.end_va = ev.addr
            s.job = None
            self.jobs_done += 1
            out.append(("job_end", job))

    def _end_slot(self, slot: int | None, ev: Event, why: str, out: list) -> None:
        for (sl, _), s in self.streams.items():
            if slot is None or sl == slot:
                self._end(s, ev, why, out)
                s.stack.clear()

    def _end_residency(self, slot: int, ev: Event, why: str, out: list) -> None:
        r = self.residency.pop(slot, None)
        if r is not None:
            r.end_ns, r.ended_by = ev.t_ns, why
            out.append(("csg_end", r))

    def feed(self, ev: Event) -> list:
        out: list = []
        k = ev.kind
        if k == Kind.CS_INSTR:
            s = self._stream(ev.slot, ev.stream)
            op = ev.value >> 56
            st = s.stack
            if st and ev.addr in st:
                del st[st.index(ev.addr):]
            if s.job is None and not st and op not in _PADDING:
                s.count += 1
                s.job = Job(ev.slot, ev.stream, s.count, ev.t_ns, ev.addr, ev.seq)
                out.append(("job_start", s.job))
            job = s.job
            if job is not None:
                job.instructions += 1
            if op == _CALL:
                if len(st) >= _MAX_DEPTH:
                    del st[0]
                st.append(ev.addr + 8)
                if job is not None:
                    job.calls += 1
            elif op in _SIGNALS and not st and job is not None:
                job.end_va = ev.addr
                self._end(s, ev, _op_name(op), out)
        elif k == Kind.CS_STATE:
            s = self._stream(ev.slot, ev.stream)
            if not ev.value:
                self._end(s, ev, "stop", out)
            s.stack.clear()
        elif k == Kind.CS_FATAL:
            s = self._stream(ev.slot, ev.stream)
            self._end(s, ev, "fatal", out)
            s.stack.clear()
        elif k == Kind.CSG_STATE:
            state = ev.value
            if state in (1, 3):   # START, RESUME
                self._end_residency(ev.slot, ev, "restart", out)
                r = self.residency[ev.slot] = Residency(ev.slot, ev.t_ns, "START" if state == 1 else "RESUME",
                                                        ev.aux)
                out.append(("csg_start", r))
            else:                 # TERMINATE, SUSPEND
                why = "suspend" if state == 2 else "terminate"
                self._end_slot(ev.slot, ev, why, out)
                self._end_residency(ev.slot, ev, why, out)
        elif k == Kind.IFACE and ev.addr == IfaceBlockId.CSG:
            prev = self._csg_ack.get(ev.slot)
            self._csg_ack[ev.slot] = ev.value
            if prev is not None and (prev ^ ev.value) & CSG_IDLE:
                self._end_slot(ev.slot, ev, "idle", out)
        elif k == Kind.RESET:
            self._end_slot(None, ev, "reset", out)
            for slot in list(self.residency):
                self._end_residency(slot, ev, "reset", out)
            self._csg_ack.clear()
        return out

    def finish(self, ev_last: Event | None) -> list:
        """End whatever is still open at the end of the trace."""
        out: list = []
        if ev_last is None:
            return out
        self._end_slot(None, ev_last, "end of trace", out)
        for slot in list(self.residency):
            self._end_residency(slot, ev_last, "end of trace", out)
        return out


def _op_name(op: int) -> str:
    try:
        return Op(op).name
    except ValueError:
        return f"op{op}"
