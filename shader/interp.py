"""Runs a Valhall program on many lanes at once (numpy), e.g. several whole workgroups.

State: a register file of uint32 [64 x lanes], FAU uniform words, special FAU values, a
per-lane pc and an alive mask. While every live lane is at the same pc the lanes run as one
vector; after a divergent BRANCHZ the lanes at the lowest pc run first, which reconverges
the structured control flow Mesa emits where the paths join (its `reconverge` flows mark
exactly those points). BARRIER needs nothing more: when it runs, every lane of the batch
that can still reach it stands at it.

Each instruction word is compiled once (cache by raw word) into a closure fn(threads, mask),
mask None meaning every lane. Messages (LOAD/STORE/ATOM) complete at once, so dependency
slots and wait flows need no modelling. Anything not implemented raises ShaderFault naming
the instruction in Mesa's syntax: never a guess.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from mali_base.pagetable import ACCESS_EXECUTE
from mali_regs.descriptors import BUFFER, RESOURCE
from mali_regs.enums import EXCEPTION

from . import isa, texture
from .enums import IMMEDIATES
from .memory import LaneMemory, MisalignedAtomic

U32, U64, I32, F32, F64 = np.uint32, np.uint64, np.int32, np.float32, np.float64
EXC_INSTR_INVALID_ENC = EXCEPTION["INSTR_INVALID_ENC"]
EXC_INSTR_INVALID_PC = EXCEPTION["INSTR_INVALID_PC"]
EXC_DATA_INVALID = EXCEPTION["DATA_INVALID_FAULT"]
QNAN = U32(0x7FC00000)
WARP = 16
F32_MIN_NORMAL = F32(1.1754944e-38)


class ShaderFault(Exception):
    """What the shader core reports: an EXCEPTION type, its info word and a readable reason."""

    def __init__(self, exception_type: int, info: int, why: str):
        super().__init__(why)
        self.exception_type = exception_type
        self.info = info
        self.why = why


class Unsupported(Exception):
    """Raised while compiling an instruction the model does not implement (becomes a ShaderFault)."""


# -- program fetch and the compile cache ----------------------------------------------------------

class Op:
    __slots__ = ("fn", "kind", "offset", "end", "ins")

    def __init__(self, fn, kind, ins: isa.Instr | None, offset=0):
        self.fn, self.kind, self.ins, self.offset = fn, kind, ins, offset
        self.end = ins is not None and ins.flow == isa.FLOW_END


NORMAL, BRANCH, FAULT = 0, 1, 2
_CACHE: dict[int, Op] = {}


def compile_word(raw: int) -> Op:
    op = _CACHE.get(raw)
    if op is None:
        if len(_CACHE) > 1 << 16:
            _CACHE.clear()
        op = _CACHE[raw] = _compile(raw)
    return op


def _compile(raw: int) -> Op:
    if raw == 0:  # Mesa pads programs with zero words; running into them is an encoding fault
        return Op(_fault_fn(EXC_INSTR_INVALID_ENC, 0, "all-zero word (ran past the end of the program)"),
                  FAULT, isa.decode(0))
    try:
        ins = isa.decode(raw)
    except isa.InvalidEncoding as e:
        return Op(_fault_fn(EXC_INSTR_INVALID_ENC, raw & 0xFFFFFFFF, f"invalid instruction 0x{raw:016x}: {e}"),
                  FAULT, None)
    impl = _IMPL.get(ins.name) or _IMPL.get(ins.name.split(".")[0])
    try:
        if impl is None:
            raise Unsupported("not implemented")
        fn = impl(ins)
    except Unsupported as e:
        return Op(_fault_fn(EXC_INSTR_INVALID_ENC, raw & 0xFFFFFFFF,
                            f"{isa.disassemble(ins).strip()}: {e} in this shader core model"), FAULT, ins)
    if ins.name == "BRANCHZ":
        return Op(fn, BRANCH, ins, ins.imm("offset"))
    return Op(fn, NORMAL, ins)


def _fault_fn(exc, info, why):
    def fn(t, m):
        raise ShaderFault(exc, info, why)
    return fn


class Program:
    """A shader's code in GPU memory, fetched page by page as the pc reaches it."""

    def __init__(self, aspace, code_va: int):
        if code_va & 7:
            raise ShaderFault(EXC_INSTR_INVALID_PC, code_va & 0xFFFFFFFF,
                              f"shader code address 0x{code_va:x} is not 8-byte aligned")
        self.aspace, self.va = aspace, code_va
        self.ops: dict[int, Op] = {}

    def op(self, pc: int) -> Op:
        op = self.ops.get(pc)
        if op is None:
            va = self.va + 8 * pc
            n = (4096 - (va & 0xFFF)) >> 3  # the rest of this page: one translation, no fault past it
            data = self.aspace.read(va, 8 * n, ACCESS_EXECUTE)
            for i, w in enumerate(np.frombuffer(data, "<u8").tolist()):
                self.ops.setdefault(pc + i, compile_word(w))
            op = self.ops[pc]
        return op


# -- the lanes ---------------------------------------------------------------------------------------

class Threads:
    """A batch of lanes running one program. `specials` maps (page, entry) -> 64-bit values
    (scalar or per lane); `fau` the uniform words."""

    def __init__(self, program: Program, nlanes: int, memory: LaneMemory, fau: np.ndarray,
                 specials: dict, ftz: bool = False, warp_lane: np.ndarray | None = None):
        self.program, self.n, self.mem = program, nlanes, memory
        # each lane's index in its 16-lane warp (warps never span two workgroups)
        self.warp_lane = (np.arange(nlanes) % WARP if warp_lane is None else warp_lane).astype(np.int64)
        self.warp_base = np.arange(nlanes, dtype=np.int64) - self.warp_lane
        # the lanes each warp really has (a workgroup's last warp may be partial)
        self.warp_size = np.zeros(nlanes, np.int64)
        for b in np.unique(self.warp_base):
            k = int(np.count_nonzero(self.warp_base == b))
            self.warp_size[self.warp_base == b] = k
        self.regs = np.zeros((64, nlanes), U32)
        self.fau = np.zeros(256, U32)
        self.fau[:min(256, fau.size)] = fau[:256]
        self.specials = specials
        self.ftz = ftz
        self.pc = np.zeros(nlanes, np.int64)
        self.alive = np.ones(nlanes, bool)
        self.upc = 0               # the pc while converged
        self.converged = True
        self.all_alive = True      # converged and no lane ended: mask None
        self.thread_instructions = 0
        self.instructions = 0
        self.cur_pc = 0
        self.resources: dict = {}  # resource handle -> (address, size) / texture Surface, this batch
        # BLEND's sink (fragment shaders): fn(descriptor index, lanes, colour (4, n) u32, coverage (n,))
        self.blend: Callable | None = None

    @property
    def done(self) -> bool:
        return not self.alive.any()

    def special(self, key) -> np.ndarray | np.uint64:
        v = self.specials.get(key)
        if v is None:
            raise ShaderFault(EXC_DATA_INVALID, key[1], f"special FAU page {key[0]} entry {key[1]} is not "
                                                        "available to compute shaders in this model")
        return v

    def run(self, budget: int) -> bool:
        """Execute up to `budget` vector instructions; True once every lane has ended."""
        prog = self.program
        with np.errstate(all="ignore"):
            while budget > 0:
                budget -= 1
                if self.converged:
                    pc = self.upc
                    m = None if self.all_alive else self.alive
                    count = self.n if m is None else int(np.count_nonzero(m))
                    if not count:
                        return True
                else:
                    live = self.pc[self.alive]
                    if not live.size:
                        return True
                    pc = int(live.min())
                    m = self.alive & (self.pc == pc)
                    count = int(np.count_nonzero(m))
                self.cur_pc = pc
                op = prog.op(pc)
                r = op.fn(self, m)
                self.instructions += 1
                self.thread_instructions += count
                if op.kind == BRANCH:
                    self._branch(pc, m, r, op.offset)
                elif self.converged:
                    self.upc = pc + 1
                else:
                    self.pc[m] = pc + 1
                if op.end:
                    self._end(m)
                if not self.converged:
                    self._try_reconverge()
        return self.done

    def _branch(self, pc, m, taken, offset):
        target = pc + 1 + offset
        taken = np.broadcast_to(taken, (self.n,))
        if self.converged:
            act = self.alive if m is not None else None
            t_all = taken.all() if act is None else taken[act].all()
            t_none = (not taken.any()) if act is None else (not taken[act].any())
            if t_all:
                self.upc = target
                return
            if t_none:
                self.upc = pc + 1
                return
            self.converged = self.all_alive = False
            self.pc[:] = pc
            m = self.alive
        self.pc[m & taken] = target
        self.pc[m & ~taken] = pc + 1

    def _end(self, m):
        if m is None:
            self.alive[:] = False
        else:
            self.alive &= ~m
        self.all_alive = False

    def _try_reconverge(self):
        live = self.pc[self.alive]
        if live.size and (live == live[0]).all():
            self.converged = True
            self.upc = int(live[0])


