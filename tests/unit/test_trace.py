"""mali_trace: capture on the event bus, the four formats, and their parsers (no QEMU).

`traced_run` drives the GPU with the driver model the way panthor does at probe (identity
reads, soft reset, IRQ handling, MMU set-up, MCU boot), then runs jobs in a group, suspends
and resumes it, makes one job fault, and terminates the group, with writers for all four
formats and a plain list sink on the bus.
"""

from __future__ import annotations

import io
import json
import os
import time
import tracemalloc

import pytest

from mali_base.events import Event, Kind
from mali_trace import RingBuffer, TraceHeader, TraceWriter, formats, load, open_trace, perfetto
from mali_trace import binary as B
from mali_trace.decode import Decoder
from scheduler.isa import Op, encode
from tests.driver_model import BUF_VA, SYNC_VA, Driver, Gpu, Group, job_wrapper, mov32, mov48, probe_and_boot

EXTS = {"binary": "mtrace", "jsonl": "jsonl", "mmiotrace": "mmiotrace", "perfetto": "json"}


def run_jobs(gpu: Gpu, d: Driver, jobs: int, fault: bool = True) -> Group:
    g = Group(gpu, d)
    d.ack_job_irq()
    wrapper = g.store_job()
    for i in range(jobs):
        g.submit(wrapper)
        g.run()
        d.ack_job_irq()
        if i == jobs // 2:
            g.request(state=2)      # SUSPEND
            g.request(state=3)      # RESUME
    assert g.sync() == jobs
    if fault:                       # a job storing to an unmapped VA: MMU fault, CS fatal
        bad = g.code(0x100, [mov48(0, 0x7700_0000), mov32(2, 1),
                             encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0)])
        g.submit(job_wrapper(*bad, SYNC_VA))
        g.run()
        d.ack_job_irq()
    g.request(state=0)              # TERMINATE
    return g


def traced_run(tmp_path, profile: str = "g610", jobs: int = 6, fault: bool = True, name: str = "t"):
    """(events seen by a list sink, {format: path}, header)."""
    gpu = Gpu(profile)
    seen: list[Event] = []
    gpu.dev.events.attach(seen.append)
    paths = {fmt: str(tmp_path / f"{name}_{profile}.{ext}") for fmt, ext in EXTS.items()}
    writers = [TraceWriter.for_device(gpu.dev, p, fmt, source="test") for fmt, p in paths.items()]
    try:
        d = probe_and_boot(gpu)
        run_jobs(gpu, d, jobs, fault)
    finally:
        for w in writers:
            w.close()
        gpu.dev.events.detach(seen.append)
        header = writers[0].header
        gpu.close()
    return seen, paths, header


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return traced_run(tmp_path_factory.mktemp("trace"))


def regs_of(events):
    return [(e.kind, e.addr, e.value, e.width) for e in events if e.kind in (Kind.REG_READ, Kind.REG_WRITE)]


# -- capture ----------------------------------------------------------------------------------

def test_run_produces_every_kind_of_event(run):
    seen, paths, _ = run
    kinds = {e.kind for e in seen}
    assert kinds >= {Kind.REG_READ, Kind.REG_WRITE, Kind.IRQ_LINE, Kind.IRQ_RAWSTAT, Kind.DOORBELL, Kind.IFACE,
                     Kind.MMU_COMMAND, Kind.MMU_FAULT, Kind.CSG_STATE, Kind.CS_STATE, Kind.CS_INSTR, Kind.CS_FATAL,
                     Kind.RESET, Kind.MCU_STATUS, Kind.GPU_COMMAND}
    for p in paths.values():
        assert os.path.getsize(p) > 0


def test_binary_header_names_the_gpu_and_the_clock(run):
    _, paths, header = run
    with open(paths["binary"], "rb") as f:
        assert f.read(8) == B.MAGIC
    t = load(paths["binary"])
    h = t.header
    assert t.format == "binary" and h == header
    assert (h.profile, h.gpu_name, h.gpu_id, h.arch) == ("g610", "Mali-G610", 0xA8670005, (10, 8, 6))
    assert h.timestamp_hz == 1_000_000_000 and h.gpu_timestamp_hz == 62_500_000
    assert abs(h.start_wall_ns / 1e9 - __import__("time").time()) < 600
    assert h.format_version == 1 and h.source == "test"
    assert B.HEADER.parse(open(paths["binary"], "rb").read())["record_size"] == B.RECORD_SIZE == 44


