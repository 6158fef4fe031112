"""The event bus sees what the driver does and what the GPU answers, in order."""

from mali_base.events import IfaceBlockId, Kind
from scheduler.isa import Op, encode
from tests.driver_model import BUF_VA, Driver, Gpu, Group, mov32, mov48


def test_events_of_a_boot_and_a_job_in_sequence():
    gpu = Gpu()
    events = []
    gpu.dev.events.attach(events.append)
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    g.submit([mov48(0, BUF_VA), mov32(2, 7), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0)])
    g.run()
    kinds = [e.kind for e in events]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(a.t_ns <= b.t_ns for a, b in zip(events, events[1:]))
    mcu_write = next(i for i, e in enumerate(events) if e.kind == Kind.REG_WRITE and e.addr == 0x700)
    assert Kind.MCU_STATUS in kinds[mcu_write:]
    assert any(e.kind == Kind.IRQ_RAWSTAT and e.addr == 1 and e.value >> 31 for e in events)  # JOB GLOBAL
    assert any(e.kind == Kind.IRQ_LINE and e.value == 1 for e in events)
    assert any(e.kind == Kind.CSG_STATE and e.value == 1 and e.slot == 0 for e in events)
    assert any(e.kind == Kind.IFACE and e.addr == IfaceBlockId.CSG for e in events)
    instrs = [e for e in events if e.kind == Kind.CS_INSTR]
    assert [e.value >> 56 for e in instrs] == [Op.MOVE48, Op.MOVE32, Op.STORE_MULTIPLE]
    assert Kind.DOORBELL in kinds
    gpu.dma.unmap_all()
    assert events[-1].kind == Kind.DMA_MAP and events[-1].aux == 0  # unmaps are reported too
    gpu.dev.events.detach(events.append)
    assert not gpu.dev.events.active
    gpu.close()


def test_an_emit_in_flight_keeps_the_sinks_it_started_with():
    """attach/detach replace the sink tuple: a sink added during an emit (from any thread;
    here from inside a sink, which makes it deterministic) sees only later events, and a
    sink removed during an emit does not make the next one miss the event."""
    from mali_base.events import EventBus

    bus = EventBus()
    calls = []

    def late(ev):
        calls.append(("late", ev.seq))

    def once(ev):
        calls.append(("once", ev.seq))
        bus.detach(once)
        bus.attach(late)

    def steady(ev):
        calls.append(("steady", ev.seq))

    bus.attach(once)
    bus.attach(steady)
    bus.emit(Kind.REG_READ)
    bus.emit(Kind.REG_READ)
    assert calls == [("once", 1), ("steady", 1), ("steady", 2), ("late", 2)]


def _loop_job(g):
    """A counted loop (compiled fast path), a store and a read of an unmapped VA at the end
    (handler table, MMU fault): CS_INSTR events must keep their place before the fault's."""
    from tests.driver_model import BUF_VA
    body = [mov32(3, 5), encode(Op.ADD_IMM32, dst=3, src=3, imm=-1),
            encode(Op.BRANCH, cond=3, value=3, offset=-2),   # NE: back to the ADD
            mov48(0, BUF_VA), mov32(2, 9), encode(Op.STORE_MULTIPLE, addr=0, base=2, mask=1, offset=0),
            mov48(4, 0x7000_0000), encode(Op.LOAD_MULTIPLE, addr=4, base=6, mask=1, offset=0)]
    g.submit(body)
    g.run()


def _instr_trace(armed: bool):
    from mali_base.faults import parse_spec
    from mali_trace import RingBuffer
    gpu = Gpu()
    ring = RingBuffer(1 << 12)
    ring.attach(gpu.dev.events)
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    if armed:  # an injection that never fires forces the interpreter's per-instruction path
        gpu.dev.inject(parse_spec("cs_fatal:slot=7"))
    _loop_job(g)
    evs = list(ring.events())
    gpu.close()
    return evs


def test_cs_instr_events_from_the_fast_path_match_the_per_instruction_path():
    fast, slow = _instr_trace(False), _instr_trace(True)

    def pick(evs):
        return [(e.kind, e.addr, e.value, e.slot, e.stream) for e in evs
                if e.kind in (Kind.CS_INSTR, Kind.MMU_FAULT, Kind.CS_FATAL)]
    assert pick(fast) == pick(slow)
    instrs = [e for e in fast if e.kind == Kind.CS_INSTR]
    assert len(instrs) == 1 + 2 * 5 + 5               # MOVE32, the loop 5 times, 5 more
    assert [e.seq for e in fast] == list(range(fast[0].seq, fast[0].seq + len(fast)))
    fault = next(i for i, e in enumerate(fast) if e.kind == Kind.MMU_FAULT)
    assert fast[fault - 1].kind == Kind.CS_INSTR and fast[fault - 1].value >> 56 == Op.LOAD_MULTIPLE
    assert all(a.t_ns <= b.t_ns for a, b in zip(fast, fast[1:]))


def test_a_sink_gets_only_the_kinds_it_declared_and_cs_instr_costs_nothing_unwanted():
    from mali_trace import RingBuffer
    gpu = Gpu()
    regs = RingBuffer(1 << 12, kinds={Kind.REG_READ, Kind.REG_WRITE})
    regs.attach(gpu.dev.events)
    seen = []
    gpu.dev.events.attach(seen.append, kinds=[Kind.MMU_FAULT])
    assert gpu.dev.events.wants == {Kind.REG_READ, Kind.REG_WRITE, Kind.MMU_FAULT}
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    g = Group(gpu, d)
    built = []
    from mali_base import events as E
    real = E.Event
    E.Event = lambda *a: built.append(a[2]) or real(*a)  # every Event the bus builds
    try:
        _loop_job(g)
    finally:
        E.Event = real
    assert {e.kind for e in regs.events()} == {Kind.REG_WRITE}  # this driver reads no register
    assert [e.kind for e in seen] == [Kind.MMU_FAULT] and seen[0].addr == 0x7000_0000
    assert Kind.CS_INSTR not in built and set(built) <= {Kind.REG_READ, Kind.REG_WRITE, Kind.MMU_FAULT}
    assert g.buf(0) == 9
    gpu.close()