# -- operand access ----------------------------------------------------------------------------------

def _signed(ins: isa.Instr) -> bool:
    parts = ins.name.split(".")
    return len(parts) > 1 and "s" in parts[1]


def _read32(op: isa.Operand) -> Callable:
    if op.kind == "r":
        n = op.value
        return lambda t: t.regs[n]
    if op.kind == "u":
        i = op.value
        return lambda t: t.fau[i]
    if op.kind == "i":
        c = U32(IMMEDIATES[op.value])
        return lambda t: c
    key, shift = (op.page, op.value), U64(32 * op.word)
    if key == (3, 15):  # program_counter
        return lambda t: U32((t.program.va + 8 * t.cur_pc) >> (32 * op.word) & 0xFFFFFFFF)
    return lambda t: (np.asarray(t.special(key), U64) >> shift).astype(U32)


def _read64(op: isa.Operand) -> Callable:
    if op.kind == "r":
        n = op.value
        if n & 1:
            raise Unsupported(f"64-bit source r{n} is not an aligned register pair")
        return lambda t: t.regs[n].astype(U64) | t.regs[n + 1].astype(U64) << U64(32)
    if op.kind == "u":
        i = op.value
        if i & 1:
            raise Unsupported(f"64-bit source u{i} is not an aligned uniform pair")
        return lambda t: U64(int(t.fau[i]) | int(t.fau[i + 1]) << 32)
    if op.kind == "i":
        if IMMEDIATES[op.value]:
            raise Unsupported("a nonzero immediate as a 64-bit source")
        return lambda t: U64(0)
    if op.word:
        raise Unsupported("the high word of a special value as a 64-bit source")
    key = (op.page, op.value)
    if key == (3, 15):
        return lambda t: U64(t.program.va + 8 * t.cur_pc)
    return lambda t: np.asarray(t.special(key), U64)


def _ext(v, shift: int, bits: int, signed: bool):
    x = (v >> U32(shift)) & U32((1 << bits) - 1)
    if signed:
        s = U32(1 << (bits - 1))
        x = (x ^ s) - s
    return x


_WIDEN32 = {"none": None, "h0": (0, 16), "h1": (16, 16), "b0": (0, 8), "b1": (8, 8), "b2": (16, 8), "b3": (24, 8)}


def _int32(op: isa.Operand, signed: bool) -> Callable:
    r = _read32(op)
    w = op.mod("widen", "none")
    if w not in _WIDEN32:
        raise Unsupported(f"widen .{w} on a 32-bit source")
    if _WIDEN32[w] is None:
        return r
    shift, bits = _WIDEN32[w]
    return lambda t: _ext(r(t), shift, bits, signed)


def _int64(op: isa.Operand, signed: bool) -> Callable:
    w = op.mod("widen", "none")
    if w == "none":
        return _read64(op)
    r = _read32(op)
    if w == "w0":
        if signed:
            return lambda t: np.asarray(r(t), U32).view(I32).astype(np.int64).view(U64)
        return lambda t: np.asarray(r(t), U64)
    if w not in _WIDEN32:
        raise Unsupported(f"widen .{w} on a 64-bit source")
    shift, bits = _WIDEN32[w]
    if signed:
        return lambda t: np.asarray(_ext(r(t), shift, bits, True), U32).view(I32).astype(np.int64).view(U64)
    return lambda t: np.asarray(_ext(r(t), shift, bits, False), U64)


def _half_swizzle(op: isa.Operand) -> Callable:
    """A 32-bit source holding two 16-bit lanes, after its Swizzles (16-bit) modifier."""
    r = _read32(op)
    sw = op.mod("widen") or op.mod("swizzle") or "h01"
    if sw[0] != "h":
        raise Unsupported(f"byte swizzle .{sw} on a 16-bit vector source")
    lo, hi = int(sw[1]), int(sw[2])
    if (lo, hi) == (0, 1):
        return r
    return lambda t: (r(t) >> U32(16 * lo)) & U32(0xFFFF) | ((r(t) >> U32(16 * hi)) & U32(0xFFFF)) << U32(16)


def _f32(op: isa.Operand) -> Callable:
    """A float source as float32 after swizzle (fp16 half widened), abs and neg."""
    r = _read32(op)
    sw = op.mod("swizzle", "none")
    neg, ab = op.mod("neg", False), op.mod("abs", False)
    if sw == "none":
        clear = U32(0x7FFFFFFF) if ab else U32(0xFFFFFFFF)
        flip = U32(0x80000000) if neg else U32(0)
        if not (ab or neg):
            return lambda t: np.asarray(r(t), U32).view(F32)
        return lambda t: np.asarray((r(t) & clear) ^ flip, U32).view(F32)
    shift = U32(16 if sw == "h1" else 0)

    def f(t):
        x = ((np.asarray(r(t), U32) >> shift) & U32(0xFFFF)).astype(np.uint16).view(np.float16).astype(F32)
        if ab:
            x = np.abs(x)
        return -x if neg else x
    return f


def _bits(x) -> np.ndarray:
    return np.asarray(x, F32).view(U32)


def _ftz(t, x):
    if t.ftz:
        x = np.asarray(x, F32)
        return np.where(np.abs(x) < F32_MIN_NORMAL, np.copysign(F32(0), x), x)
    return x


def _canon(r, *ins):
    """Generated NaNs are the default quiet NaN; an input NaN propagates (quietened)."""
    r = np.asarray(r, F32)
    nan = np.isnan(r)
    if nan.any():
        bits = r.view(U32).copy()
        fresh = nan.copy()
        for x in ins:
            fresh &= ~np.isnan(np.broadcast_to(x, r.shape))
        bits[fresh] = QNAN
        return bits
    return r.view(U32)


def _writer(ins: isa.Instr) -> Callable:
    reg, mask = ins.dest
    if mask == 3:
        def w(t, m, v):
            if m is None:
                t.regs[reg] = v
            else:
                np.copyto(t.regs[reg], v, where=m, casting="unsafe")
        return w
    keep = U32(0xFFFF0000 if mask == 1 else 0x0000FFFF)
    shift = U32(0 if mask == 1 else 16)

    def wh(t, m, v):
        new = (t.regs[reg] & keep) | ((np.asarray(v, U32) & U32(0xFFFF)) << shift)
        if m is None:
            t.regs[reg] = new
        else:
            np.copyto(t.regs[reg], new, where=m)
    return wh


