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