def test_binary_round_trip_is_exact(run):
    seen, paths, _ = run
    t = load(paths["binary"])
    assert t.events == seen and not t.warnings
    assert [e.seq for e in t.events] == list(range(seen[0].seq, seen[0].seq + len(seen)))
    assert all(a.t_ns <= b.t_ns for a, b in zip(t.events, t.events[1:]))
    assert os.path.getsize(paths["binary"]) == len(B.header_bytes(t.header)) + 44 * len(seen)


def test_jsonl_round_trip_is_exact_and_lines_are_decoded(run):
    seen, paths, _ = run
    t = load(paths["jsonl"])
    assert t.format == "jsonl" and t.events == seen
    lines = [json.loads(x) for x in open(paths["jsonl"])]
    assert lines[0]["type"] == "header" and lines[0]["gpu_id"] == 0xA8670005 and lines[0]["arch"] == [10, 8, 6]
    by_kind = {}
    for o in lines[1:]:
        by_kind.setdefault(o["kind"], o)
    gpu_id = lines[1]
    assert gpu_id["kind"] == "REG_READ" and gpu_id["reg"] == "GPU_ID" and gpu_id["block"] == "GPU_CONTROL"
    assert gpu_id["fields"]["ARCH_MAJOR"] == 10 and gpu_id["text"].startswith("GPU_ID = 0xa8670005")
    cmd = next(o for o in lines[1:] if o.get("reg") == "GPU_COMMAND")
    assert cmd["fields"] == {"COMMAND": "RESET", "RESET_MODE": "SOFT_RESET"}
    raw = next(o for o in lines[1:] if o["kind"] == "IRQ_RAWSTAT" and o["irq"] == "JOB")
    assert raw["raised"] == ["GLOBAL_IF"] and raw["block"] == "JOB_CONTROL"
    csg_ack = next(o for o in lines[1:] if o["kind"] == "IFACE" and o["iface"] == "CSG")
    assert "STATE=START" in csg_ack["changed"] and "ack ENDPOINT_CONFIG" in csg_ack["changed"]
    assert csg_ack["ack"]["STATE"] == "START" and csg_ack["req"]["ENDPOINT_CONFIG"] == 1
    assert any("event SYNC_UPDATE" in o.get("changed", ()) for o in lines[1:])
    instr = [o for o in lines[1:] if o["kind"] == "CS_INSTR"]
    assert instr[0]["disasm"] == "MOVE32 r94, #0x1"
    assert any(o["disasm"].startswith("SYNC_ADD64") for o in instr)
    fault = by_kind["MMU_FAULT"]
    assert fault["exception"].startswith("TRANSLATION_FAULT") and fault["access"] == "WRITE"
    assert by_kind["CS_FATAL"]["exception"] == fault["exception"]