def _writer64(ins: isa.Instr) -> Callable:
    reg, mask = ins.dest
    if reg & 1 or mask != 3:
        raise Unsupported(f"64-bit destination r{reg} is not an aligned register pair")

    def w(t, m, v):
        v = np.asarray(v, U64)
        lo, hi = (v & U64(0xFFFFFFFF)).astype(U32), (v >> U64(32)).astype(U32)
        if m is None:
            t.regs[reg], t.regs[reg + 1] = lo, hi
        else:
            np.copyto(t.regs[reg], lo, where=m)
            np.copyto(t.regs[reg + 1], hi, where=m)
    return w


def _unary(ins, f, src=None):
    a = src or _read32(ins.srcs[0])
    w = _writer(ins)
    return lambda t, m: w(t, m, f(a(t)))


def _binary(ins, f, a, b):
    w = _writer(ins)
    return lambda t, m: w(t, m, f(a(t), b(t)))


# -- comparisons -------------------------------------------------------------------------------------

def _compare(cond: str, kind: str) -> Callable:
    if kind == "s":
        conv = lambda x: np.asarray(x, U32).view(I32)  # noqa: E731
    elif kind == "f":
        conv = lambda x: x  # noqa: E731
    else:
        conv = lambda x: np.asarray(x, U32)  # noqa: E731
    ops = {"eq": np.equal, "gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal,
           "ne": lambda a, b: ~np.equal(a, b)}
    if cond == "gtlt":
        return lambda a, b: np.less(conv(a), conv(b)) | np.greater(conv(a), conv(b))
    if cond not in ops:
        raise Unsupported(f"condition .{cond}")
    f = ops[cond]
    return lambda a, b: f(conv(a), conv(b))


_RESULT = {"i1": U32(1), "f1": U32(0x3F800000), "m1": U32(0xFFFFFFFF), "u1": U32(1)}


def _encode_bool(rt: str):
    one = _RESULT[rt]
    return lambda c: np.where(c, one, U32(0))


# -- the implementations: name -> compile(ins) -> fn(t, m) -----------------------------------------

_IMPL: dict[str, Callable] = {}


def impl(*names):
    def deco(f):
        for n in names:
            _IMPL[n] = f
        return f
    return deco


@impl("NOP", "BARRIER")
def _nop(ins):
    if ins.name == "BARRIER" and ins.mod("slot") != "slot7":
        raise Unsupported("BARRIER must use slot 7")
    return lambda t, m: None


@impl("MOV.i32")
def _mov(ins):
    return _unary(ins, lambda v: v)


@impl("IADD_IMM.i32")
def _iadd_imm(ins):
    k = U32(ins.imm("constant"))
    return _unary(ins, lambda v: v + k)


@impl("IADD_IMM.v2i16")
def _iadd_imm_v2(ins):
    k = ins.imm("constant")
    klo, khi = U32(k & 0xFFFF), U32(k >> 16)
    return _unary(ins, lambda v: ((v + klo) & U32(0xFFFF)) | (((v >> U32(16)) + khi) & U32(0xFFFF)) << U32(16))


@impl("FADD_IMM.f32")
def _fadd_imm(ins):
    k = np.asarray(U32(ins.imm("constant"))).view(F32)
    a = _f32(ins.srcs[0])
    w = _writer(ins)
    return lambda t, m: w(t, m, _canon(_ftz(t, _ftz(t, a(t)) + k), a(t)))


def _sat_check(ins):
    if ins.mod("saturate"):
        raise Unsupported(".saturate")


@impl("IADD.u32", "IADD.s32", "ISUB.u32", "ISUB.s32")
def _iadd(ins):
    s = _signed(ins)
    a, b = _int32(ins.srcs[0], s), _int32(ins.srcs[1], s)
    sub = ins.name.startswith("ISUB")
    if ins.mod("saturate"):
        lo, hi = (-(1 << 31), (1 << 31) - 1) if s else (0, (1 << 32) - 1)
        dt = I32 if s else U32

        def f(x, y):
            x, y = np.asarray(x, U32).view(dt).astype(np.int64), np.asarray(y, U32).view(dt).astype(np.int64)
            return np.clip(x - y if sub else x + y, lo, hi).astype(np.int64).astype(U64).astype(U32)
        return _binary(ins, f, a, b)
    return _binary(ins, (lambda x, y: x - y) if sub else (lambda x, y: x + y), a, b)


@impl("IMUL.i32", "IMUL.s32")
def _imul(ins):
    _sat_check(ins)
    s = _signed(ins)
    return _binary(ins, lambda x, y: x * y, _int32(ins.srcs[0], s), _int32(ins.srcs[1], s))


@impl("IADD.v2u16", "IADD.v2s16", "ISUB.v2u16", "ISUB.v2s16")
def _iadd_v2(ins):
    _sat_check(ins)
    a, b = _half_swizzle(ins.srcs[0]), _half_swizzle(ins.srcs[1])
    sub = ins.name.startswith("ISUB")
    M16, S16 = U32(0xFFFF), U32(16)

    def f(x, y):
        if sub:
            lo, hi = (x - y) & M16, ((x >> S16) - (y >> S16)) & M16
        else:
            lo, hi = (x + y) & M16, ((x >> S16) + (y >> S16)) & M16
        return lo | hi << S16
    return _binary(ins, f, a, b)


@impl("IADD.u64", "IADD.s64", "ISUB.u64", "ISUB.s64")
def _iadd64(ins):
    _sat_check(ins)
    s = _signed(ins)
    a, b = _int64(ins.srcs[0], s), _int64(ins.srcs[1], s)
    w = _writer64(ins)
    if ins.name.startswith("ISUB"):
        return lambda t, m: w(t, m, a(t) - b(t))
    return lambda t, m: w(t, m, a(t) + b(t))


@impl("SHADDX.u64", "SHADDX.s64")
def _shaddx(ins):
    s = _signed(ins)
    a, b = _int64(ins.srcs[0], s), _int64(ins.srcs[1], s)
    sh = U64(ins.imm("shift"))
    w = _writer64(ins)
    return lambda t, m: w(t, m, a(t) + (b(t) << sh))


@impl("MKVEC.v2i16")
def _mkvec16(ins):
    ra, rb = _read32(ins.srcs[0]), _read32(ins.srcs[1])
    sa, sb = (U32(16 * int(s.mod("lane")[1])) for s in ins.srcs)
    M16, S16 = U32(0xFFFF), U32(16)
    return _binary(ins, lambda x, y: ((x >> sa) & M16) | ((y >> sb) & M16) << S16, ra, rb)


@impl("MKVEC.v2i8")
def _mkvec8(ins):
    ra, rb, rc = (_read32(s) for s in ins.srcs)
    sa, sb = (U32(8 * int(s.mod("lane")[1])) for s in ins.srcs[:2])
    w = _writer(ins)
    M8, M16 = U32(0xFF), U32(0xFFFF)
    return lambda t, m: w(t, m, ((ra(t) >> sa) & M8) | ((rb(t) >> sb) & M8) << U32(8) | (rc(t) & M16) << U32(16))


