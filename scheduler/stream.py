"""One command stream (a CS slot of a CSG) and the interpreter of its instructions.

Execution state: the register file, a stack of frames (the ring at the bottom, CALLed
buffers above it), scoreboard slots holding asynchronous work not yet completed, and the
reason the stream is blocked, if it is. Every memory access goes through the group's
address space, so a bad address is a real MMU fault (reported by the MMU) and a CS fatal.

Asynchronous instructions (FLUSH_CACHE2, SYNC_ADD/SET, STORE_STATE, HEAP_OPERATION,
TRACE_POINT, FINISH_FRAGMENT) first wait for the scoreboard slots in their wait mask, then are
queued on their signal slot; endpoint work (RUN_FRAGMENT) is queued on the slot SET_SB_ENTRY
selected. WAIT completes the slots it names, and a stream that runs out of work completes
all of them. So scoreboards really order the work, as on hardware, with zero latency.

RUN_COMPUTE queues a dispatch on the endpoint scoreboard entry (SET_SB_ENTRY). A dispatch
runs in bounded steps at the start of each slice; until it is done its entry stays busy:
work queued behind it waits, and an instruction that must drain the entry (WAIT, a SYNC
deferred on it) waits too, retried after the next step (blocked reason SB_WAIT).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from fragment import FragmentFault, FragmentJob, run_fragment
from mali_base.events import Kind
from mali_base.pagetable import ACCESS_READ, ACCESS_WRITE
from mali_regs.descriptors import FRAGMENT_SR
from mali_regs.enums import EXCEPTION
from shader.interp import ShaderFault

from . import compiled, dispatch, isa, job_trace
from .isa import Op

if TYPE_CHECKING:
    from mali_base.aspace import AddressSpace

log = logging.getLogger("mali.cs")

# CS fault/fatal exception types (drm_panthor_exception_type)
EXC_CS_INSTR_INVALID = EXCEPTION["CS_INSTR_INVALID"]
EXC_CALL_STACK_OVERFLOW = EXCEPTION["CS_CALL_STACK_OVERFLOW"]
EXC_INSTR_INVALID_PC = EXCEPTION["INSTR_INVALID_PC"]
EXC_CS_UNRECOVERABLE = EXCEPTION["CS_UNRECOVERABLE"]

MAX_CALL_DEPTH = 8

# CS_STATUS_BLOCKED_REASON
UNBLOCKED, SB_WAIT, PROGRESS_WAIT, SYNC_WAIT, DEFERRED, RESOURCE, FLUSH = range(7)


class ScoreboardBusy(Exception):
    """An instruction must wait for a scoreboard entry whose dispatch is still running."""


class CsFatal(Exception):
    def __init__(self, exception_type: int, info: int, why: str):
        super().__init__(why)
        self.exception_type = exception_type
        self.info = info
        self.why = why


@dataclass(slots=True)
class Frame:
    """Where a level of the call stack fetches from. The ring frame's pc is the extract offset."""

    ring: bool
    pc: int
    end: int


@dataclass
class SyncWait:
    addr: int
    value: int
    is64: bool
    cond: int           # 0 LE (wait while <=), 1 GT: see satisfied()
    error_reject: bool

    def satisfied(self, current: int) -> bool:
        # SYNC_WAIT cond GT: proceed once [addr] > value; LE: once [addr] <= value.
        return current > self.value if self.cond == 1 else current <= self.value


@dataclass
class Ring:
    base: int = 0          # GPU VA in the group's address space
    size: int = 0
    input_va: int = 0      # MCU VA (AS0) of the insert/extract page
    output_va: int = 0     # MCU VA of the output extract/active page


