"""Register-only CS instructions compiled once into small closures (the interpreter's fast path).

A hit in `table(nregs)` maps a raw instruction word to a closure over its decoded fields
that takes the stream's register list and returns how far the pc moves: 8, or a taken
branch's distance. The key is the word itself, not the address it was fetched from, so a
ring the CPU (or a STORE) rewrites can never run stale code. An instruction that reaches
memory, scoreboards, the call stack or a register out of range compiles to `SLOW` (returns
0): the interpreter runs it through its handler table with every check. Registers hold
unsigned 32-bit values (every write masks), which the branch conditions rely on.
"""

from __future__ import annotations

from typing import Callable

from .isa import Instr, Op

M32 = 0xFFFFFFFF
SIGN = 0x80000000
CACHE_MAX = 1 << 16

Handler = Callable[[list], int]


def SLOW(regs: list) -> int:
    return 0


def _nop(regs: list) -> int:
    return 8


_TABLES: dict[int, dict[int, Handler]] = {}


def table(nregs: int) -> dict[int, Handler]:
    """raw word -> handler for streams with `nregs` registers (range checks are compiled in)."""
    t = _TABLES.get(nregs)
    if t is None:
        t = _TABLES[nregs] = {}
    return t


def lookup(t: dict[int, Handler], ins: Instr, nregs: int) -> Handler:
    """Compile `ins` into `t` (which `table(nregs)` returned) and return its handler."""
    if len(t) >= CACHE_MAX:
        t.clear()
    h = t[ins.raw] = compile_instr(ins, nregs)
    return h


def compile_instr(ins: Instr, nregs: int) -> Handler:
    op = ins.op
    f = ins.fields
    if op == Op.NOP:
        return _nop
    if op == Op.MOVE32 and f["dst"] < nregs:
        return _move32(f["dst"], f["imm"])
    if op == Op.MOVE48 and f["dst"] + 1 < nregs:
        return _move48(f["dst"], f["imm"])
    if op == Op.ADD_IMM32 and max(f["dst"], f["src"]) < nregs:
        return _add32(f["dst"], f["src"], f["imm"])
    if op == Op.ADD_IMM64 and max(f["dst"], f["src"]) + 1 < nregs:
        return _add64(f["dst"], f["src"], f["imm"])
    if op == Op.UMIN32 and max(f["dst"], f["src0"], f["src1"]) < nregs:
        return _umin32(f["dst"], f["src0"], f["src1"])
    if op == Op.BRANCH and f["value"] < nregs and f["offset"] != -1:  # -1: onto itself, a 0 step
        return _branch(f["cond"] & 7, f["value"], 8 + 8 * f["offset"])
    return SLOW


def _move32(d: int, v: int) -> Handler:
    def h(r):
        r[d] = v
        return 8
    return h


def _move48(d: int, v: int) -> Handler:
    lo, hi = v & M32, v >> 32
    e = d + 1

    def h(r):
        r[d] = lo
        r[e] = hi
        return 8
    return h


def _add32(d: int, s: int, imm: int) -> Handler:
    def h(r):
        r[d] = (r[s] + imm) & M32
        return 8
    return h


def _add64(d: int, s: int, imm: int) -> Handler:
    s1, d1 = s + 1, d + 1

    def h(r):
        v = (r[s] | r[s1] << 32) + imm
        r[d] = v & M32
        r[d1] = (v >> 32) & M32
        return 8
    return h


def _umin32(d: int, a: int, b: int) -> Handler:
    def h(r):
        x, y = r[a], r[b]
        r[d] = x if x < y else y
        return 8
    return h


def _branch(cond: int, v: int, taken: int) -> Handler:
    # Conditions compare the register, as a signed 32-bit value, with 0.
    if cond == 0:    # LE
        def h(r):
            x = r[v]
            return taken if x == 0 or x & SIGN else 8
    elif cond == 1:  # GT
        def h(r):
            x = r[v]
            return taken if x and not x & SIGN else 8
    elif cond == 2:  # EQ
        def h(r):
            return 8 if r[v] else taken
    elif cond == 3:  # NE
        def h(r):
            return taken if r[v] else 8
    elif cond == 4:  # LT
        def h(r):
            return taken if r[v] & SIGN else 8
    elif cond == 5:  # GE
        def h(r):
            return 8 if r[v] & SIGN else taken
    elif cond == 6:  # ALWAYS
        def h(r):
            return taken
    else:            # never
        return _nop
    return h
