"""The engine: a worker thread that runs command streams in bounded slices.

Doorbells and CSG requests only mark work and kick the engine; register accesses never
wait for it. Each slice runs one stream for at most SLICE instructions with the device lock
held, then releases the lock, so an endless loop in one queue cannot starve the register
interface or the other queues of its CSG priority level (round-robin); a higher level runs
alone while it has work, as firmware schedules it — the driver's job timeout recovers. The
engine re-takes the lock only after every register access already waiting for it has had
its turn (DeviceLock.acquire_after_waiters), and keeps the GIL switch interval short, so a
server thread woken by its socket gets to ask for the lock within a fraction of a millisecond.
Blocked SYNC_WAITs are re-evaluated after every sync-object write by any stream and, since
the CPU can also write sync objects, on a short poll while any stream waits.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable, Sequence

from mali_base.aspace import AddressSpace
from mali_base.events import EventBus
from mali_base.faults import FaultInjector
from mali_base.pagetable import MmuFault
from mali_regs.enums import EXCEPTION, MCU_STATUS
from mcu.mcu import Mcu
from vdev.dma import DmaError

from .csg import CsgSlots
from .stream import EXC_CS_UNRECOVERABLE, CsFatal, Interpreter

EXC_GPU_BUS_FAULT = EXCEPTION["GPU_BUS_FAULT"]
MCU_ENABLED = MCU_STATUS["ENABLED"]

log = logging.getLogger("mali.engine")

SLICE = 256
POLL_S = 0.002
# A busy engine holds the GIL: a thread woken by I/O waits for it up to the switch interval
# (5 ms by default) before it can run a line. Forced switches only happen when some other
# thread wants to run, so a short interval costs the engine nothing while nobody does.
SWITCH_INTERVAL_S = 0.00005


class Engine:
    """`lock` is the device lock; `clock` gives STORE_STATE its timestamps and cycle counts
    (GPU_CONTROL's, so TIMESTAMP_OFFSET applies); `bus_fault(pa, why)` reports a GPU access
    outside guest RAM."""

    def __init__(self, lock, mcu: Mcu, csg_slots: CsgSlots, address_spaces: Sequence[AddressSpace],
                 clock, events: EventBus, faults: FaultInjector, bus_fault: Callable[[int, str], None]):
        self.lock = lock
        self.mcu = mcu
        self.csg_slots = csg_slots
        self.address_spaces = address_spaces
        self.clock = clock
        self.events = events
        self.faults = faults
        self._bus_fault = bus_fault
        self._kick = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.slices = 0
        self.instructions = 0
        self.busy_ns = 0   # time running streams (slices and their reports), lock held

    def start(self) -> None:
        if self._thread is None:
            if sys.getswitchinterval() > SWITCH_INTERVAL_S:
                sys.setswitchinterval(SWITCH_INTERVAL_S)
            self._thread = threading.Thread(target=self._loop, name="mali-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._kick.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def kick(self) -> None:
        """Wake the worker; from inside a server turn (a doorbell write), once the turn ends."""
        after_turn = getattr(self.lock, "call_after_turn", None)
        if after_turn is not None:
            after_turn(self._kick.set)
        else:
            self._kick.set()

    def _loop(self) -> None:
        while not self._stop:
            try:
                busy, waiting = self.run_once()
            except Exception:  # a bug outside any one stream: log it, keep the engine alive
                log.exception("internal error in the engine loop")
                busy, waiting = False, True
            if busy:
                continue
            self._kick.wait(POLL_S if waiting else None)
            self._kick.clear()

    def run_once(self) -> tuple[bool, bool]:
        """One round. Returns (more work, someone waits).

        As firmware schedules CSGs: strict priority between CSG priority levels
        (ENDPOINT_CONFIG), round-robin within one. A level whose streams are all idle,
        blocked on a sync object or faulted does not count, so lower levels run in the same
        round; a level where a stream still has work after its slice ends the round, and
        every stream of it has had one slice."""
        busy = waiting = False
        mcu = self.mcu
        lock = self.lock
        lock.acquire_after_waiters()
        try:
            if mcu.status != MCU_ENABLED:  # nothing runs without the firmware
                return False, False
            levels: dict[int, list] = {}
            for slot in self.csg_slots.slots:
                if slot.running:
                    for cs in slot.streams:
                        if cs.running and cs.frames:
                            levels.setdefault(slot.priority, []).append((slot, cs))
        finally:
            lock.release()
        for priority in sorted(levels, reverse=True):
            runnable = False
            for slot, cs in levels[priority]:
                lock.acquire_after_waiters()
                try:
                    if mcu.status != MCU_ENABLED or not (slot.running and cs.running and cs.frames):
                        continue  # changed while the lock was released
                    try:
                        t0 = time.monotonic_ns()
                        result, busy_s, waiting_s = self._run_stream(slot, cs)
                        self.busy_ns += time.monotonic_ns() - t0
                    except (MmuFault, DmaError) as e:  # the MCU's own side: its interface in AS0
                        mcu.interface_lost(e, f"while reporting on CSG{slot.index} CS{cs.index}")
                        return False, False
                finally:
                    lock.release()
                runnable = runnable or result == "budget"
                busy, waiting = busy or busy_s, waiting or waiting_s
            if runnable:
                break  # lower levels wait while this one has work
        return busy, waiting

    def _run_stream(self, slot, cs) -> tuple[str, bool, bool]:
        """One slice of one stream and the reports it leads to (under the device lock):
        (slice result, more work, someone waits)."""
        busy = waiting = False
        slots = self.csg_slots
        before, was_waiting, steps = cs.instructions, cs.wait is not None, cs.job_steps
        result = self._slice(slot, cs)
        # ran something (instructions or a dispatch step), or a wait completed
        if cs.instructions != before or cs.job_steps != steps or was_waiting and cs.wait is None:
            slots.report_busy(slot)
        if result == "budget":
            busy = True
        elif result == "blocked":
            waiting = True
        if cs.sync_dirty:
            cs.sync_dirty = False
            slots.report_sync_update(slot)
            busy = True  # other streams may be waiting on what was written
        if result in ("idle", "blocked", "fatal") and all(
                not s.running or not s.frames or s.wait is not None or s.fatal is not None
                or self._is_idle(s) for s in slot.streams):
            slots.report_idle(slot)
        return result, busy, waiting

    @staticmethod
    def _is_idle(cs) -> bool:
        f = cs.frames[0]
        return len(cs.frames) == 1 and f.pc == f.end and not cs.jobs

    def _slice(self, slot, cs) -> str:
        slots = self.csg_slots
        interp = Interpreter(self.mcu.aspace, self.clock, self.events, self.faults)
        aspace = self.address_spaces[slot.as_index]
        before = cs.instructions
        try:
            result = interp.run(cs, aspace, SLICE)
            interp.publish_extract(cs, result == "budget")
        except CsFatal as fatal:
            slots.report_fatal(slot, cs, fatal)
            result = "fatal"
        except MmuFault as fault:  # already reported to the driver by the MMU
            slots.report_fatal(slot, cs, CsFatal(fault.exception_type, fault.va & 0xFFFFFFFF,
                                                         f"GPU memory access: {fault}"))
            result = "fatal"
        except DmaError as e:  # a page table that maps a VA onto something that is not guest RAM
            self._bus_fault(e.iova, f"CSG{slot.index} CS{cs.index} through AS{slot.as_index}: {e}")
            slots.report_fatal(slot, cs, CsFatal(EXC_GPU_BUS_FAULT, e.iova & 0xFFFFFFFF, str(e)))
            result = "fatal"
        except Exception as e:  # a bug of ours: the driver sees an unrecoverable CS, we keep running
            log.exception("internal error running CSG%d CS%d", slot.index, cs.index)
            slots.report_fatal(slot, cs, CsFatal(EXC_CS_UNRECOVERABLE, 0, f"internal error: {e}"))
            result = "fatal"
        self.slices += 1
        self.instructions += cs.instructions - before
        return result
