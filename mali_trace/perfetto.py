"""A Perfetto / Chrome trace-event JSON timeline of the GPU.

JSON object format (`{"traceEvents": [...], "displayTimeUnit": "ns", "otherData": {...}}`),
timestamps in microseconds since the start of the trace. Tracks:

    pid 1 "<GPU> (GPU_ID ...)"   tid 1 IRQ (line and RAWSTAT instants, an "IRQ line" counter),
                                 tid 2 doorbells, tid 3 MMU (commands, faults), tid 4 firmware
                                 (GLB interface, MCU status), tid 5 GPU commands and resets,
                                 tid 6 DMA maps, tid 7 register accesses (only if asked)
    pid 2 "CSG slots"            tid N+1 "CSG N": B/E slices START/RESUME -> SUSPEND/TERMINATE,
                                 instants for CSG interface acks and events
    pid 3 "CS queues"            tid 64*N+M+1 "CSG N / CS M": B/E slices per job (see jobs.py),
                                 instants for CS start/stop, interface acks, fatals

Phases used: M (process/thread names and sort order), B/E (strictly nested per track, one
open slice at most per track), i (instants; faults and resets are global), C (counter).
Events are emitted in trace order, so timestamps are monotonic per track. `validate` checks
a document against these rules (and the trace-event format's required keys).
"""

from __future__ import annotations

import json

from mali_base.events import Event, IfaceBlockId, Kind

from .decode import Decoder
from .header import TraceHeader
from .jobs import Job, JobTracker, Residency

GPU_PID, CSG_PID, CS_PID = 1, 2, 3
TID_IRQ, TID_DOORBELL, TID_MMU, TID_FW, TID_GPU, TID_DMA, TID_REGS = 1, 2, 3, 4, 5, 6, 7
_GPU_TRACKS = {TID_IRQ: "IRQ", TID_DOORBELL: "Doorbells", TID_MMU: "MMU", TID_FW: "Firmware interface (GLB, MCU)",
               TID_GPU: "GPU commands, resets", TID_DMA: "DMA maps", TID_REGS: "Register accesses"}


def _us(t_ns: int) -> float:
    return t_ns / 1000.0


def csg_tid(slot: int) -> int:
    return slot + 1


def cs_tid(slot: int, stream: int) -> int:
    return slot * 64 + stream + 1