@impl("LSHIFT_AND.i32", "LSHIFT_OR.i32", "LSHIFT_XOR.i32", "RSHIFT_AND.i32", "RSHIFT_OR.i32", "RSHIFT_XOR.i32")
def _shift(ins):
    if ins.srcs[0].mod("widen", "none") != "none":
        raise Unsupported("a widened shift source")
    a, s, b = _read32(ins.srcs[0]), _read32(ins.srcs[1]), _read32(ins.srcs[2])
    byte = U32(8 * "b00 b11 b22 b33".split().index(ins.srcs[1].mod("lanes")))
    inv_b = U32(0xFFFFFFFF) if ins.srcs[2].mod("not") else U32(0)
    inv_r = U32(0xFFFFFFFF) if ins.mod("not_result") else U32(0)
    comb = {"AND": np.bitwise_and, "OR": np.bitwise_or, "XOR": np.bitwise_xor}[ins.name.split("_")[1].split(".")[0]]
    left, arith = ins.name[0] == "L", ins.mod("signed", False)
    w = _writer(ins)
    M5 = U32(31)  # shift counts use their low 5 bits (NIR's semantics, which Mesa relies on)

    def f(t, m):
        n = (s(t) >> byte) & M5
        x = a(t)
        if left:
            y = x << n
        elif arith:
            y = (np.asarray(x, U32).view(I32) >> np.asarray(n, U32).astype(I32)).view(U32)
        else:
            y = x >> n
        w(t, m, comb(y, b(t) ^ inv_b) ^ inv_r)
    return f


def _halves(v):
    v = np.asarray(v, U32)
    return v & U32(0xFFFF), v >> U32(16)


def _join(lo, hi):
    return (np.asarray(lo, U32) & U32(0xFFFF)) | (np.asarray(hi, U32) & U32(0xFFFF)) << U32(16)


@impl("LSHIFT_AND.v2i16", "LSHIFT_OR.v2i16", "LSHIFT_XOR.v2i16", "RSHIFT_AND.v2i16", "RSHIFT_OR.v2i16",
      "RSHIFT_XOR.v2i16")
def _shift_v2(ins):
    a, s, b = _half_swizzle(ins.srcs[0]), _read32(ins.srcs[1]), _read32(ins.srcs[2])
    byte = U32(8 * "b00 b11 b22 b33".split().index(ins.srcs[1].mod("lanes")))  # both lanes' count
    inv_b = U32(0xFFFFFFFF) if ins.srcs[2].mod("not") else U32(0)
    inv_r = U32(0xFFFFFFFF) if ins.mod("not_result") else U32(0)
    comb = {"AND": np.bitwise_and, "OR": np.bitwise_or, "XOR": np.bitwise_xor}[ins.name.split("_")[1].split(".")[0]]
    left, arith = ins.name[0] == "L", ins.mod("signed", False)
    w = _writer(ins)
    M4 = U32(15)

    def sh(x, n):
        if left:
            return x << n
        if arith:
            return (((x ^ U32(0x8000)) - U32(0x8000)).view(I32) >> n.astype(I32)).view(U32)
        return x >> n

    def f(t, m):
        n = np.asarray((s(t) >> byte) & M4, U32)
        lo, hi = _halves(a(t))
        w(t, m, comb(_join(sh(lo, n), sh(hi, n)), b(t) ^ inv_b) ^ inv_r)
    return f


@impl("ICMP_OR.v2u16", "ICMP_OR.v2s16", "ICMP_AND.v2u16", "ICMP_AND.v2s16")
def _icmp_v2(ins):
    kind = "s" if _signed(ins) else "u"
    cond, rt = ins.mod("condition"), ins.mod("result_type")
    one = {"i1": U32(1), "f1": U32(0x3C00), "m1": U32(0xFFFF)}.get(rt)
    if one is None:
        raise Unsupported(f"result type .{rt} on a 16-bit vector compare")
    x, y, c = _half_swizzle(ins.srcs[0]), _half_swizzle(ins.srcs[1]), _read32(ins.srcs[2])
    base = _compare(cond, "s" if kind == "s" else "u")
    both = "_AND" in ins.name
    w = _writer(ins)

    def lane(v):
        return ((v ^ U32(0x8000)) - U32(0x8000)) if kind == "s" else v  # sign-extend for signed compares

    def f(t, m):
        (xl, xh), (yl, yh), (cl, ch) = _halves(x(t)), _halves(y(t)), _halves(c(t))
        out = []
        for a_, b_, c_ in ((xl, yl, cl), (xh, yh, ch)):
            r = base(lane(a_), lane(b_))
            r = (r & (c_ != 0)) if both else (r | (c_ != 0))
            out.append(np.where(r, one, U32(0)))
        w(t, m, _join(*out))
    return f


# -- subgroup (warp) operations ---------------------------------------------------------------------------

_SUBGROUP = {"subgroup2": 2, "subgroup4": 4, "subgroup8": 8, "subgroup16": 16}
_INACTIVE = {"zero": 0, "umax": 0xFFFFFFFF, "i1": 1, "v2i1": 0x00010001, "smin": 0x80000000, "smax": 0x7FFFFFFF,
             "v2smin": 0x80008000, "v2smax": 0x7FFF7FFF, "v4smin": 0x80808080, "v4smax": 0x7F7F7F7F,
             "f1": 0x3F800000, "v2f1": 0x3C003C00, "infn": 0xFF800000, "inf": 0x7F800000, "v2infn": 0xFC00FC00,
             "v2inf": 0x7C007C00}


def _active(t, m):
    return t.alive.copy() if m is None else m


@impl("CLPER.i32")
def _clper(ins):
    """A's value in the subgroup lane B names (lane_op xor: this lane's index XOR B); a lane
    that is inactive, ended or past the warp gives the inactive_result constant."""
    op = ins.mod("lane_operation")
    if op not in ("none", "xor"):
        raise Unsupported(f"lane operation .{op}")
    size = _SUBGROUP[ins.mod("subgroup_size")]
    other = U32(_INACTIVE[ins.mod("inactive_result")])
    a, b = _read32(ins.srcs[0]), _read32(ins.srcs[1])
    byte = U32(8 * "b00 b11 b22 b33".split().index(ins.srcs[1].mod("lanes")))
    w = _writer(ins)

    def f(t, m):
        idx = np.broadcast_to((b(t) >> byte) & U32(size - 1), (t.n,)).astype(np.int64)
        mine = t.warp_lane
        lane = (mine & ~(size - 1)) + (idx ^ (mine & (size - 1)) if op == "xor" else idx)
        inside = lane < t.warp_size
        src = np.where(inside, t.warp_base + lane, 0)
        act = _active(t, m)
        val = np.broadcast_to(a(t), (t.n,))[src]
        w(t, m, np.where(inside & act[src], val, other))
    return f


@impl("WMASK")
def _wmask(ins):
    """The mask of the subgroup's active lanes whose source is nonzero (bit = lane in subgroup)."""
    size = _SUBGROUP[ins.mod("subgroup_size")]
    a = _read32(ins.srcs[0])
    w = _writer(ins)

    def f(t, m):
        on = (np.broadcast_to(a(t), (t.n,)) != 0) & _active(t, m)
        sub = t.warp_lane & (size - 1)
        bits = np.where(on, np.left_shift(1, sub), 0).astype(np.int64)
        group = t.warp_base + (t.warp_lane & ~(size - 1))
        out = np.zeros(t.n, np.int64)
        np.add.at(out, group, bits)  # sum of distinct bits = their OR
        w(t, m, out[group].astype(U32))
    return f


@impl("MUX.i32")
def _mux(ins):
    a, b, c = (_read32(s) for s in ins.srcs)
    mode = ins.mod("mux")
    w = _writer(ins)
    if mode == "bit":
        return lambda t, m: w(t, m, (a(t) & c(t)) | (b(t) & ~c(t)))
    test = {"neg": lambda x: (x >> U32(31)) != 0, "int_zero": lambda x: x == 0,
            "fp_zero": lambda x: (x & U32(0x7FFFFFFF)) == 0}[mode]
    return lambda t, m: w(t, m, np.where(test(c(t)), a(t), b(t)))


