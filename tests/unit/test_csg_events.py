"""CSG events as firmware raises them, counted through the driver model.

IDLE once per transition to idle: not again after a STATUS_UPDATE request or a doorbell that
brings no work (panthor's tick does both to every resident group; Mesa keeps its group
resident, so anything else is an event storm). SYNC_UPDATE only when a sync object's value
or error word really changed. The driver acknowledges each event as panthor does (REQ bit
set to the ACK bit), so a missing event cannot hide behind a pending one.
"""

from mali_regs import csf_iface as I
from scheduler.csg import CSG_IDLE, CSG_STATUS_UPDATE, CSG_SYNC_UPDATE
from scheduler.isa import Op, encode
from tests.driver_model import SYNC_VA, Group, mov32, mov48


class Events:
    """Counts CSG event toggles of one group and acknowledges them, as panthor's IRQ handler."""

    def __init__(self, g: Group):
        self.g = g
        self.count = {CSG_IDLE: 0, CSG_SYNC_UPDATE: 0}

    def poll(self) -> None:
        mcu = self.g.gpu.dev.mcu
        ci, co = mcu.csg(I.CSG_INPUT, self.g.slot), mcu.csg(I.CSG_OUTPUT, self.g.slot)
        req, ack = ci["CSG_REQ"], co["CSG_ACK"]
        for bit in self.count:
            if (req ^ ack) & bit:
                self.count[bit] += 1
                req ^= bit
        ci["CSG_REQ"] = req

    def run(self) -> None:
        self.g.run()
        self.poll()

    @property
    def idle(self) -> int:
        return self.count[CSG_IDLE]

    @property
    def sync(self) -> int:
        return self.count[CSG_SYNC_UPDATE]


def _tick(g: Group, ev: Events) -> None:
    """What panthor's scheduler tick does to a resident group: STATUS_UPDATE, then its doorbell."""
    g.request(toggle=CSG_STATUS_UPDATE)
    g.d.doorbell(g.slot + 1)
    ev.run()


def test_an_idle_group_raises_idle_once_whatever_the_ticks(booted):
    gpu, d = booted
    g = Group(gpu, d)
    ev = Events(g)
    g.submit(g.store_job())
    ev.run()
    assert ev.idle == 1
    for _ in range(20):
        _tick(g, ev)
    assert ev.idle == 1
    assert g.csg_out()["CSG_STATUS_STATE"] & 1   # and it still reads idle


def test_new_work_makes_the_next_idle_a_new_transition(booted):
    gpu, d = booted
    g = Group(gpu, d)
    ev = Events(g)
    ev.run()                                     # started with an empty ring: idle once
    assert ev.idle == 1
    for n in range(2, 5):
        g.submit([mov32(1, n)])
        ev.run()
        _tick(g, ev)
        assert ev.idle == n


def test_a_group_blocked_on_a_sync_object_is_idle_once(booted):
    gpu, d = booted
    g = Group(gpu, d)
    ev = Events(g)
    g.submit([mov48(0, SYNC_VA), mov32(2, 0), encode(Op.SYNC_WAIT32, addr=0, data=2, cond=1)])  # wait > 0
    ev.run()
    for _ in range(5):
        _tick(g, ev)
    assert ev.idle == 1
    gpu.ram.u32(g.pa[SYNC_VA], 1)                # the CPU signals it
    ev.run()
    assert g.out()["CS_STATUS_WAIT"] == 0 or g.extract() == g.insert[0]
    _tick(g, ev)
    assert ev.idle == 2


def _sync_op(op, value):
    return [mov48(0, SYNC_VA), mov32(2, value), encode(op, addr=0, data=2, wait_mask=0, signal_slot=0)]


def test_sync_update_only_when_a_sync_object_changes(booted):
    gpu, d = booted
    g = Group(gpu, d)
    ev = Events(g)
    g.submit(_sync_op(Op.SYNC_ADD32, 1))
    ev.run()
    assert (g.sync(0, 4), ev.sync) == (1, 1)
    g.submit(_sync_op(Op.SYNC_SET32, 1))         # the same value: nothing changed
    ev.run()
    g.submit(_sync_op(Op.SYNC_ADD32, 0))         # adds nothing
    ev.run()
    assert ev.sync == 1
    g.submit(_sync_op(Op.SYNC_SET32, 7))
    ev.run()
    assert (g.sync(0, 4), ev.sync) == (7, 2)


def test_the_control_socket_counts_the_events_the_driver_saw(booted):
    """status["csg_events"] counts what was raised to the host, whatever the driver did with
    it (a guest test reads it to catch an event storm)."""
    from mali_gpu.control import ControlServer
    gpu, d = booted
    g = Group(gpu, d)
    ev = Events(g)
    g.submit(_sync_op(Op.SYNC_ADD32, 1))
    ev.run()
    for _ in range(10):
        _tick(g, ev)
    status = ControlServer(gpu.dev, "/nonexistent.sock").status()
    assert status["csg_events"] == {"IDLE": ev.idle, "SYNC_UPDATE": ev.sync} == \
        {"IDLE": 1, "SYNC_UPDATE": 1}