class PerfettoEncoder:
    """Streams trace events as JSON; `begin()`, `encode(ev)` per event, `end()` closes open
    slices and the document."""

    def __init__(self, header: TraceHeader, registers: bool = False, instructions: bool = False):
        self.header = header
        self.registers = registers
        self.instructions = instructions
        self.decoder = Decoder(header)
        self.jobs = JobTracker()
        self._named: set[tuple[int, int]] = set()
        self._open: dict[tuple[int, int], str] = {}   # track -> name of its open B slice
        self._first = True
        self._last: Event | None = None
        self._dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    # -- output ---------------------------------------------------------------------------

    def _obj(self, o: dict) -> str:
        s = self._dumps(o)
        if self._first:
            self._first = False
            return s
        return ",\n" + s

    def _thread(self, pid: int, tid: int, name: str, sort: int) -> str:
        if (pid, tid) in self._named:
            return ""
        self._named.add((pid, tid))
        return (self._obj({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}})
                + self._obj({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                             "args": {"sort_index": sort}}))

    def _track(self, pid: int, tid: int) -> str:
        if (pid, tid) in self._named:
            return ""
        if pid == GPU_PID:
            return self._thread(pid, tid, _GPU_TRACKS[tid], tid)
        if pid == CSG_PID:
            return self._thread(pid, tid, f"CSG {tid - 1}", tid)
        slot, stream = divmod(tid - 1, 64)
        return self._thread(pid, tid, f"CSG {slot} / CS {stream}", tid)

    def _instant(self, pid: int, tid: int, name: str, t_ns: int, args: dict | None = None, scope: str = "t",
                 cat: str = "gpu") -> str:
        o = {"name": name, "cat": cat, "ph": "i", "s": scope, "ts": _us(t_ns), "pid": pid, "tid": tid}
        if args:
            o["args"] = args
        return self._track(pid, tid) + self._obj(o)

    def _begin(self, pid: int, tid: int, name: str, t_ns: int, args: dict, cat: str) -> str:
        out = ""
        if (pid, tid) in self._open:
            out += self._finish(pid, tid, t_ns, {"ended_by": "overlap"})
        self._open[(pid, tid)] = name
        return out + self._track(pid, tid) + self._obj({"name": name, "cat": cat, "ph": "B", "ts": _us(t_ns),
                                                        "pid": pid, "tid": tid, "args": args})

    def _finish(self, pid: int, tid: int, t_ns: int, args: dict) -> str:
        name = self._open.pop((pid, tid), None)
        if name is None:
            return ""
        return self._obj({"name": name, "ph": "E", "ts": _us(t_ns), "pid": pid, "tid": tid, "args": args})

    # -- document -------------------------------------------------------------------------

    def begin(self) -> str:
        h = self.header
        head = ('{"displayTimeUnit":"ns","otherData":'
                + self._dumps({"format": "mali-vdev-trace", **h.to_dict()}) + ',"traceEvents":[\n')
        body = "".join([
            self._obj({"name": "process_name", "ph": "M", "pid": GPU_PID, "tid": 0,
                       "args": {"name": f"{h.gpu_name} (GPU_ID 0x{h.gpu_id:08x})"}}),
            self._obj({"name": "process_sort_index", "ph": "M", "pid": GPU_PID, "tid": 0, "args": {"sort_index": 1}}),
            self._obj({"name": "process_name", "ph": "M", "pid": CSG_PID, "tid": 0, "args": {"name": "CSG slots"}}),
            self._obj({"name": "process_sort_index", "ph": "M", "pid": CSG_PID, "tid": 0, "args": {"sort_index": 2}}),
            self._obj({"name": "process_name", "ph": "M", "pid": CS_PID, "tid": 0, "args": {"name": "CS queues"}}),
            self._obj({"name": "process_sort_index", "ph": "M", "pid": CS_PID, "tid": 0, "args": {"sort_index": 3}}),
        ])
        return head + body

    def encode(self, ev: Event) -> str:
        self._last = ev
        d = self.decoder.decode(ev)
        out = []
        for what, obj in self.jobs.feed(ev):
            out.append(self._slice(what, obj, ev))
        k, t = ev.kind, ev.t_ns
        text = d["text"]
        if k == Kind.IRQ_LINE:
            out.append(self._instant(GPU_PID, TID_IRQ, "IRQ line high" if ev.value else "IRQ line low", t))
            out.append(self._obj({"name": "IRQ line", "ph": "C", "ts": _us(t), "pid": GPU_PID, "tid": TID_IRQ,
                                  "args": {"level": int(bool(ev.value))}}))
        elif k == Kind.IRQ_RAWSTAT:
            if d.get("raised"):
                name = f"{d['irq']} IRQ +{'|'.join(d['raised'])}"
            elif d.get("cleared"):
                name = f"{d['irq']} IRQ cleared"
            else:
                name = f"{d['irq']} IRQ"
            out.append(self._instant(GPU_PID, TID_IRQ, name, t, {"rawstat": f"0x{ev.value:08x}", "text": text}))
        elif k == Kind.DOORBELL:
            out.append(self._instant(GPU_PID, TID_DOORBELL, f"DOORBELL[{ev.addr}]", t))
        elif k == Kind.MMU_COMMAND:
            out.append(self._instant(GPU_PID, TID_MMU, text, t))
        elif k == Kind.MMU_FAULT:
            out.append(self._instant(GPU_PID, TID_MMU, f"MMU fault AS{ev.slot} {d['exception']}", t,
                                     {"va": f"0x{ev.addr:x}", "access": d["access"], "text": text},
                                     scope="g", cat="fault"))
        elif k == Kind.IFACE:
            name = f"{d.get('iface', 'IFACE')}: {', '.join(d['changed'])}" if d.get("changed") else \
                f"{d.get('iface', 'IFACE')} ack"
            args = {"ack": f"0x{ev.value:08x}", "req": f"0x{ev.aux:08x}", "text": text}
            if ev.addr == IfaceBlockId.CSG:
                out.append(self._instant(CSG_PID, csg_tid(ev.slot), name, t, args))
            elif ev.addr == IfaceBlockId.CS:
                out.append(self._instant(CS_PID, cs_tid(ev.slot, ev.stream), name, t, args))
            else:
                out.append(self._instant(GPU_PID, TID_FW, name, t, args))
        elif k == Kind.MCU_STATUS:
            out.append(self._instant(GPU_PID, TID_FW, text, t))
        elif k == Kind.CS_STATE:
            out.append(self._instant(CS_PID, cs_tid(ev.slot, ev.stream), f"CS {d['state']}", t, {"text": text}))
        elif k == Kind.CS_FATAL:
            out.append(self._instant(CS_PID, cs_tid(ev.slot, ev.stream), f"CS fatal {d['exception']}", t,
                                     {"info": f"0x{ev.aux:x}", "text": text}, scope="g", cat="fault"))
        elif k == Kind.RESET:
            out.append(self._instant(GPU_PID, TID_GPU, d["reset"], t, scope="g", cat="reset"))
        elif k == Kind.GPU_COMMAND:
            out.append(self._instant(GPU_PID, TID_GPU, text.split(" = ")[0] + " " + str(d["fields"].get("COMMAND", "")),
                                     t, {"text": text}))
        elif k == Kind.DMA_MAP:
            out.append(self._instant(GPU_PID, TID_DMA, text, t))
        elif k in (Kind.REG_READ, Kind.REG_WRITE) and self.registers:
            out.append(self._instant(GPU_PID, TID_REGS, f"{'R' if k == Kind.REG_READ else 'W'} {d['reg']}", t,
                                     {"text": text}, cat="mmio"))
        elif k == Kind.CS_INSTR and self.instructions:
            out.append(self._instant(CS_PID, cs_tid(ev.slot, ev.stream), d["disasm"], t,
                                     {"va": f"0x{ev.addr:x}"}, cat="instr"))
        return "".join(out)

    def _slice(self, what: str, obj, ev: Event) -> str:
        if what == "job_start":
            j: Job = obj
            return self._begin(CS_PID, cs_tid(j.slot, j.stream), f"job {j.index}", j.start_ns,
                               {"start_va": f"0x{j.start_va:x}", "seq": j.start_seq}, "job")
        if what == "job_end":
            j = obj
            return self._finish(CS_PID, cs_tid(j.slot, j.stream), j.end_ns,
                                {"ended_by": j.ended_by, "instructions": j.instructions, "calls": j.calls,
                                 "end_va": None if j.end_va is None else f"0x{j.end_va:x}"})
        if what == "csg_start":
            r: Residency = obj
            return self._begin(CSG_PID, csg_tid(r.slot), f"CSG {r.slot} resident", r.start_ns,
                               {"state": r.state, "as": r.as_index}, "csg")
        r = obj
        return self._finish(CSG_PID, csg_tid(r.slot), r.end_ns, {"ended_by": r.ended_by})

    def end(self) -> str:
        out = [self._slice(w, o, self._last) for w, o in self.jobs.finish(self._last)]
        t = self._last.t_ns if self._last is not None else 0
        for (pid, tid) in list(self._open):  # anything the tracker did not close
            out.append(self._finish(pid, tid, t, {"ended_by": "end of trace"}))
        return "".join(out) + "\n]}\n"