def test_mmiotrace_is_the_kernel_format_and_parses_back(run):
    seen, paths, header = run
    text = open(paths["mmiotrace"]).read().splitlines()
    assert text[0] == "VERSION 20070824"
    assert text[1].startswith("PCIDEV 0008 13b50001 ")
    assert text[2].startswith("MARK 0.000000 mali-vdev-trace {")
    assert text[3] == "MAP 0.000000 1 0x10000000 0xffff800080000000 0x200000 0x0 0"
    assert text[-1].startswith("UNMAP ")
    first = seen[0]
    us = first.t_ns // 1000
    assert text[4] == f"R 4 {us // 10**6}.{us % 10**6:06d} 1 0x10000000 0xa8670005 0x0 0"
    rw = [ln for ln in text if ln[:2] in ("R ", "W ")]
    assert len(rw) == len(regs_of(seen))
    for ln in rw:  # the kernel's printf: "%c %d %u.%06lu %d 0x%llx 0x%lx 0x%lx %d"
        kw, width, ts, map_id, phys, value, pc, pid = ln.split()
        assert kw in "RW" and width in ("4", "8") and map_id == "1" and pc == "0x0" and pid == "0"
        assert len(ts.split(".")[1]) == 6 and phys.startswith("0x1") and value.startswith("0x")
    t = load(paths["mmiotrace"])
    assert t.header == header and not t.warnings
    assert regs_of(t.events) == regs_of(seen)
    reg_t = [e.t_ns for e in t.events if e.kind in (Kind.REG_READ, Kind.REG_WRITE)]
    assert reg_t == [e.t_ns // 1000 * 1000 for e in seen if e.kind in (Kind.REG_READ, Kind.REG_WRITE)]
    other = [(e.kind, e.addr, e.value, e.width, e.slot, e.stream, e.aux) for e in seen
             if e.kind not in (Kind.REG_READ, Kind.REG_WRITE, Kind.CS_INSTR)]
    assert [(e.kind, e.addr, e.value, e.width, e.slot, e.stream, e.aux) for e in t.events
            if e.kind not in (Kind.REG_READ, Kind.REG_WRITE)] == other


def test_mmiotrace_and_jsonl_give_the_same_register_events(run):
    _, paths, _ = run
    a, b = load(paths["mmiotrace"]), load(paths["jsonl"])
    assert regs_of(a.events) == regs_of(b.events)


def test_foreign_mmiotrace_without_our_header(tmp_path):
    p = tmp_path / "foreign.txt"
    p.write_text("VERSION 20070824\n"
                 "MAP 12.000000 3 0xfb000000 0xffffc90000000000 0x200000 0x0 0\n"
                 "R 4 12.000100 3 0xfb000000 0xa8670005 0x0 0\n"
                 "W 4 12.000200 3 0xfb000030 0x101 0x0 0\n"
                 "R 4 12.000300 3 0xfc000000 0x0 0x0 0\n"       # another device
                 "MARK 12.000400 hello\n")
    t = load(str(p))
    assert [(e.kind, e.addr, e.value, e.t_ns) for e in t.events] == [
        (Kind.REG_READ, 0, 0xA8670005, 12_000_100_000), (Kind.REG_WRITE, 0x30, 0x101, 12_000_200_000)]
    assert any("G610" in w for w in t.warnings) and any("outside" in w for w in t.warnings)


def test_conversions_chain_back_to_the_same_files(run, tmp_path):
    seen, paths, header = run
    t = load(paths["binary"])
    formats.write(str(tmp_path / "x.jsonl"), "jsonl", t.header, t.events)
    assert open(tmp_path / "x.jsonl").read() == open(paths["jsonl"]).read()   # streaming == batch
    formats.write(str(tmp_path / "x.mmiotrace"), "mmiotrace", t.header, t.events)
    assert open(tmp_path / "x.mmiotrace").read() == open(paths["mmiotrace"]).read()
    formats.write(str(tmp_path / "x.json"), "perfetto", t.header, t.events)
    assert json.load(open(tmp_path / "x.json")) == json.load(open(paths["perfetto"]))
    j = load(str(tmp_path / "x.jsonl"))
    formats.write(str(tmp_path / "y.mtrace"), "binary", j.header, j.events)
    assert open(tmp_path / "y.mtrace", "rb").read() == open(paths["binary"], "rb").read()
    m = load(paths["mmiotrace"])
    formats.write(str(tmp_path / "m.mtrace"), "binary", m.header, m.events)
    formats.write(str(tmp_path / "m.mmiotrace"), "mmiotrace", m.header, load(str(tmp_path / "m.mtrace")).events)
    assert open(tmp_path / "m.mmiotrace").read() == open(paths["mmiotrace"]).read()


def test_truncated_binary_keeps_whole_records(run, tmp_path):
    seen, paths, _ = run
    data = open(paths["binary"], "rb").read()
    cut = tmp_path / "cut.mtrace"
    cut.write_bytes(data[:-10])
    t = load(str(cut))
    assert t.events == seen[:-1]
    assert any("partial record" in w for w in t.warnings)


def test_format_detection_and_errors(run, tmp_path):
    _, paths, _ = run
    for fmt, p in paths.items():
        assert formats.detect(open(p, "rb").read(4096)) == fmt
    with pytest.raises(formats.TraceFormatError, match="export"):
        open_trace(paths["perfetto"])
    (tmp_path / "junk").write_bytes(b"\x00\x01junk")
    with pytest.raises(formats.TraceFormatError):
        open_trace(str(tmp_path / "junk"))


def test_out_of_range_fields_never_break_the_device(tmp_path):
    h = TraceHeader.for_profile("g610")
    w = TraceWriter(str(tmp_path / "odd.mtrace"), h, flush_interval=None)
    w.sink(Event(1, 5, Kind.CS_FATAL, addr=-1, value=1 << 70, width=300, slot=200, stream=-5, aux=-2))
    w.close()
    (ev,) = load(str(tmp_path / "odd.mtrace")).events
    assert (ev.addr, ev.value, ev.width, ev.slot, ev.stream) == ((1 << 64) - 1, 0, 300 & 0xFF, 127, -5)


def test_writer_flushes_while_running_and_is_complete_after_close(tmp_path):
    gpu = Gpu()
    p = str(tmp_path / "live.mtrace")
    w = TraceWriter.for_device(gpu.dev, p, flush_bytes=44 * 10, flush_interval=None)
    d = probe_and_boot(gpu)
    header = len(B.header_bytes(w.header))
    deadline = time.monotonic() + 10
    while os.path.getsize(p) <= header and time.monotonic() < deadline:   # the writer thread's pace
        time.sleep(0.01)
    assert os.path.getsize(p) > header                              # written while running, no close
    assert w.flush(10)
    assert (os.path.getsize(p) - header) % 44 == 0                  # whole records only
    run_jobs(gpu, d, 3, fault=False)
    w.close()
    w.close()                                                    # idempotent
    gpu.read("GPU_ID")                                           # after close: not recorded, no error
    assert not gpu.dev.events.active
    t = load(p)
    assert not t.warnings and any(e.kind == Kind.CSG_STATE and e.value == 0 for e in t.events[-6:])  # TERMINATE
    gpu.close()


def test_writer_rejects_unknown_formats(tmp_path):
    with pytest.raises(formats.TraceFormatError):
        TraceWriter(str(tmp_path / "x"), TraceHeader(), "xml")


# -- perfetto -------------------------------------------------------------------------------

def test_perfetto_validates_against_the_trace_event_format(run):
    seen, paths, _ = run
    doc = json.load(open(paths["perfetto"]))
    assert perfetto.validate(doc) == []
    assert doc["displayTimeUnit"] == "ns" and doc["otherData"]["gpu_id"] == 0xA8670005
    evs = doc["traceEvents"]
    for e in evs:
        assert {"name", "ph", "pid", "tid"} <= e.keys() or e["ph"] == "E"
        assert type(e["pid"]) is int and type(e["tid"]) is int
        if e["ph"] != "M":
            assert isinstance(e["ts"], float)
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names[(perfetto.CSG_PID, 1)] == "CSG 0" and names[(perfetto.CS_PID, 1)] == "CSG 0 / CS 0"
    procs = {e["pid"]: e["args"]["name"] for e in evs if e["name"] == "process_name"}
    assert procs[1].startswith("Mali-G610") and procs[2] == "CSG slots" and procs[3] == "CS queues"
    jobs_b = [e for e in evs if e["ph"] == "B" and e.get("cat") == "job"]
    jobs_e = [e for e in evs if e["ph"] == "E" and e["pid"] == perfetto.CS_PID]
    assert len(jobs_b) == len(jobs_e) == 7                       # 6 jobs + the faulting one
    assert [e["args"]["ended_by"] for e in jobs_e].count("SYNC_ADD64") == 6
    assert jobs_e[-1]["args"]["ended_by"] == "fatal"
    csg = [e for e in evs if e["pid"] == perfetto.CSG_PID and e["ph"] in "BE"]
    assert [(e["ph"], e["args"].get("state", e["args"].get("ended_by"))) for e in csg] == [
        ("B", "START"), ("E", "suspend"), ("B", "RESUME"), ("E", "terminate")]
    instants = [e["name"] for e in evs if e["ph"] == "i"]
    assert "IRQ line high" in instants and "DOORBELL[1]" in instants and "SOFT_RESET" in instants
    assert any(n.startswith("MMU fault AS1") for n in instants)
    assert any(n.startswith("CS fatal") for n in instants)
    assert any(e["ph"] == "C" and e["name"] == "IRQ line" for e in evs)
    # a job slice covers its instructions: from the first wrapper instruction to SYNC_ADD64
    first_instr = next(e for e in seen if e.kind == Kind.CS_INSTR)
    assert jobs_b[0]["ts"] == first_instr.t_ns / 1000


def test_perfetto_validator_catches_broken_documents():
    ok = {"name": "a", "ph": "B", "ts": 1.0, "pid": 1, "tid": 1}
    end = {"ph": "E", "ts": 2.0, "pid": 1, "tid": 1}
    assert perfetto.validate({"traceEvents": [ok, end]}) == []
    assert perfetto.validate({"traceEvents": [ok]})[0].startswith("1 unclosed")
    assert "E without B" in perfetto.validate([end])[0]
    assert "goes back" in perfetto.validate([dict(ok, ts=5.0), end])[0]
    assert "not an int" in perfetto.validate([dict(ok, pid="1"), end])[0]
    assert "unknown phase" in perfetto.validate([dict(ok, ph="Q")])[0]
    assert "dur" in perfetto.validate([dict(ok, ph="X")])[0]
    assert "scope" in perfetto.validate([dict(ok, ph="i", s="x")])[0]
    assert perfetto.validate({"nope": 1}) == ["object format without a traceEvents list"]


def test_perfetto_options_add_register_and_instruction_tracks(run, tmp_path):
    _, paths, _ = run
    t = load(paths["binary"])
    out = io.StringIO()
    formats.write(out, "perfetto", t.header, t.events, registers=True, instructions=True)
    doc = json.loads(out.getvalue())
    assert perfetto.validate(doc) == []
    assert any(e.get("cat") == "mmio" and e["name"] == "R GPU_ID" for e in doc["traceEvents"])
    assert any(e.get("cat") == "instr" and e["name"].startswith("CALL") for e in doc["traceEvents"])


# -- ring buffer ------------------------------------------------------------------------------

def test_ring_buffer_keeps_the_last_events_in_fixed_memory(tmp_path):
    gpu = Gpu()
    ring = RingBuffer(capacity=128)
    seen: list[Event] = []
    ring.attach(gpu.dev.events)
    gpu.dev.events.attach(seen.append)
    buf = ring._buf
    d = probe_and_boot(gpu)
    run_jobs(gpu, d, 5, fault=False)
    assert len(seen) > 128
    assert len(ring) == 128 and ring.total == len(seen) and ring.dropped == len(seen) - 128
    assert list(ring.events()) == seen[-128:]
    gpu.dev.events.detach(seen.append)
    g = Group(gpu, d, slot=1, as_index=2)
    user = g.code(0, [mov48(0, BUF_VA), mov32(2, 1), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0)])

    def job():
        g.submit(job_wrapper(*user, SYNC_VA))
        g.run()
        d.ack_job_irq()
    job()
    total = ring.total
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(200):  # thousands more events, only the ring attached
        job()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert ring._buf is buf and len(buf) == 128 * 44
    assert ring.total - total > 4000 and len(ring) == 128
    assert grown < 64 * 1024, grown          # nothing retained per event
    tail: list[Event] = []
    gpu.dev.events.attach(tail.append)
    for _ in range(3):
        job()
    ring.detach()
    gpu.dev.events.detach(tail.append)
    assert 0 < len(tail) < 128 and list(ring.events())[-len(tail):] == tail
    n = ring.save(str(tmp_path / "ring.mtrace"), TraceHeader.for_device(gpu.dev))
    saved = load(str(tmp_path / "ring.mtrace")).events
    assert n == 128 and saved == list(ring.events()) and saved[-1] == tail[-1]
    assert [e.seq for e in saved] == list(range(ring.total - 127, ring.total + 1))
    gpu.close()