@impl("CSEL.u32", "CSEL.s32", "CSEL.f32")
def _csel(ins):
    kind = ins.name[-3]
    if kind == "f":
        x, y = _f32(ins.srcs[0]), _f32(ins.srcs[1])
    else:
        x, y = _read32(ins.srcs[0]), _read32(ins.srcs[1])
    c, d = _read32(ins.srcs[2]), _read32(ins.srcs[3])
    cmp = _compare(ins.mod("condition"), kind)
    w = _writer(ins)
    if kind == "f":
        return lambda t, m: w(t, m, np.where(cmp(_ftz(t, x(t)), _ftz(t, y(t))), c(t), d(t)))
    return lambda t, m: w(t, m, np.where(cmp(x(t), y(t)), c(t), d(t)))


@impl("ICMP_OR.u32", "ICMP_OR.s32", "ICMP_AND.u32", "ICMP_AND.s32", "ICMP_MULTI.u32", "ICMP_MULTI.s32",
      "FCMP_OR.f32", "FCMP_AND.f32")
def _icmp(ins):
    kind = "f" if ins.name.startswith("FCMP") else ("s" if _signed(ins) else "u")
    cond, rt = ins.mod("condition"), ins.mod("result_type")
    if kind == "f":
        x, y = _f32(ins.srcs[0]), _f32(ins.srcs[1])
    else:
        x, y = _int32(ins.srcs[0], kind == "s"), _int32(ins.srcs[1], kind == "s")
    c = _read32(ins.srcs[2])
    enc = _encode_bool(rt)
    w = _writer(ins)
    if ins.name.startswith("ICMP_MULTI") and rt != "u1":
        # the high half of a 64-bit compare: C carries the low half's result (u1)
        eq, strict = _compare("eq", kind), _compare({"ge": "gt", "le": "lt"}.get(cond, cond), kind)
        if cond == "eq":
            return lambda t, m: w(t, m, enc(eq(x(t), y(t)) & (c(t) != 0)))
        if cond == "ne":
            return lambda t, m: w(t, m, enc(~eq(x(t), y(t)) | (c(t) != 0)))
        return lambda t, m: w(t, m, enc(strict(x(t), y(t)) | (eq(x(t), y(t)) & (c(t) != 0))))
    if rt == "u1" and not ins.name.startswith("ICMP_MULTI"):
        raise Unsupported("result type .u1 outside ICMP_MULTI")
    cmp = _compare(cond, kind)
    if kind == "f":
        pre = lambda t: (_ftz(t, x(t)), _ftz(t, y(t)))  # noqa: E731
    else:
        pre = lambda t: (x(t), y(t))  # noqa: E731
    if "_AND" in ins.name:
        return lambda t, m: w(t, m, enc(cmp(*pre(t)) & (c(t) != 0)))
    return lambda t, m: w(t, m, enc(cmp(*pre(t)) | (c(t) != 0)))


@impl("CLZ.u32")
def _clz(ins):
    def f(v):
        v = np.asarray(v, U32)
        _, e = np.frexp(v.astype(F64))
        return np.where(v == 0, U32(32), (32 - e).astype(U32))
    return _unary(ins, f)


@impl("POPCOUNT.i32")
def _popcount(ins):
    return _unary(ins, lambda v: np.bitwise_count(np.asarray(v, U32)).astype(U32))


@impl("BITREV.i32")
def _bitrev(ins):
    def f(v):
        v = np.asarray(v, U32)
        for s, mk in ((1, 0x55555555), (2, 0x33333333), (4, 0x0F0F0F0F), (8, 0x00FF00FF)):
            v = ((v >> U32(s)) & U32(mk)) | ((v & U32(mk)) << U32(s))
        return (v >> U32(16)) | (v << U32(16))
    return _unary(ins, f)


@impl("IABS.s32")
def _iabs(ins):
    return _unary(ins, lambda v: np.abs(np.asarray(v, U32).view(I32)).view(U32), _int32(ins.srcs[0], True))


@impl("NOT_OLD.i32")
def _not(ins):
    return _unary(ins, lambda v: ~np.asarray(v, U32))


# -- conversions ---------------------------------------------------------------------------------------

_ROUND = {"rte": np.rint, "rtp": np.ceil, "rtn": np.floor, "rtz": np.trunc}


def _rte_only(ins):
    if ins.mod("round_mode", "rte") != "rte":
        raise Unsupported(f"round mode .{ins.mod('round_mode')}")


@impl("S32_TO_F32", "U32_TO_F32")
def _i2f(ins):
    _rte_only(ins)
    s = ins.name[0] == "S"
    a = _int32(ins.srcs[0], s)
    if s:
        return _unary(ins, lambda v: np.asarray(v, U32).view(I32).astype(F32).view(U32), a)
    return _unary(ins, lambda v: np.asarray(v, U32).astype(F64).astype(F32).view(U32), a)


@impl("F32_TO_S32", "F32_TO_U32")
def _f2i(ins):
    rnd = _ROUND[ins.mod("round_mode")]
    a = _f32(ins.srcs[0])
    lo, hi, dt = ((-(1 << 31), (1 << 31) - 1, I32) if ins.name.endswith("S32") else (0, (1 << 32) - 1, U32))
    w = _writer(ins)

    def f(t, m):  # saturating; NaN converts to 0
        x = rnd(np.asarray(_ftz(t, a(t)), F64))
        x = np.where(np.isnan(x), 0.0, np.clip(x, lo, hi))
        w(t, m, x.astype(np.int64).astype(dt).view(U32) if dt is I32 else x.astype(np.int64).astype(U32))
    return f


@impl("U16_TO_U32", "S16_TO_S32", "U16_TO_F32", "S16_TO_F32")
def _i16(ins):
    r = _read32(ins.srcs[0])
    half = int(ins.srcs[0].mod("swizzle")[1])  # the low lane of the swizzle picks the half
    s, to_f = ins.name[0] == "S", ins.name.endswith("F32")
    if to_f:
        return _unary(ins, lambda v: np.asarray(_ext(v, 16 * half, 16, s), U32).view(I32).astype(F32).view(U32), r)
    return _unary(ins, lambda v: _ext(v, 16 * half, 16, s), r)


@impl("U8_TO_U32", "S8_TO_S32", "U8_TO_F32", "S8_TO_F32")
def _i8(ins):
    r = _read32(ins.srcs[0])
    byte = int(ins.srcs[0].mod("lane")[1])
    s, to_f = ins.name[0] == "S", ins.name.endswith("F32")
    if to_f:
        return _unary(ins, lambda v: np.asarray(_ext(v, 8 * byte, 8, s), U32).view(I32).astype(F32).view(U32), r)
    return _unary(ins, lambda v: _ext(v, 8 * byte, 8, s), r)


@impl("F16_TO_F32")
def _f16_to_f32(ins):
    op = ins.srcs[0]
    r = _read32(op)
    shift = U32(16 * int(op.mod("lane")[1]))
    clear = U32(0x7FFF) if op.mod("abs") else U32(0xFFFF)
    flip = U32(0x8000) if op.mod("neg") else U32(0)
    return _unary(ins, lambda v: (((np.asarray(v, U32) >> shift) & clear) ^ flip).astype(np.uint16)
                  .view(np.float16).astype(F32).view(U32), r)


@impl("V2F32_TO_V2F16")
def _f32_to_v2f16(ins):
    _rte_only(ins)
    if ins.mod("clamp") != "none":
        raise Unsupported(f".{ins.mod('clamp')}")
    a, b = _f32(ins.srcs[0]), _f32(ins.srcs[1])

    def f(x, y):
        lo = np.asarray(x, F32).astype(np.float16).view(np.uint16).astype(U32)
        hi = np.asarray(y, F32).astype(np.float16).view(np.uint16).astype(U32)
        return lo | hi << U32(16)
    return _binary(ins, f, a, b)