class CommandStream:
    def __init__(self, slot: int, index: int, reg_count: int, scoreboards: int):
        self.slot = slot
        self.index = index
        self.regs = [0] * reg_count
        self.scoreboards = scoreboards
        self.pending: list[list[Callable[[], None]]] = [[] for _ in range(scoreboards)]
        self.frames: list[Frame] = []
        self.ring = Ring()
        self.running = False       # CS_REQ STATE=START and the group is on a slot
        self.wait: SyncWait | None = None
        self.fatal: CsFatal | None = None
        self.progress = 0
        self.instructions = 0
        self.error = 0             # error state propagated to sync objects
        self.heap = 0
        self.exception_handlers: dict[int, tuple[int, int]] = {}
        self.sync_dirty = False    # a sync object was written since the CSG last reported it
        self.sb_endpoint = 0       # SET_SB_ENTRY: the slot RUN_* work signals
        self.sb_other = 0          # ... and the one other asynchronous work uses (synchronous here)
        self.last_fragment: list[str] = []  # the last RUN_FRAGMENT's descriptors, decoded
        self.last_compute: list[str] = []   # the last RUN_COMPUTE: sizes, descriptors, first instructions
        self.jobs: list = []       # dispatches still running, oldest first (also queued in pending)
        self.sb_blocked = False    # the current instruction waits for a busy scoreboard entry
        self.job_steps = 0

    # -- registers ---------------------------------------------------------------------

    def r(self, n: int) -> int:
        if n >= len(self.regs):
            raise CsFatal(EXC_CS_INSTR_INVALID, n, f"register r{n} beyond the {len(self.regs)} CS registers")
        return self.regs[n]

    def d(self, n: int) -> int:
        return self.r(n) | self.r(n + 1) << 32

    def set_r(self, n: int, v: int) -> None:
        self.r(n)
        self.regs[n] = v & 0xFFFFFFFF

    def set_d(self, n: int, v: int) -> None:
        self.set_r(n, v)
        self.set_r(n + 1, v >> 32)

    # -- state ---------------------------------------------------------------------------

    @property
    def cmd_ptr(self) -> int:
        if not self.frames:
            return 0
        f = self.frames[-1]
        return self.ring.base + (f.pc & (self.ring.size - 1)) if f.ring else f.pc

    @property
    def pending_mask(self) -> int:
        return sum(1 << i for i, q in enumerate(self.pending) if q)

    def signal(self, slot: int, work: Callable[[], None]) -> None:
        """Queue asynchronous work on scoreboard slot `slot` (the instruction's signal_slot)."""
        if slot >= len(self.pending):
            raise CsFatal(EXC_CS_INSTR_INVALID, slot,
                          f"signal slot {slot} beyond the {len(self.pending)} scoreboard entries")
        self.pending[slot].append(work)

    def drain(self, mask: int, wait: bool = True) -> None:
        """Complete the asynchronous work queued on the scoreboard slots in `mask`. A dispatch
        still running holds its slot there (what is behind it stays queued) and, with `wait`,
        raises ScoreboardBusy: the instruction waits for it."""
        busy = False
        for i, q in enumerate(self.pending):
            if mask & (1 << i) and q:
                while q:
                    op = q[0]
                    if isinstance(op, dispatch.AsyncDispatch):
                        if not op.done:
                            busy = True
                            break
                        q.pop(0)
                        continue
                    q.pop(0)
                    op()
        if busy and wait:
            raise ScoreboardBusy()

    def run_jobs(self, budget: int) -> None:
        """Advance the oldest running dispatch by `budget` shader-core instructions."""
        while self.jobs and budget > 0:
            job = self.jobs[0]
            try:
                done = job.step(budget)
            except BaseException:
                self.drop_jobs()
                raise
            self.job_steps += 1
            if not done:
                return
            self.jobs.pop(0)
            budget = 0

    def finish_jobs(self) -> None:
        """Run every dispatch to its end (the group is being suspended)."""
        for job in self.jobs:
            job.finish()
        self.jobs = []

    def drop_jobs(self) -> None:
        self.jobs = []
        self.pending = [[w for w in q if not isinstance(w, dispatch.AsyncDispatch)] for q in self.pending]

    def start(self, ring: Ring, extract: int) -> None:
        self.ring = ring
        self.frames = [Frame(True, extract, extract)]
        self.running = True
        self.fatal = None
        self.wait = None