def test_ring_buffer_capacity_must_be_positive():
    with pytest.raises(ValueError):
        RingBuffer(0)


# -- decoding details -------------------------------------------------------------------------

def test_decoder_names_registers_of_the_trace_architecture():
    dec = Decoder(TraceHeader.for_profile("g610"))
    d = dec.decode(Event(1, 0, Kind.REG_WRITE, 0x24D8, 1, 4))
    assert d["block"] == "MMU_AS" and d["reg"] == "AS_COMMAND[3]" and d["fields"] == {"COMMAND": "UPDATE"}
    d = dec.decode(Event(2, 0, Kind.REG_READ, 0x104, 0x5, 4))
    assert d["reg"] == "SHADER_PRESENT_HI"
    d = dec.decode(Event(3, 0, Kind.REG_WRITE, 0x80000 + 0x10000 * 3, 1, 4))
    assert d["block"] == "DOORBELLS" and d["reg"] == "DOORBELL[3]"
    d = dec.decode(Event(4, 0, Kind.IFACE, 0, 0x100, 0, aux=0x100))      # GLB PING acked
    assert d["changed"] == ["ack PING"] and d["pending"] == []
    d = dec.decode(Event(5, 0, Kind.IFACE, 0, 0x100, 0, aux=0x300))      # FWCFG_UPDATE still pending
    assert d["changed"] == [] and d["pending"] == ["FWCFG_UPDATE"]
    d = dec.decode(Event(6, 0, Kind.CS_FATAL, 0, 0x41, 0, 0, 0, aux=0x10))
    assert d["exception"] == "CS_UNRECOVERABLE"
