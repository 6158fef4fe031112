"""Shader-core jobs in the trace: what a RUN_COMPUTE / RUN_FRAGMENT read, so a trace can show
each dispatch decoded long after guest memory has changed (`mali-vdev trace show --jobs`).

When a sink listens, each job is recorded as JOB_DATA events — its staging registers
(aux=1: addr = register, value) and the memory its decode read (descriptors, the first
shader words; addr = VA, value = up to 8 little-endian bytes, width = how many) — then one
JOB event (addr = VA of the RUN_* instruction, value = the instruction) that closes it.
Recording and replay run the same decoder, `describe()`, over a different memory: the live
address space (recorded as it is read) or the recorded bytes.
"""

from __future__ import annotations

from fragment.fbd import read as read_framebuffer
from mali_base.events import Kind
from mali_base.pagetable import ACCESS_READ
from mali_regs.descriptors import FRAGMENT_SR
from shader.compute import ComputeJob

from . import dispatch, isa

REGISTER = 1           # JOB_DATA aux: a staging register, not memory
STAGING = range(48)    # RUN_COMPUTE reads r0-r39, RUN_FRAGMENT r40-r47
MAX_BYTES = 256        # per read: a descriptor, or the first 32 shader instructions
SHOWN_INSTRUCTIONS = 8


class _Registers:
    """The `cs.r()/cs.d()` that dispatch.compute_args reads, over recorded values."""

    def __init__(self, values: dict[int, int]):
        self.values = values

    def r(self, n: int) -> int:
        return self.values.get(n, 0)

    def d(self, n: int) -> int:
        return self.r(n) | self.r(n + 1) << 32


class RecordingSpace:
    """An address space whose reads are also kept (the first MAX_BYTES of each)."""

    def __init__(self, aspace):
        self._aspace = aspace
        self.reads: list[tuple[int, bytes]] = []

    def read(self, va: int, size: int, access: int = ACCESS_READ) -> bytes:
        data = self._aspace.read(va, size, access)
        self.reads.append((va, bytes(data[:MAX_BYTES])))
        return data

    def __getattr__(self, name):
        return getattr(self._aspace, name)


class SnapshotSpace:
    """Recorded bytes as an address space; bytes never recorded read as zero (a zero word
    disassembles as an invalid encoding, so nothing is made up)."""

    def __init__(self, memory: dict[int, int]):
        self.memory = memory

    def read(self, va: int, size: int, access: int = ACCESS_READ) -> bytes:
        m = self.memory
        return bytes(m.get(va + i, 0) for i in range(size))


# The instructions a JOB event may close (what `record` is called for).
JOB_OPS = frozenset({isa.Op.RUN_COMPUTE, isa.Op.RUN_COMPUTE_INDIRECT, isa.Op.RUN_FRAGMENT})


def describe(op: isa.Op, raw: int, registers, space) -> list[str]:
    """The job decoded: sizes, descriptors, the shader's first instructions (compute) or the
    framebuffer and render targets (fragment)."""
    try:
        if op in (isa.Op.RUN_COMPUTE, isa.Op.RUN_COMPUTE_INDIRECT):
            job = ComputeJob(space, dispatch.compute_args(registers, isa.decode(raw)))
            return job.describe(SHOWN_INSTRUCTIONS)
        if op == isa.Op.RUN_FRAGMENT:
            bmin, bmax = registers.r(FRAGMENT_SR["BBOX_MIN"]), registers.r(FRAGMENT_SR["BBOX_MAX"])
            box = (f"bbox ({bmin & 0xFFFF},{bmin >> 16})-({bmax & 0xFFFF},{bmax >> 16})")
            return [box] + read_framebuffer(space, registers.d(FRAGMENT_SR["FBD_POINTER"])).lines()
    except Exception as e:  # a job that faulted, or a trace cut short: say so, don't guess
        return [f"(cannot decode: {e})"]
    return []


def registers(cs) -> _Registers:
    """The staging registers now (a fragment job runs later, when its scoreboard entry does)."""
    return _Registers({n: cs.r(n) for n in STAGING})


def record(events, cs, op: isa.Op, raw: int, va: int, aspace, regs: _Registers | None = None) -> None:
    """Emit one job's JOB_DATA and JOB events (call only after the job read its memory
    without a fault, so recording cannot raise a second fault report)."""
    regs = regs or registers(cs)
    rec = RecordingSpace(aspace)
    describe(op, raw, regs, rec)
    slot, stream = cs.slot, cs.index
    for n in STAGING:
        events.emit(Kind.JOB_DATA, n, regs.r(n), slot=slot, stream=stream, aux=REGISTER)
    seen: set[int] = set()
    for base, data in rec.reads:
        for off in range(0, len(data), 8):
            if base + off in seen:
                continue
            seen.add(base + off)
            chunk = data[off:off + 8]
            events.emit(Kind.JOB_DATA, base + off, int.from_bytes(chunk, "little"), width=len(chunk),
                        slot=slot, stream=stream)
    events.emit(Kind.JOB, va, raw, slot=slot, stream=stream)


class JobReplay:
    """Collects JOB_DATA per stream; `job(ev)` decodes the job a JOB event closes."""

    def __init__(self):
        self._pending: dict[tuple[int, int], tuple[dict[int, int], dict[int, int]]] = {}

    def data(self, ev) -> None:
        regs, memory = self._pending.setdefault((ev.slot, ev.stream), ({}, {}))
        if ev.aux == REGISTER:
            regs[ev.addr] = ev.value & 0xFFFFFFFF
        else:
            for i, b in enumerate(ev.value.to_bytes(8, "little")[:ev.width]):
                memory[ev.addr + i] = b

    def job(self, ev) -> tuple[str, list[str]]:
        regs, memory = self._pending.pop((ev.slot, ev.stream), ({}, {}))
        try:
            op = isa.decode(ev.value).op
        except isa.InvalidInstruction as e:  # a damaged or hand-made trace: say what it holds
            return "INVALID", [f"(not a job instruction: 0x{ev.value:016x}: {e.reason})"]
        if op not in JOB_OPS:
            return op.name, [f"(not a job instruction: {isa.disassemble(ev.value)})"]
        return op.name, describe(op, ev.value, _Registers(regs), SnapshotSpace(memory))
