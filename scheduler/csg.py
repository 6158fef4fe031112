"""CSG slots: the firmware side of the CSG/CS interface and the group state machine.

Requests arrive on the CSG/CS input blocks (via doorbells) and are acknowledged on the
output blocks: STATE (START, SUSPEND, RESUME, TERMINATE), ENDPOINT_CONFIG, STATUS_UPDATE and
the CS requests. Work is done by the engine (engine.py); what it reports back — SYNC_UPDATE
and IDLE events, CS faults and fatals — goes through `report_*` here, which toggles the
output bits and raises the JOB interrupt bit of the slot.

All methods run with the device lock held.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from construct import ConstructError

from mali_base.events import EventBus, IfaceBlockId, Kind
from mali_base.faults import FaultInjector
from mali_base.pagetable import MmuFault
from mali_regs import csf_iface as I
from mali_regs.enums import EXCEPTION
from mali_regs.profiles import GpuProfile
from mcu.iface import SharedSection
from vdev.dma import DmaError

from . import suspend
from .stream import SB_WAIT, SYNC_WAIT, UNBLOCKED, CommandStream, CsFatal, Ring, SyncWait

log = logging.getLogger("mali.csg")

TERMINATE, START, SUSPEND, RESUME = 0, 1, 2, 3
CSG_STATE_NAMES = {TERMINATE: "TERMINATE", START: "START", SUSPEND: "SUSPEND", RESUME: "RESUME"}
CSG_ENDPOINT_CONFIG, CSG_STATUS_UPDATE = 1 << 4, 1 << 5
CSG_SYNC_UPDATE, CSG_IDLE = 1 << 28, 1 << 29
CSG_EVENT_NAMES = {CSG_SYNC_UPDATE: "SYNC_UPDATE", CSG_IDLE: "IDLE"}
CS_STATE_STOP, CS_STATE_START = 0, 1
CS_FATAL_BIT, CS_FAULT_BIT = 1 << 30, 1 << 31
CSG_STATUS_STATE_IDLE = 1


@dataclass
class CsgSlot:
    index: int
    streams: list[CommandStream]
    state: int = TERMINATE
    as_index: int = 0
    priority: int = 0
    idle: bool = False
    suspend_buf: int = 0

    @property
    def running(self) -> bool:
        return self.state in (START, RESUME)


class CsgSlots:
    """`engine` (whose kick() wakes the worker) is set once the device has built it."""

    def __init__(self, iface: SharedSection, job_irq, events: EventBus, faults: FaultInjector,
                 profile: GpuProfile, engine=None, bus_fault: Callable[[int, str], None] | None = None):
        self.iface = iface
        # events raised to the host since power-on, by name (the control socket's status)
        self.raised: Counter = Counter()
        self.job_irq = job_irq
        self.events = events
        self.faults = faults
        self.engine = engine
        self.bus_fault = bus_fault
        p = profile
        self.slots = [CsgSlot(i, [CommandStream(i, j, p.cs_reg_count, p.scoreboards)
                                  for j in range(p.cs_per_csg)]) for i in range(p.csg_slots)]

    def _emit(self, kind, addr=0, value=0, slot=-1, stream=-1, aux=0) -> None:
        events = self.events
        if events.active:
            events.emit(kind, addr, value, slot=slot, stream=stream, aux=aux)

    # -- interface access ----------------------------------------------------------------

    def _csg(self, block, slot):
        return self.iface.csg(block, slot)

    def _cs(self, block, slot, stream):
        return self.iface.cs(block, slot, stream)

    # -- requests ------------------------------------------------------------------------

    def doorbell(self, slot_index: int) -> None:
        """GLB DB_REQ toggled for this slot: serve the CSG and CS requests."""
        if not 0 <= slot_index < len(self.slots):
            log.warning("request for CSG slot %d: no such slot", slot_index)
            return
        slot = self.slots[slot_index]
        inp, out = self._csg(I.CSG_INPUT, slot_index), self._csg(I.CSG_OUTPUT, slot_index)
        req, ack = inp["CSG_REQ"], out["CSG_ACK"]
        changed = (req ^ ack) & I.CSG_REQ_MASK
        faults = self.faults
        if changed and faults and faults.take("stall_csg", slot=slot_index):
            log.warning("injected: CSG%d request 0x%x left unacknowledged", slot_index, changed)
            return
        fresh = False
        if changed & 0x7:
            self._change_state(slot, req & 0x7, inp)
            fresh = slot.running
        if changed & CSG_ENDPOINT_CONFIG:
            ep = inp["CSG_EP_REQ"]
            slot.priority = ep >> 28
            out["CSG_STATUS_EP_REQ"] = ep
            out["CSG_STATUS_EP_CURRENT"] = ep & 0xFFFFF
        self._serve_cs_requests(slot, fresh)
        if changed & CSG_STATUS_UPDATE:
            self.status_update(slot)
        if changed:
            out["CSG_ACK"] = (ack & ~changed) | (req & changed)
            self._emit(Kind.IFACE, IfaceBlockId.CSG, (ack & ~changed) | (req & changed), slot=slot_index, aux=req)
        db_req, db_ack = inp["CSG_DB_REQ"], out["CSG_DB_ACK"]
        streams = (db_req ^ db_ack) & ((1 << len(slot.streams)) - 1)
        if streams:
            out["CSG_DB_ACK"] = db_ack ^ streams
            self._kick(slot)
        if changed & inp["CSG_ACK_IRQ_MASK"]:
            self.job_irq.raise_bits(1 << slot_index)

    def cs_doorbell(self, doorbell: int) -> None:
        """DOORBELL[n], n >= 1: every stream whose CS_CONFIG names that doorbell."""
        for slot in self.slots:
            if slot.running and any(self._cs(I.CS_INPUT, slot.index, cs.index)["CS_CONFIG"] >> 8 & 0xFF == doorbell
                                    for cs in slot.streams if cs.running):
                self._kick(slot)

    def _kick(self, slot: CsgSlot) -> None:
        # Only marks work: the slot stays idle unless a stream really runs something (the
        # engine clears it then), so a request or a doorbell that brings no work raises no
        # new IDLE, as firmware does.
        if self.engine is not None:
            self.engine.kick()

    def _change_state(self, slot: CsgSlot, new: int, inp) -> None:
        if new not in CSG_STATE_NAMES:
            log.warning("CSG%d: invalid STATE %d requested", slot.index, new)
            return
        log.info("CSG%d %s -> %s (AS%d)", slot.index, CSG_STATE_NAMES[slot.state], CSG_STATE_NAMES[new],
                 inp["CSG_CONFIG"] & 0xF)
        self._emit(Kind.CSG_STATE, value=new, slot=slot.index, aux=inp["CSG_CONFIG"] & 0xF)
        slot.as_index = inp["CSG_CONFIG"] & 0xF
        slot.suspend_buf = inp["CSG_SUSPEND_BUF"]
        if new == START:
            for cs in slot.streams:
                cs.running = False
                cs.frames = []
                cs.wait = None
                cs.fatal = None
                cs.regs = [0] * len(cs.regs)
                cs.drop_jobs()
                cs.sb_blocked = False
            slot.state = START
        elif new == RESUME:
            try:
                # The whole buffer: its contents, not this slot's current streams, say how much is used.
                data = self.iface.aspace.read(slot.suspend_buf,
                                            self._csg(I.CSG_CONTROL, slot.index)["CSG_SUSPEND_SIZE"])
                suspend.restore(data, slot.streams)
            except (MmuFault, DmaError, ConstructError) as e:
                self._dma_bus_fault(e, slot, "RESUME")
                log.error("CSG%d RESUME: suspend buffer at MCU VA 0x%x unusable (%s); streams start afresh",
                          slot.index, slot.suspend_buf, e)
                for cs in slot.streams:
                    cs.running = False
            slot.state = RESUME
            for cs in slot.streams:
                if cs.running:
                    cs.ring = self._ring(slot.index, cs.index)
        elif new == SUSPEND:
            for cs in slot.streams:
                cs.finish_jobs()  # dispatches in flight complete before the state is saved
                cs.drain(-1)
            try:
                self.iface.aspace.write(slot.suspend_buf, suspend.save(slot.streams))
            except (MmuFault, DmaError) as e:
                self._dma_bus_fault(e, slot, "SUSPEND")
                log.error("CSG%d SUSPEND: cannot write the suspend buffer at MCU VA 0x%x: %s",
                          slot.index, slot.suspend_buf, e)
            slot.state = SUSPEND
        else:
            slot.state = TERMINATE
            for cs in slot.streams:
                cs.running = False
                cs.frames = []
                cs.pending = [[] for _ in cs.pending]
                cs.jobs = []
        slot.idle = False

    def _dma_bus_fault(self, e: Exception, slot: CsgSlot, what: str) -> None:
        """A suspend buffer that AS0 translates outside guest RAM is a GPU bus fault, as on
        hardware; an MMU fault was already reported by the address space."""
        if isinstance(e, DmaError) and self.bus_fault is not None:
            self.bus_fault(e.iova, f"CSG{slot.index} {what}: suspend buffer at MCU VA 0x{slot.suspend_buf:x}: {e}")

    def _ring(self, slot: int, stream: int) -> Ring:
        ci = self._cs(I.CS_INPUT, slot, stream)
        return Ring(ci["CS_RINGBUF_BASE"], ci["CS_RINGBUF_SIZE"], ci["CS_RINGBUF_INPUT"], ci["CS_RINGBUF_OUTPUT"])

    def _serve_cs_requests(self, slot: CsgSlot, fresh: bool) -> None:
        """CS requests; on a fresh START/RESUME, every stream asked to run starts (unless
        the suspend buffer brought it back already), whatever its old ACK says."""
        for cs in slot.streams:
            ci, co = self._cs(I.CS_INPUT, slot.index, cs.index), self._cs(I.CS_OUTPUT, slot.index, cs.index)
            req, ack = ci["CS_REQ"], co["CS_ACK"]
            changed = (req ^ ack) & I.CS_REQ_MASK
            if slot.running:
                # A stream the suspend buffer brought back keeps its place, even if the driver's
                # STOP (written at SUSPEND, acked by a later doorbell) makes START look new.
                if req & 0x7 == CS_STATE_START and (changed & 0x7 or fresh) and not cs.running:
                    self._start_stream(slot, cs)
                elif req & 0x7 == CS_STATE_STOP and changed & 0x7:
                    cs.running = False
                    self._emit(Kind.CS_STATE, value=0, slot=slot.index, stream=cs.index)
            if changed:
                co["CS_ACK"] = (ack & ~changed) | (req & changed)
                self._emit(Kind.IFACE, IfaceBlockId.CS, (ack & ~changed) | (req & changed), slot=slot.index,
                           stream=cs.index, aux=req)
        if slot.running:
            self._kick(slot)

    def _start_stream(self, slot: CsgSlot, cs: CommandStream) -> None:
        ring = self._ring(slot.index, cs.index)
        if ring.size < 8 or ring.size & (ring.size - 1):
            self.report_fatal(slot, cs, CsFatal(EXCEPTION["CS_CONFIG_FAULT"], ring.size, f"ring size 0x{ring.size:x} is not a power of two"))
            return
        extract = self.iface.aspace.read_u64(ring.input_va + 8)
        cs.start(ring, extract)
        self._emit(Kind.CS_STATE, ring.base, 1, slot=slot.index, stream=cs.index, aux=extract)
        log.info("CSG%d CS%d START: ring 0x%x size 0x%x, extract 0x%x", slot.index, cs.index,
                 ring.base, ring.size, extract)

    # -- reports -------------------------------------------------------------------------

    def status_update(self, slot: CsgSlot) -> None:
        for cs in slot.streams:
            co = self._cs(I.CS_OUTPUT, slot.index, cs.index)
            co["CS_STATUS_CMD_PTR"] = cs.cmd_ptr
            co["CS_STATUS_SCOREBOARDS"] = cs.pending_mask
            w: SyncWait | None = cs.wait
            if w is not None:
                co["CS_STATUS_WAIT"] = 1 << 31 | (1 << 30 if w.is64 else 0) | (w.cond & 0xF) << 24
                co["CS_STATUS_WAIT_SYNC_PTR"] = w.addr
                co["CS_STATUS_WAIT_SYNC_VALUE"] = w.value & 0xFFFFFFFF
                co["CS_STATUS_WAIT_SYNC_VALUE_HI"] = w.value >> 32
                co["CS_STATUS_BLOCKED_REASON"] = SYNC_WAIT
            else:
                co["CS_STATUS_WAIT"] = 0
                co["CS_STATUS_BLOCKED_REASON"] = SB_WAIT if cs.sb_blocked else UNBLOCKED
        self._csg(I.CSG_OUTPUT, slot.index)["CSG_STATUS_STATE"] = CSG_STATUS_STATE_IDLE if slot.idle else 0

    def _toggle_event(self, slot: CsgSlot, bit: int) -> None:
        inp, out = self._csg(I.CSG_INPUT, slot.index), self._csg(I.CSG_OUTPUT, slot.index)
        req, ack = inp["CSG_REQ"], out["CSG_ACK"]
        if (req ^ ack) & bit:
            return  # still pending on the host side: one event is enough
        out["CSG_ACK"] = ack ^ bit
        self.raised[CSG_EVENT_NAMES.get(bit, f"0x{bit:x}")] += 1
        self._emit(Kind.IFACE, IfaceBlockId.CSG, ack ^ bit, slot=slot.index, aux=req)
        if inp["CSG_ACK_IRQ_MASK"] & bit:
            self.job_irq.raise_bits(1 << slot.index)

    def report_busy(self, slot: CsgSlot) -> None:
        """A stream of the slot executed instructions: the next idle state is a new transition."""
        slot.idle = False

    def report_sync_update(self, slot: CsgSlot) -> None:
        self._toggle_event(slot, CSG_SYNC_UPDATE)

    def report_idle(self, slot: CsgSlot) -> None:
        if not slot.idle:
            slot.idle = True
            self._csg(I.CSG_OUTPUT, slot.index)["CSG_STATUS_STATE"] = CSG_STATUS_STATE_IDLE
            self._toggle_event(slot, CSG_IDLE)

    def report_fatal(self, slot: CsgSlot, cs: CommandStream, fatal: CsFatal) -> None:
        log.warning("CSG%d CS%d fatal: exception 0x%02x info 0x%x: %s", slot.index, cs.index,
                    fatal.exception_type, fatal.info, fatal.why)
        cs.fatal = fatal
        cs.running = False
        cs.drop_jobs()
        self._emit(Kind.CS_FATAL, value=fatal.exception_type, slot=slot.index, stream=cs.index, aux=fatal.info)
        co = self._cs(I.CS_OUTPUT, slot.index, cs.index)
        ci = self._cs(I.CS_INPUT, slot.index, cs.index)
        co["CS_FATAL"] = fatal.exception_type
        co["CS_FATAL_INFO"] = fatal.info
        req, ack = ci["CS_REQ"], co["CS_ACK"]
        if not (req ^ ack) & CS_FATAL_BIT:
            co["CS_ACK"] = ack ^ CS_FATAL_BIT
        out = self._csg(I.CSG_OUTPUT, slot.index)
        inp = self._csg(I.CSG_INPUT, slot.index)
        irq_req, irq_ack = out["CSG_IRQ_REQ"], inp["CSG_IRQ_ACK"]
        bit = 1 << cs.index
        if not (irq_req ^ irq_ack) & bit:
            out["CSG_IRQ_REQ"] = irq_req ^ bit
        self.job_irq.raise_bits(1 << slot.index)

    def reset(self) -> None:
        for slot in self.slots:
            slot.state = TERMINATE
            slot.idle = False
            for cs in slot.streams:
                cs.running = False
                cs.frames = []
                cs.wait = None
                cs.pending = [[] for _ in cs.pending]
                cs.jobs = []