@impl("FROUND.f32")
def _fround(ins):
    rnd = _ROUND[ins.mod("round_mode")]
    return _unary(ins, lambda v: _bits(rnd(v)), _f32(ins.srcs[0]))


# -- floating point arithmetic --------------------------------------------------------------------------

def _clamp(mode: str):
    if mode == "none":
        return None
    lo = F32(0) if mode in ("clamp_0_inf", "clamp_0_1") else F32(-1)

    def f(x):
        x = np.where(x > lo, x, lo)  # NaN clamps to the low bound, -0 to +0 against 0 (ISA.xml)
        return np.where(x < F32(1), x, F32(1)) if mode != "clamp_0_inf" else x
    return f


def _fp_operands(ins, nsrc, read):
    """What every float op starts with: RTE only, its sources read by `read`, its clamp, its writer."""
    _rte_only(ins)
    return [read(s) for s in ins.srcs[:nsrc]], _clamp(ins.mod("clamp", "none")), _writer(ins)


def _fpop(ins, compute, nsrc):
    srcs, clamp, w = _fp_operands(ins, nsrc, _f32)

    def f(t, m):
        xs = [_ftz(t, s(t)) for s in srcs]
        r = compute(*xs)
        if clamp is not None:
            r = clamp(r)
        w(t, m, _canon(_ftz(t, r), *xs))
    return f


def _fma32(a, b, c):
    """a*b+c rounded once to float32 (round to nearest even), from float64 arithmetic.

    The product is exact in float64; the sum is float64-rounded, and a float32 rounding of
    that can only go wrong when it lands exactly half-way between two floats while the true
    sum was not: then the error term of the sum says which way the true value lies."""
    a, b, c = (np.asarray(x, F32).astype(F64) for x in (a, b, c))
    p = a * b
    s = p + c
    bb = s - p
    err = (p - (s - bb)) + (c - bb)  # two-sum error: exact s + err == p + c
    r = s.astype(F32)
    rf = r.astype(F64)
    with np.errstate(all="ignore"):
        n = np.nextafter(r, np.where(s > rf, np.inf, -np.inf).astype(F32))
        nf = n.astype(F64)
        fix = (s != rf) & ((rf + nf) * 0.5 == s) & (err != 0)
        return np.where(fix & (np.sign(err) == np.sign(nf - rf)), n, r)


# -- 16-bit float pairs: each half computed exactly in float64, rounded once to binary16 --------------

QNAN16 = U32(0x7E00)


def _f16_pair(op: isa.Operand) -> Callable:
    """A v2f16 source after its swizzle, abs and neg: (low, high) as float64."""
    r = _half_swizzle(op)
    clear = U32(0x7FFF7FFF) if op.mod("abs") else U32(0xFFFFFFFF)
    flip = U32(0x80008000) if op.mod("neg") else U32(0)

    def f(t):
        v = (np.asarray(r(t), U32) & clear) ^ flip
        lo, hi = _halves(v)
        return (lo.astype(np.uint16).view(np.float16).astype(F64), hi.astype(np.uint16).view(np.float16).astype(F64))
    return f


def _round16(x, err=None, *ins):
    """float64 -> binary16 bits (round to nearest even); `err` the float64 rounding error of x,
    if any, settles a tie that x's own rounding created. Generated NaNs are the default NaN."""
    x = np.asarray(x, F64)
    r = x.astype(np.float16)
    if err is not None:
        rf = r.astype(F64)
        n = np.nextafter(r, np.where(x > rf, np.inf, -np.inf).astype(np.float16))
        nf = n.astype(F64)
        fix = (x != rf) & ((rf + nf) * 0.5 == x) & (err != 0)
        r = np.where(fix & (np.sign(err) == np.sign(nf - rf)), n, r)
    bits = r.view(np.uint16).astype(U32)
    nan = np.isnan(x)
    if nan.any():
        fresh = nan.copy()
        for v in ins:
            fresh &= ~np.isnan(np.broadcast_to(v, x.shape))
        bits = np.where(fresh, QNAN16, bits)
    return bits


def _fpop16(ins, compute, nsrc):
    srcs, clamp, w = _fp_operands(ins, nsrc, _f16_pair)

    def f(t, m):
        xs = [s(t) for s in srcs]
        out = []
        for half in (0, 1):
            args = [x[half] for x in xs]
            r, err = compute(*args)
            if clamp is not None:
                r = clamp(r)
            out.append(_round16(r, err, *args))
        w(t, m, _join(*out))
    return f


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fminmax16(is_max):
    f = _fminmax(is_max)
    return lambda x, y: (np.asarray(f(np.asarray(x, F32), np.asarray(y, F32)), F64), None)  # exact in f32


@impl("FADD.v2f16")
def _fadd16(ins):
    return _fpop16(ins, _two_sum, 2)  # exact in float64: the error term is zero


@impl("FMA.v2f16")
def _fma16(ins):
    return _fpop16(ins, lambda a, b, c: _two_sum(a * b, c), 3)  # a*b is exact in float64


@impl("FADD.f32")
def _fadd(ins):
    return _fpop(ins, lambda x, y: x + y, 2)


@impl("FMA.f32")
def _fma(ins):
    return _fpop(ins, _fma32, 3)


def _fminmax(is_max):
    def f(x, y):
        x, y = np.asarray(x, F32), np.asarray(y, F32)
        r = np.fmax(x, y) if is_max else np.fmin(x, y)
        both0 = (x == 0) & (y == 0)  # -0 < +0
        xb, yb = x.view(U32), y.view(U32)
        z = (xb & yb) if is_max else (xb | yb)
        return np.where(both0, np.asarray(z, U32).view(F32), r)
    return f


# FMIN/FMAX in both widths from one comparison (the fp16 pair compared exactly in f32).
for _name, _is_max in (("FMIN", False), ("FMAX", True)):
    impl(f"{_name}.f32")(lambda ins, is_max=_is_max: _fpop(ins, _fminmax(is_max), 2))
    impl(f"{_name}.v2f16")(lambda ins, is_max=_is_max: _fpop16(ins, _fminmax16(is_max), 2))


@impl("FRCP.f32")
def _frcp(ins):
    return _fpop(ins, lambda x: F32(1) / x, 1)


@impl("FRSQ.f32")
def _frsq(ins):
    return _fpop(ins, lambda x: (1.0 / np.sqrt(np.asarray(x, F64))).astype(F32), 1)


# -- control flow ------------------------------------------------------------------------------------------

@impl("BRANCHZ")
def _branchz(ins):
    op = ins.srcs[0]
    r = _read32(op)
    comb = op.mod("combine", "none")
    sel = {"none": U32(0xFFFFFFFF), "h0": U32(0xFFFF), "h1": U32(0xFFFF0000)}.get(comb)
    if sel is None:
        raise Unsupported(f"combine .{comb}")
    if ins.mod("eq"):
        return lambda t, m: (r(t) & sel) == 0
    return lambda t, m: (r(t) & sel) != 0


# -- memory ---------------------------------------------------------------------------------------------------

_SIZES = {"i8": 1, "i16": 2, "i24": 3, "i32": 4, "i48": 6, "i64": 8, "i96": 12, "i128": 16}


def _lanes(t, m):
    return np.arange(t.n) if m is None else np.nonzero(m)[0]


def _address(ins, signed_offset=True):
    a = _read64(ins.srcs[0])
    off = ins.imm("offset")
    off = U64(off % (1 << 64))
    return lambda t, idx: np.broadcast_to(a(t), (t.n,))[idx] + off