class Interpreter:
    """Executes one stream's instructions against its group's address space."""

    def __init__(self, mcu_as: "AddressSpace", clock, events=None, faults=None):
        self.mcu_as = mcu_as
        self.faults = faults if faults else None
        self.clock = clock  # timestamps and cycle counts for STORE_STATE
        # The bus only if some sink wants CS_INSTR events: other kinds cost the loop nothing.
        self.events = events if events is not None and Kind.CS_INSTR in events.wants else None
        self.job_events = events if events is not None and Kind.JOB in events.wants else None

    # -- ring pointers (MCU side, AS0) ----------------------------------------------------

    def insert(self, cs: CommandStream) -> int:
        return self.mcu_as.read_u64(cs.ring.input_va)

    def publish_extract(self, cs: CommandStream, active: bool) -> None:
        ring_frame = cs.frames[0] if cs.frames else None
        if ring_frame is not None:
            self.mcu_as.write_u64(cs.ring.output_va, ring_frame.pc)
        self.mcu_as.write_u32(cs.ring.output_va + 8, 1 if active else 0)

    # -- execution -----------------------------------------------------------------------

    def run(self, cs: CommandStream, aspace: "AddressSpace", budget: int) -> str:
        """Run up to `budget` instructions: 'idle', 'blocked' or 'budget' (raises CsFatal, MmuFault).

        Asynchronous work still queued when the slice ends completes with it: zero latency,
        but only after everything the stream ordered before it.

        The hot loop keeps the frame's pc in a local (written back on every way out), fetches
        through the address space's per-page word views and runs register-only instructions
        as compiled closures; everything else goes through the handler table."""
        if cs.jobs:
            try:
                cs.run_jobs(dispatch.JOB_STEP)
            except ShaderFault as e:
                raise CsFatal(e.exception_type, e.info, f"shader core: {e.why}") from None
            if cs.sb_blocked and cs.jobs:
                return "budget"
        cs.sb_blocked = False
        if cs.wait is not None:
            if not self._wait_done(cs, aspace):
                return "budget" if cs.jobs else "blocked"  # a dispatch in flight keeps running
            self._wait_error(cs, aspace)
            cs.wait = None
            self._advance(cs)
        regs = cs.regs
        nregs = len(regs)
        fast = compiled.table(nregs)
        frames = cs.frames
        ring = cs.ring
        rbase, rsize = ring.base, ring.size
        rmask = rsize - 1
        # Per-instruction work only when someone asked for it: injected faults, debug
        # logging. Checked once per slice (all of them change under the lock). A CS_INSTR
        # sink alone keeps the fast path: executed instructions are recorded into `rec`
        # (va, raw, ...), which the bus holds: any other event hands them over first.
        trace = self.faults is not None or log.isEnabledFor(logging.DEBUG)
        events = self.events
        rec = [] if events is not None and not trace else None
        if rec is not None:
            events.hold(rec, cs.slot, cs.index)  # any event of this run hands `rec` over first
        page, words = -1, None
        left, n = budget, 0
        f, pc = None, 0
        try:
            while left > 0:
                f = frames[-1]
                pc, end, in_ring = f.pc, f.end, f.ring
                while left > 0:
                    left -= 1
                    if in_ring:
                        if pc == end:
                            end = f.end = self.insert(cs)
                            if pc == end:
                                cs.drain(-1, wait=False)
                                return "budget" if cs.jobs else "idle"
                            if (end - pc) & 7 or not 0 < end - pc <= rsize:
                                raise CsFatal(EXC_INSTR_INVALID_PC, end,
                                              f"ring insert 0x{end:x} is not a whole number of instructions past extract "
                                              f"0x{pc:x} within the 0x{rsize:x}-byte ring")
                        va = rbase + (pc & rmask)
                    elif pc >= end:
                        frames.pop()
                        f = None
                        break
                    else:
                        va = pc
                    # The command-stream front end reads instructions as data: panthor maps rings no-exec.
                    if va >> 12 != page:
                        words = aspace.words(va) if not va & 7 else None
                        page = va >> 12
                    if words is not None and not trace:
                        # A window of this page where pc maps linearly onto word j: up to the
                        # ring's insert point and wrap, down to its start. Compiled instructions
                        # run here back to back, branches included, until one leaves it.
                        j = (va >> 3) & 511
                        if in_ring:
                            off = pc & rmask
                            jlo = j - (off >> 3)
                            jhi = j + (min(end - pc, rsize - off) >> 3)
                        else:
                            jlo, jhi = 0, j + ((end - pc) >> 3)
                        if j < jhi:
                            jlo = jlo if jlo > 0 else 0
                            jhi = jhi if jhi < 512 else 512
                            base = pc - (j << 3)
                            k, nmax = n, n + left + 1
                            if rec is None:
                                while True:
                                    h = fast.get(words[j])
                                    if h is None:
                                        break
                                    step = h(regs)
                                    if not step:
                                        break
                                    n += 1
                                    j += step >> 3
                                    if n == nmax or not jlo <= j < jhi:
                                        break
                            else:  # the same loop, recording what it runs
                                vbase = va - (j << 3)
                                while True:
                                    w = words[j]
                                    h = fast.get(w)
                                    if h is None:
                                        break
                                    step = h(regs)
                                    if not step:
                                        break
                                    rec += (vbase + (j << 3), w)
                                    n += 1
                                    j += step >> 3
                                    if n == nmax or not jlo <= j < jhi:
                                        break
                            pc = base + (j << 3)
                            if n != k:
                                left -= n - k - 1  # this iteration's 1 is already taken
                                continue
                    if words is not None:
                        raw = words[(va >> 3) & 511]
                    else:
                        raw = int.from_bytes(aspace.read(va, 8, ACCESS_READ), "little")
                    h = fast.get(raw)
                    if h is None:
                        h = compiled.lookup(fast, self._decode(raw, va), nregs)
                    if trace:
                        self._trace(cs, raw, va)
                        page = -1  # re-translate every fetch: an armed injection sees each one
                    n += 1
                    step = h(regs)
                    if step:
                        if rec is not None:
                            rec += (va, raw)
                        pc += step
                        continue
                    if rec is not None:  # its event before whatever it does (bus.hold)
                        rec += (va, raw)
                    # Through the handler table: it may jump, call, block or touch memory.
                    f.pc = pc
                    f = None
                    page = -1
                    try:
                        advance = self._execute(cs, aspace, isa.decode(raw), va)
                    except ScoreboardBusy:
                        cs.sb_blocked = True
                        cs.drain(-1, wait=False)
                        return "budget"
                    if advance:
                        self._advance(cs)
                    elif cs.wait is not None:
                        cs.drain(-1, wait=False)
                        return "budget" if cs.jobs else "blocked"
                    break
        finally:
            if f is not None:
                f.pc = pc
            cs.instructions += n
            if rec is not None:
                events.release()
        cs.drain(-1, wait=False)
        return "budget"

    @staticmethod
    def _decode(raw: int, va: int) -> isa.Instr:
        try:
            return isa.decode(raw)
        except isa.InvalidInstruction as e:
            raise CsFatal(EXC_CS_INSTR_INVALID, raw & 0xFFFFFFFF,
                          f"invalid instruction 0x{raw:016x} at 0x{va:x}: {e.reason}") from None

    def _trace(self, cs: CommandStream, raw: int, va: int) -> None:
        if self.faults is not None:
            inj = self.faults.take("cs_fatal", slot=cs.slot)
            if inj is not None:
                raise CsFatal(inj.params.get("exception", EXC_CS_UNRECOVERABLE), raw & 0xFFFFFFFF,
                              f"injected CS fatal at 0x{va:x}")
        if self.events is not None:
            self.events.emit(Kind.CS_INSTR, va, raw, slot=cs.slot, stream=cs.index)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("CSG%d CS%d 0x%x: %s", cs.slot, cs.index, va, isa.disassemble(isa.decode(raw)))

    def _advance(self, cs: CommandStream) -> None:
        cs.frames[-1].pc += 8

    @staticmethod
    def _wait_error(cs: CommandStream, aspace) -> None:
        """error_reject: a satisfied wait on a sync object carrying an error takes the error on."""
        w = cs.wait
        if w.error_reject:
            status = aspace.read_u32(w.addr + (8 if w.is64 else 4))
            if status:
                cs.error = status

    def _wait_done(self, cs: CommandStream, aspace) -> bool:
        w = cs.wait
        size = 8 if w.is64 else 4
        current = int.from_bytes(aspace.read(w.addr, size), "little")
        return w.satisfied(current)

    def _execute(self, cs: CommandStream, aspace, ins: isa.Instr, va: int) -> bool:
        """Execute one instruction; False if the pc must not advance (blocked or jumped)."""
        handler = _HANDLERS.get(ins.op)
        if handler is not None:
            return handler(self, cs, aspace, ins, va)
        op = ins.op
        if op.name.startswith(("RUN_", "FINISH_TILING")):
            raise CsFatal(EXC_CS_INSTR_INVALID, int(op),
                          f"{op.name} at 0x{va:x} needs shader cores, which this virtual GPU does not emulate yet")
        raise CsFatal(EXC_CS_INSTR_INVALID, int(op), f"{op.name} at 0x{va:x} is not implemented")

    # -- the handler table: one small function per opcode, True if the pc advances --------

    def _op_nop(self, cs, aspace, ins, va) -> bool:
        return True

    def _op_move48(self, cs, aspace, ins, va) -> bool:
        cs.set_d(ins.dst, ins.imm)
        return True

    def _op_move32(self, cs, aspace, ins, va) -> bool:
        cs.set_r(ins.dst, ins.imm)
        return True

    def _op_add_imm32(self, cs, aspace, ins, va) -> bool:
        cs.set_r(ins.dst, cs.r(ins.src) + ins.imm)
        return True

    def _op_add_imm64(self, cs, aspace, ins, va) -> bool:
        cs.set_d(ins.dst, cs.d(ins.src) + ins.imm)
        return True

    def _op_umin32(self, cs, aspace, ins, va) -> bool:
        cs.set_r(ins.dst, min(cs.r(ins.src0), cs.r(ins.src1)))
        return True

    def _op_wait(self, cs, aspace, ins, va) -> bool:
        cs.drain(ins.wait_mask)
        cs.progress += ins.progress_inc
        return True

    def _op_load_multiple(self, cs, aspace, ins, va) -> bool:
        self._load_multiple(cs, aspace, ins)
        return True

    def _op_store_multiple(self, cs, aspace, ins, va) -> bool:
        self._store_multiple(cs, aspace, ins)
        return True

    def _op_branch(self, cs, aspace, ins, va) -> bool:
        if self._condition(ins.cond, cs.r(ins.value)):
            cs.frames[-1].pc += 8 + 8 * ins.offset
            return False
        return True

    def _op_call(self, cs, aspace, ins, va) -> bool:
        return self._call(cs, ins, False, va)

    def _op_jump(self, cs, aspace, ins, va) -> bool:
        return self._call(cs, ins, True, va)

    def _op_flush_cache2(self, cs, aspace, ins, va) -> bool:
        cs.drain(ins.wait_mask)
        cs.signal(ins.signal_slot, _nothing)  # caches are coherent here
        return True

    def _op_sync_update(self, cs, aspace, ins, va) -> bool:
        self._sync_update(cs, aspace, ins)
        return True

    def _op_sync_wait(self, cs, aspace, ins, va) -> bool:
        is64 = ins.op == Op.SYNC_WAIT64
        cs.wait = SyncWait(cs.d(ins.addr), cs.d(ins.data) if is64 else cs.r(ins.data),
                           is64, ins.cond, bool(ins.error_reject))
        if self._wait_done(cs, aspace):
            self._wait_error(cs, aspace)
            cs.wait = None
            return True
        return False

    def _op_store_state(self, cs, aspace, ins, va) -> bool:
        self._store_state(cs, aspace, ins)
        return True

    def _op_progress_store(self, cs, aspace, ins, va) -> bool:
        cs.set_d(ins.src, cs.progress)  # the progress counter is 64-bit
        return True

    def _op_progress_load(self, cs, aspace, ins, va) -> bool:
        cs.progress = cs.d(ins.dst)
        return True

    def _op_error_barrier(self, cs, aspace, ins, va) -> bool:
        cs.drain(-1)
        cs.error = 0
        return True

    def _op_heap_set(self, cs, aspace, ins, va) -> bool:
        cs.heap = cs.d(ins.addr)
        return True

    def _op_heap_operation(self, cs, aspace, ins, va) -> bool:
        cs.drain(ins.wait_mask)
        cs.signal(ins.signal_slot, _nothing)
        return True

    def _op_trace_point(self, cs, aspace, ins, va) -> bool:
        cs.drain(ins.wait_mask)
        log.info("CSG%d CS%d TRACE_POINT r%d..r%d = %s", cs.slot, cs.index, ins.base, ins.base + ins.count - 1,
                 [hex(cs.r(ins.base + i)) for i in range(ins.count)])
        cs.signal(ins.signal_slot, _nothing)
        return True

    def _op_set_sb_entry(self, cs, aspace, ins, va) -> bool:
        cs.sb_endpoint, cs.sb_other = ins.endpoint_entry, ins.other_entry
        return True

    def _op_run_compute(self, cs, aspace, ins, va) -> bool:
        try:
            job = dispatch.AsyncDispatch(aspace, dispatch.compute_args(cs, ins), f"{ins.op.name} at 0x{va:x}")
        except ShaderFault as e:
            raise CsFatal(e.exception_type, e.info, f"{ins.op.name} at 0x{va:x}: {e.why}") from None
        cs.signal(cs.sb_endpoint, job)
        cs.jobs.append(job)
        cs.last_compute = job.describe()
        if self.job_events is not None:
            job_trace.record(self.job_events, cs, ins.op, ins.raw, va, aspace)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("CSG%d CS%d %s", cs.slot, cs.index, "\n  ".join(cs.last_compute))
        return True

    def _op_run_fragment(self, cs, aspace, ins, va) -> bool:
        """The job reads the staging registers now and runs when its scoreboard slot completes."""
        if ins.enable_tem:
            raise CsFatal(EXC_CS_INSTR_INVALID, int(ins.op), f"RUN_FRAGMENT at 0x{va:x}: Enable TEM (a tile "
                          "enable map) is not emulated by this virtual GPU")
        job = FragmentJob(cs.d(FRAGMENT_SR["FBD_POINTER"]), cs.r(FRAGMENT_SR["BBOX_MIN"]),
                          cs.r(FRAGMENT_SR["BBOX_MAX"]))
        progress = ins.progress_inc
        events = self.job_events
        regs = job_trace.registers(cs) if events is not None else None

        def work():
            try:
                fb = run_fragment(aspace, job)
            except FragmentFault as e:
                raise CsFatal(e.exception_type, e.info, f"RUN_FRAGMENT at 0x{va:x}: {e.why}") from None
            cs.last_fragment = fb.lines()
            if events is not None:
                job_trace.record(events, cs, ins.op, ins.raw, va, aspace, regs)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("CSG%d CS%d RUN_FRAGMENT at 0x%x:\n%s", cs.slot, cs.index, va, "\n".join(cs.last_fragment))
            cs.progress += progress
        cs.signal(cs.sb_endpoint, work)
        return True

    def _op_finish_fragment(self, cs, aspace, ins, va) -> bool:
        """Ends a fragment pass: with no tiler emulated no heap chunks were handed out, so there
        are none to release and no completed-fragment count for a tiler OOM handler to read."""
        cs.drain(ins.wait_mask)
        cs.signal(ins.signal_slot, _nothing)
        return True

    def _op_set_exception_handler(self, cs, aspace, ins, va) -> bool:
        cs.exception_handlers[ins.exception_type] = (cs.d(ins.addr), cs.r(ins.length))
        return True

    @staticmethod
    def _condition(cond: int, v: int) -> bool:
        s = v - (1 << 32) if v & 0x80000000 else v  # conditions compare the signed value with 0
        return (s <= 0, s > 0, s == 0, s != 0, s < 0, s >= 0, True, False)[cond & 7]

    def _call(self, cs: CommandStream, ins, jump: bool, va: int) -> bool:
        target, length = cs.d(ins.addr), cs.r(ins.length)
        if target & 7 or length & 7:
            raise CsFatal(EXC_INSTR_INVALID_PC, target,
                          f"{'JUMP' if jump else 'CALL'} at 0x{va:x} to 0x{target:x} length {length}: not 8-byte aligned")
        if jump:
            if cs.frames[-1].ring:
                raise CsFatal(EXC_INSTR_INVALID_PC, target, f"JUMP at 0x{va:x} from the ring itself")
            cs.frames[-1] = Frame(False, target, target + length)
            return False
        if len(cs.frames) > MAX_CALL_DEPTH:
            raise CsFatal(EXC_CALL_STACK_OVERFLOW, len(cs.frames),
                          f"CALL at 0x{va:x} exceeds the call depth of {MAX_CALL_DEPTH}")
        self._advance(cs)  # return address
        cs.frames.append(Frame(False, target, target + length))
        return False

    # Fields are read once into locals: each Instr field is a property lookup.

    def _load_multiple(self, cs: CommandStream, aspace, ins) -> None:
        base_va = cs.d(ins.addr) + ins.offset
        mask, base = ins.mask, ins.base
        if not mask:
            return
        top = mask.bit_length()
        data = aspace.read(base_va, 4 * top, ACCESS_READ)
        regs = cs.regs
        if base + top > len(regs):  # names a register beyond the file: the fatal says which
            for i in range(top):
                if mask >> i & 1:
                    cs.set_r(base + i, int.from_bytes(data[4 * i:4 * i + 4], "little"))
            return
        for i in range(top):
            if mask >> i & 1:
                regs[base + i] = int.from_bytes(data[4 * i:4 * i + 4], "little")

    def _store_multiple(self, cs: CommandStream, aspace, ins) -> None:
        base_va = cs.d(ins.addr) + ins.offset
        mask, base = ins.mask, ins.base
        for i in range(mask.bit_length()):
            if mask >> i & 1:
                aspace.write_u32(base_va + 4 * i, cs.r(base + i))

    def _store_state(self, cs: CommandStream, aspace, ins) -> None:
        cs.drain(ins.wait_mask)
        addr = cs.d(ins.addr) + ins.offset
        state = ins.state
        value = {0: self.clock.timestamp, 1: self.clock.cycles}.get(state)
        v = value() if value else (cs.error if state == 3 else 0)

        def store():
            aspace.write_u64(addr, v)
        cs.signal(ins.signal_slot, store)

    def _sync_update(self, cs: CommandStream, aspace, ins) -> None:
        cs.drain(ins.wait_mask)
        is64 = ins.op in (Op.SYNC_ADD64, Op.SYNC_SET64)
        add = ins.op in (Op.SYNC_ADD32, Op.SYNC_ADD64)
        addr = cs.d(ins.addr)
        data = cs.d(ins.data) if is64 else cs.r(ins.data)
        size = 8 if is64 else 4
        mask = (1 << (8 * size)) - 1
        error = cs.error if ins.error_propagate else 0

        def update():
            if not add:  # a SET to a bad address is a write fault, as before it read anything
                aspace.translate(addr, ACCESS_WRITE)
            old = aspace.read_u64(addr) if is64 else aspace.read_u32(addr)
            old_error = aspace.read_u32(addr + size)
            value = (old + data) & mask if add else data
            if is64:
                aspace.write_u64(addr, value)
            else:
                aspace.write_u32(addr, value)
            aspace.write_u32(addr + size, error)  # the sync object's error/status word
            if value != old or error != old_error:  # SYNC_UPDATE only for a real change
                cs.sync_dirty = True
        cs.signal(ins.signal_slot, update)