# -- validation ----------------------------------------------------------------------------

_PHASES = set("BEXiIbenCMsftPONDvVR")
_METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index", "process_labels",
             "process_uptime_seconds", "num_cpus"}


def validate(doc) -> list[str]:
    """Problems of a trace-event document (empty if valid): required keys per phase, int
    pids/tids, numeric timestamps monotonic per (pid, tid), B/E balanced and nested per
    track, X with a duration, instant scopes, counters with numeric args."""
    errors: list[str] = []
    if isinstance(doc, dict):
        events = doc.get("traceEvents")
        if not isinstance(events, list):
            return ["object format without a traceEvents list"]
    elif isinstance(doc, list):
        events = doc
    else:
        return ["neither a JSON object nor an array"]
    last_ts: dict[tuple, float] = {}
    stacks: dict[tuple, list] = {}

    def err(i, msg):
        if len(errors) < 50:
            errors.append(f"event {i}: {msg}")

    for i, e in enumerate(events):
        if not isinstance(e, dict):
            err(i, "not an object")
            continue
        ph = e.get("ph")
        if ph not in _PHASES:
            err(i, f"unknown phase {ph!r}")
            continue
        for key in ("pid", "tid"):
            if key in e and (not isinstance(e[key], int) or isinstance(e[key], bool)):
                err(i, f"{key} is not an int: {e[key]!r}")
        if "pid" not in e:
            err(i, "no pid")
        if ph == "M":
            if e.get("name") not in _METADATA:
                err(i, f"unknown metadata {e.get('name')!r}")
            if not isinstance(e.get("args"), dict):
                err(i, "metadata without args")
            continue
        if "tid" not in e:
            err(i, "no tid")
        if not isinstance(e.get("name"), str) and ph != "E":
            err(i, "no name")
        ts = e.get("ts")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool):
            err(i, f"ts is not a number: {ts!r}")
            continue
        track = (e.get("pid"), e.get("tid"))
        if ts < last_ts.get(track, float("-inf")):
            err(i, f"ts {ts} goes back on track {track} (last {last_ts[track]})")
        last_ts[track] = ts
        if ph == "B":
            stacks.setdefault(track, []).append((e.get("name"), ts))
        elif ph == "E":
            st = stacks.get(track)
            if not st:
                err(i, f"E without B on track {track}")
            else:
                name, _ = st.pop()
                if "name" in e and e["name"] != name:
                    err(i, f"E {e['name']!r} closes B {name!r} on track {track}")
        elif ph == "X":
            dur = e.get("dur")
            if not isinstance(dur, (int, float)) or dur < 0:
                err(i, f"X without a valid dur: {dur!r}")
        elif ph in "iI":
            if e.get("s", "t") not in ("g", "p", "t"):
                err(i, f"bad instant scope {e.get('s')!r}")
        elif ph == "C":
            args = e.get("args")
            if not isinstance(args, dict) or not all(isinstance(v, (int, float)) for v in args.values()):
                err(i, "counter without numeric args")
    for track, st in stacks.items():
        if st:
            errors.append(f"{len(st)} unclosed B slice(s) on track {track}: {st[-1][0]!r}")
    return errors