def _load_writer(ins, nbytes):
    """How a loaded value lands in the staging registers: (nregs, fn(t, idx, data (n, nbytes) u8))."""
    reg = ins.staging[0][0]
    lane = next((v for k, v in ins.mods if k.startswith("load_lane")), "identity")
    unsigned = ins.mod("unsigned")
    if nbytes in (3, 6):
        raise Unsupported("24/48-bit loads")
    kind = {1: "b", 2: "h"}.get(nbytes)
    if lane == "identity" or (nbytes == 4 and lane == "w0"):
        nregs, mode = nbytes // 4, "words"
    elif lane == "w0":
        nregs, mode = 1, "extend"
    elif lane == "d0":
        nregs, mode = 2, "extend"
    elif kind is not None and lane[0] == kind:
        nregs, mode = 1, "merge"             # into its byte/half, the rest of the register kept
    elif nbytes == 1 and lane in ("h0", "h1"):
        nregs, mode = 1, "half"              # extended to 16 bits into a half
    else:
        raise Unsupported(f"load lane .{lane} for a {8 * nbytes}-bit load")
    if reg + nregs > 64:
        raise Unsupported("staging registers past r63")
    bits = 8 * nbytes

    def put(t, idx, data):
        if mode == "words":
            words = data.view("<u4")
            for i in range(nregs):
                t.regs[reg + i, idx] = words[:, i]
            return
        v = data.astype(U32)
        val = v[:, 0] if nbytes == 1 else (v[:, 0] | v[:, 1] << U32(8) if nbytes == 2 else data.view("<u4")[:, 0])
        if mode == "merge":
            pos = U32(bits * int(lane[1]))
            keep = ~(U32((1 << bits) - 1) << pos)
            t.regs[reg, idx] = (t.regs[reg, idx] & keep) | (val << pos)
            return
        if mode == "half":
            ext = val if unsigned else _ext(val, 0, 8, True) & U32(0xFFFF)
            pos = U32(16 * int(lane[1]))
            t.regs[reg, idx] = (t.regs[reg, idx] & ~(U32(0xFFFF) << pos)) | (ext << pos)
            return
        ext = val if unsigned or bits == 32 else _ext(val, 0, bits, True)
        t.regs[reg, idx] = ext
        if nregs == 2:
            t.regs[reg + 1, idx] = (np.zeros_like(ext) if unsigned
                                    else np.where(ext >> U32(31), U32(0xFFFFFFFF), U32(0)))
    return nregs, put


@impl("LOAD")
def _load(ins):
    nbytes = _SIZES[ins.name.split(".")[1]]
    _, put = _load_writer(ins, nbytes)
    addr = _address(ins)

    def f(t, m):
        idx = _lanes(t, m)
        if idx.size:
            put(t, idx, t.mem.load(addr(t, idx), nbytes))
    return f


# -- the resource table (LD_BUFFER, LEA_BUFFER) ----------------------------------------------------
# A resource handle is table << 24 | index (Mesa's pan_res_handle). Table 62 names the raw memory of
# resource-table entry `index` (a descriptor set: how panvk reads descriptors and SSBO addresses);
# any other table's entry holds Buffer descriptors, of which `index` is read (UBOs). Derived from
# Mesa's use of the handles; ISA.xml's own wording of the mode bits differs (not verified).
RAW_TABLE = 62


def _resolve(t, handle: int) -> tuple[int, int]:
    """(address, size) of the buffer a resource handle names."""
    cache = t.resources
    hit = cache.get(handle)
    if hit is not None:
        return hit
    table, index = handle >> 24, handle & 0xFFFFFF
    srt = int(t.special((1, 7)))
    aspace = t.mem.aspace
    if table == RAW_TABLE:
        entry = RESOURCE.decode(aspace.read(srt + 16 * index, 16))
        hit = (entry.address, entry.size)
    elif table < 62:
        entry = RESOURCE.decode(aspace.read(srt + 16 * table, 16))
        if 32 * index + 32 > entry.size:
            raise ShaderFault(EXC_DATA_INVALID, handle, f"resource handle 0x{handle:x}: descriptor {index} is past "
                                                        f"the {entry.size} bytes of resource table entry {table}")
        desc = BUFFER.decode(aspace.read(entry.address + 32 * index, 32))
        if desc.name("type") != "Buffer" or desc.reserved():
            raise ShaderFault(EXC_DATA_INVALID, handle, f"resource handle 0x{handle:x}: not a Buffer descriptor: "
                                                        f"{desc.text()}")
        hit = (desc.address, desc.size)
    else:
        raise ShaderFault(EXC_DATA_INVALID, handle, f"resource handle 0x{handle:x}: table {table} is not "
                                                    "implemented in this model")
    cache[handle] = hit
    return hit


def _per_handle(t, idx, handles):
    """Group lanes by resource handle: yields (lane positions in idx, base, size)."""
    hs = np.broadcast_to(handles, (t.n,))[idx]
    for h in np.unique(hs):
        pos = np.nonzero(hs == h)[0]
        base, size = _resolve(t, int(h))
        yield pos, base, size


@impl("LD_BUFFER")
def _ld_buffer(ins):
    nbytes = _SIZES[ins.name.split(".")[1]]
    _, put = _load_writer(ins, nbytes)
    off, handle = _read32(ins.srcs[0]), _read32(ins.srcs[1])

    def f(t, m):
        idx = _lanes(t, m)
        if not idx.size:
            return
        offs = np.broadcast_to(off(t), (t.n,))[idx].astype(U64)
        data = np.zeros((idx.size, nbytes), np.uint8)
        for pos, base, size in _per_handle(t, idx, handle(t)):
            inside = pos[offs[pos] + U64(nbytes) <= U64(size)]  # out of bounds reads zero (not verified)
            if inside.size:
                data[inside] = t.mem.load(U64(base) + offs[inside], nbytes)
        put(t, idx, data)
    return f


@impl("LEA_BUFFER")
def _lea_buffer(ins):
    reg = ins.staging[0][0]
    off, handle = _read32(ins.srcs[0]), _read32(ins.srcs[1])

    def f(t, m):
        idx = _lanes(t, m)
        if not idx.size:
            return
        offs = np.broadcast_to(off(t), (t.n,))[idx].astype(U64)
        out = np.zeros(idx.size, U64)
        for pos, base, _ in _per_handle(t, idx, handle(t)):
            out[pos] = U64(base) + offs[pos]
        t.regs[reg, idx] = (out & U64(0xFFFFFFFF)).astype(U32)
        t.regs[reg + 1, idx] = (out >> U64(32)).astype(U32)
    return f


@impl("IMULD.u64")
def _imuld(ins):
    _sat_check(ins)
    for s in ins.srcs:
        if s.mod("widen", "none") not in ("none", "w0"):
            raise Unsupported(f"widen .{s.mod('widen')}")
    a, b = _read32(ins.srcs[0]), _read32(ins.srcs[1])
    w = _writer64(ins)
    return lambda t, m: w(t, m, np.asarray(a(t), U64) * np.asarray(b(t), U64))