def _nothing() -> None:
    pass


_HANDLERS: dict[Op, Callable[..., bool]] = {
    Op.NOP: Interpreter._op_nop,
    Op.MOVE48: Interpreter._op_move48,
    Op.MOVE32: Interpreter._op_move32,
    Op.ADD_IMM32: Interpreter._op_add_imm32,
    Op.ADD_IMM64: Interpreter._op_add_imm64,
    Op.UMIN32: Interpreter._op_umin32,
    Op.WAIT: Interpreter._op_wait,
    Op.LOAD_MULTIPLE: Interpreter._op_load_multiple,
    Op.STORE_MULTIPLE: Interpreter._op_store_multiple,
    Op.BRANCH: Interpreter._op_branch,
    Op.CALL: Interpreter._op_call,
    Op.JUMP: Interpreter._op_jump,
    Op.FLUSH_CACHE2: Interpreter._op_flush_cache2,
    Op.SYNC_ADD32: Interpreter._op_sync_update,
    Op.SYNC_SET32: Interpreter._op_sync_update,
    Op.SYNC_ADD64: Interpreter._op_sync_update,
    Op.SYNC_SET64: Interpreter._op_sync_update,
    Op.SYNC_WAIT32: Interpreter._op_sync_wait,
    Op.SYNC_WAIT64: Interpreter._op_sync_wait,
    Op.STORE_STATE: Interpreter._op_store_state,
    Op.PROGRESS_STORE: Interpreter._op_progress_store,
    Op.PROGRESS_LOAD: Interpreter._op_progress_load,
    Op.ERROR_BARRIER: Interpreter._op_error_barrier,
    Op.HEAP_SET: Interpreter._op_heap_set,
    Op.HEAP_OPERATION: Interpreter._op_heap_operation,
    Op.TRACE_POINT: Interpreter._op_trace_point,
    Op.SET_EXCEPTION_HANDLER: Interpreter._op_set_exception_handler,
    Op.SET_SB_ENTRY: Interpreter._op_set_sb_entry,
    Op.RUN_COMPUTE: Interpreter._op_run_compute,
    Op.RUN_COMPUTE_INDIRECT: Interpreter._op_run_compute,  # job size from SR37-39 as well (not verified)
    Op.RUN_FRAGMENT: Interpreter._op_run_fragment,
    Op.FINISH_FRAGMENT: Interpreter._op_finish_fragment,
    # resources are always available; no protected mode
    Op.REQ_RESOURCE: Interpreter._op_nop,
    Op.PROT_REGION: Interpreter._op_nop,
    Op.PROGRESS_WAIT: Interpreter._op_nop,
}