@impl("STORE")
def _store(ins):
    nbytes = _SIZES[ins.name.split(".")[1]]
    if nbytes in (3, 6):
        raise Unsupported("24/48-bit stores")
    reg = ins.staging[0][0]
    nregs = max(1, nbytes // 4)
    if reg + nregs > 64:
        raise Unsupported("staging registers past r63")
    addr = _address(ins)

    def f(t, m):
        idx = _lanes(t, m)
        if not idx.size:
            return
        words = np.ascontiguousarray(t.regs[reg:reg + nregs, idx].T)
        t.mem.store(addr(t, idx), words.view(np.uint8)[:, :nbytes])
    return f


_ATOM = {
    "aadd": lambda o, x: o + x, "aand": lambda o, x: o & x, "aor": lambda o, x: o | x, "axor": lambda o, x: o ^ x,
    "axchg": lambda o, x: x, "aumin": min, "aumax": max,
}
_ATOM1 = {"ainc": lambda o, x: o + 1, "adec": lambda o, x: o - 1, "aumax1": lambda o, x: max(o, 1),
          "aor1": lambda o, x: o | 1}


def _signed_op(nbytes, f):
    bits = 8 * nbytes

    def sx(v):
        return v - (1 << bits) if v >> (bits - 1) else v
    return lambda o, x: f(sx(o), sx(x))


@impl("ATOM.i32", "ATOM.i64", "ATOM_RETURN.i32", "ATOM_RETURN.i64", "ATOM1_RETURN.i32", "ATOM1_RETURN.i64")
def _atom(ins):
    nbytes = 4 if ins.name.endswith("i32") else 8
    nregs = nbytes // 4
    name = ins.mod("atomic_operation") or ins.mod("atomic_operation_with_1")
    if ins.mod("compare"):
        raise Unsupported("compare-and-swap")
    if name in _ATOM:
        op = _ATOM[name]
    elif name in _ATOM1:
        op = _ATOM1[name]
    elif name in ("asmin", "asmax"):
        op = _signed_op(nbytes, min if name == "asmin" else max)
    elif name == "asmax1":
        op = _signed_op(nbytes, lambda o, x: max(o, 1))
    else:
        raise Unsupported(f".{name}")
    a = _read64(ins.srcs[0])
    off = U64(ins.imm("offset"))
    ret = next(((r, c) for r, c, rd, wr in ins.staging if wr), None)
    src = next((r for r, c, rd, wr in ins.staging if rd), None)
    has_operand = not ins.name.startswith("ATOM1")

    def f(t, m):
        idx = _lanes(t, m)
        if not idx.size:
            return
        addr = np.broadcast_to(a(t), (t.n,))[idx] + off
        x = np.zeros(idx.size, U64)
        if has_operand:
            x = t.regs[src, idx].astype(U64)
            if nregs == 2:
                x |= t.regs[src + 1, idx].astype(U64) << U64(32)
        try:
            old = t.mem.atomic(addr, nbytes, op, x)
        except MisalignedAtomic as e:
            raise ShaderFault(EXC_DATA_INVALID, e.va & 0xFFFFFFFF, f"{isa.disassemble(ins).strip()}: {e}") from None
        if ret is not None and ret[1]:
            t.regs[ret[0], idx] = (old & U64(0xFFFFFFFF)).astype(U32)
            if nregs == 2:
                t.regs[ret[0] + 1, idx] = (old >> U64(32)).astype(U32)
    return f


# -- textures (TEX_FETCH) -----------------------------------------------------------------------------
# Staging registers read, compacted in this order (bifrost_compile.c valhall_tex_sreg): x, y (2D), the
# array index (.array_enable); the texel offset / sample / LOD word and the others are not modelled.

def _surface(t, handle: int) -> texture.Surface:
    key = ("texture", handle)
    s = t.resources.get(key)
    if s is None:
        try:
            s = texture.resolve(t.mem.aspace.read, int(t.special((1, 7))), handle)
        except texture.TextureError as e:
            raise ShaderFault(EXC_DATA_INVALID, handle, f"TEX_FETCH: {e}") from None
        t.resources[key] = s
    return s


@impl("TEX_FETCH")
def _tex_fetch(ins):
    if ins.mod("register_width") != "32":
        raise Unsupported(f"register width .{ins.mod('register_width')}")
    if ins.mod("texel_offset"):
        raise Unsupported(".texel_offset")
    dims = {"1d": 1, "2d": 2}.get(ins.mod("dimension"))
    if dims is None:
        raise Unsupported(f".{ins.mod('dimension')}")
    (dst, nwrite, _, _), (src, nread, _, _) = ins.staging
    array = bool(ins.mod("array_enable"))
    if nread != dims + array:
        raise Unsupported(f"{nread} coordinate staging registers for .{ins.mod('dimension')}"
                          f"{'.array_enable' if array else ''} (LOD / offset / sample words)")
    mask = ins.mod("write_mask")
    comps = [i for i, c in enumerate("rgba") if c in mask]
    if len(comps) != nwrite or dst + nwrite > 64 or src + nread > 64:
        raise Unsupported(f"write mask .{mask} with {nwrite} staging registers")
    rtype = ins.mod("register_type")
    image = _read64(ins.srcs[0])

    def f(t, m):
        idx = _lanes(t, m)
        if not idx.size:
            return
        img = np.broadcast_to(image(t), (t.n,))[idx]
        if (img >> U64(32)).any():
            raise ShaderFault(EXC_DATA_INVALID, int(img[0] >> U64(32)), "TEX_FETCH: image source high word "
                                                                         f"0x{int(img[0] >> U64(32)):x} not implemented")
        handles = (img & U64(0xFFFFFFFF)).astype(np.int64)
        x = t.regs[src, idx].astype(np.int64)
        y = t.regs[src + 1, idx].astype(np.int64) if dims == 2 else np.zeros_like(x)
        layer = t.regs[src + dims, idx].astype(np.int64) if array else np.zeros_like(x)
        out = np.zeros((4, idx.size), U32)
        for h in np.unique(handles):
            s = _surface(t, int(h))
            if rtype != "reserved" and texture.KIND_TYPE[s.kind] != rtype:
                raise ShaderFault(EXC_DATA_INVALID, int(h), f"TEX_FETCH: register type .{rtype} for a {s.format} "
                                                            "texture not implemented")
            pos = np.nonzero(handles == h)[0]
            # out of range reads zero (not verified: Vulkan leaves it undefined)
            inside = pos[(x[pos] < s.width) & (y[pos] < s.height) & (layer[pos] < s.layers)]
            if inside.size:
                try:
                    if s.afbc:
                        hdr = t.mem.load(texture.afbc_header_addresses(s, x[inside], y[inside], layer[inside]), 16)
                        texels = texture.afbc_solid_texels(s, hdr)
                    else:
                        texels = t.mem.load(texture.texel_addresses(s, x[inside], y[inside], layer[inside]), s.bpp)
                except texture.TextureError as e:
                    raise ShaderFault(EXC_DATA_INVALID, int(h), f"TEX_FETCH: {e}") from None
                out[:, inside] = texture.unpack(s, texels)
        for k, c in enumerate(comps):
            t.regs[dst + k, idx] = out[c]
    return f


# -- BLEND (fragment shaders): the colour goes to the tile buffer through the threads' sink ---------

@impl("BLEND")
def _blend(ins):
    d = ins.srcs[0]
    if d.kind != "s" or d.page != 0 or not 8 <= d.value <= 15 or d.word:
        raise Unsupported("a blend descriptor source other than blend_descriptor_N")
    if ins.mod("register_format") != "f32" or ins.mod("vector_size") != "v4":
        raise Unsupported(f".{ins.mod('vector_size')}.{ins.mod('register_format')} (v4.f32 only)")
    if ins.flow != isa.FLOW_END:
        raise Unsupported("BLEND not ending the shader (a blend shader call and return)")
    reg, n = ins.staging[0][0], d.value - 8
    if reg + 4 > 64:
        raise Unsupported("staging registers past r63")
    cov = _read32(ins.srcs[1])

    def f(t, m):
        idx = _lanes(t, m)
        if not idx.size:
            return
        if t.blend is None:
            raise ShaderFault(EXC_DATA_INVALID, n, "BLEND outside a fragment shader")
        t.blend(n, idx, t.regs[reg:reg + 4, idx], np.broadcast_to(cov(t), (t.n,))[idx])
    return f
