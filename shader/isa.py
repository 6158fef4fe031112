"""Valhall (v10) instructions: decode a 64-bit word, disassemble it Mesa-style, assemble text.

Everything is derived from the one table in `table.py`; the word layout (ISA.xml, Mesa's
valhall.py): sources are bytes 0-3 (or more, by index), the destination byte 40-47 (register
and write mask) or staging registers there, primary opcode 48-56, FAU page 57-58, flow 59-62,
bit 63 reserved. The secondary opcode sits after the sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .enums import ENUMS, IMMEDIATES, SPECIAL_FAU
from .table import IMM, MODIFIERS, SR, TABLE, VA, VA_ENUMS, M, S, Spec

FLOW = ENUMS["flow"]
FLOW_END = FLOW.values.index("end")
FLOW_RECONVERGE = FLOW.values.index("reconverge")
_SPECIAL_BY_NAME = {name: (page, idx) for page, ents in SPECIAL_FAU.items() for idx, name in ents.items()}


class InvalidEncoding(Exception):
    """A word that is not a v10 instruction: the message names the opcode and field."""


def typesize(name: str) -> int:
    """The operand size an instruction name implies (valhall.py's rule)."""
    if name.endswith("128"):
        return 128
    if name.endswith("48"):
        return 48
    if name.endswith("8"):
        return 8
    try:
        return int(name[-2:])
    except ValueError:
        return 32


@dataclass(frozen=True, slots=True)
class SrcField:
    start: int
    size: int
    flags: frozenset
    mods: tuple            # (key, start, bits, enum name or None): neg abs not widen swizzle lane combine


@dataclass(frozen=True, slots=True)
class Mod:
    name: str
    start: int
    size: int
    enum: str | None       # None: a flag
    implied: bool          # no bits of its own, or not printed (staging counts)


@dataclass(frozen=True, slots=True)
class Form:
    """A table entry made ready for decoding."""
    spec: Spec
    name: str
    srcs: tuple
    staging: tuple         # (start, read, write, count rule "write"|"count", flags true|false|rw)
    imms: tuple
    mods: tuple
    shift: int
    mask: int

    @property
    def message(self) -> bool:
        return self.spec.unit not in ("FMA", "CVT", "SFU")


def _src_field(s: S, i: int, size: int) -> SrcField:
    flags = frozenset(s.flags.split())
    size = s.size or size
    mods = []
    if "absneg" in flags:
        mods += [("neg", 34 + (2 - i) * 2, 1, None), ("abs", 35 + (2 - i) * 2, 1, None)]
    if "not" in flags:
        mods.append(("not", 35, 1, None))
    wpos = 26 if i == 1 else 36
    if "lanes" in flags:
        mods.append(("lanes", wpos, 4, "lanes_8_bit"))
    elif "halfswizzle" in flags:
        mods.append(("widen", wpos, 4, "half_swizzles_8_bit"))
    elif "widen" in flags:
        mods.append(("widen", wpos, 4, f"swizzles_{size}_bit"))
    elif "combine" in flags:
        mods.append(("combine", 37, 3, "combine"))
    if "swizzle" in flags:
        mods.append(("swizzle", 24 + (2 - i) * 2, 2, "widen" if size == 32 else "swizzles_16_bit"))
    if s.lane is not None:
        pos = (38 if i == 0 else 36) if s.lane == -1 else s.lane
        mods.append(("lane", pos, 2 if size in (8, 32) else 1, f"lane_{size}_bit"))
    return SrcField(i * 8, size, flags, tuple(mods))


def _form(spec: Spec) -> Form:
    tsize = typesize(spec.name)
    srcs, staging, imms, mods = [], [], [], []
    i = 0
    for it in spec.items:
        if isinstance(it, S):
            f = _src_field(it, i, tsize)
            srcs.append(f)
            i += 2 if tsize != 64 and f.size == 64 else 1
        elif isinstance(it, SR):
            start = 16 if it.write and it.flags == "false" else 40
            staging.append((start, it.read, it.write, it.flags))
        elif isinstance(it, IMM):
            imms.append(it)
        elif isinstance(it, M):
            name, start, size, enum = MODIFIERS[it.tag]
            mods.append(Mod(name, start, size, enum or None, enum == ""))
        elif isinstance(it, VA):
            enum = VA_ENUMS.get(it.name) if it.size > 1 else None
            mods.append(Mod(it.name, it.start, it.size, enum, it.start >= 64))
    modnames = {m.name for m in mods}
    rules = []
    for start, read, write, flags in staging:
        if write and "staging_register_write_count" in modnames:
            rules.append((start, read, write, "write", flags))
        else:
            rules.append((start, read, write, "count", flags))
    shift = max(len(srcs) * 8, 16)
    mask = 0xF if spec.opcode2 is not None else 0
    if "left" in modnames:
        mask |= 0x100
    if len(srcs) == 3 and ({"widen", "lanes", "swizzle"} & srcs[1].flags):
        mask &= ~0xC
    if spec.opcode == 0x90:
        mask |= 0x10
    if spec.name.startswith(("LOAD.i", "STORE.i", "LD_BUFFER.i")):
        shift, mask = 27, 0x7
    if "descriptor_type" in modnames:
        shift, mask = 37, 0x3
    elif "memory_width" in modnames:
        shift, mask = 27, 0x7
    return Form(spec, spec.name, tuple(srcs), tuple(rules), tuple(imms), tuple(mods), shift, mask)


FORMS: dict[str, Form] = {s.name: _form(s) for s in TABLE}
_BUCKETS: dict[int, list[Form]] = {}
for _f in FORMS.values():
    _BUCKETS.setdefault(_f.spec.opcode, []).append(_f)


# -- decoded instructions -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Operand:
    """A decoded source. kind: 'r' register, 'u' uniform, 'i' immediate LUT, 's' special FAU."""
    kind: str
    value: int             # register, uniform index, LUT index, special entry
    discard: bool = False
    word: int = 0          # special: which 32-bit half
    page: int = 0
    mods: tuple = ()       # (key, value) with value an enum string or a bool

    def mod(self, key, default=None):
        for k, v in self.mods:
            if k == key:
                return v
        return default

    @property
    def name(self) -> str:
        if self.kind == "r":
            return f"{'^' if self.discard else ''}r{self.value}"
        if self.kind == "u":
            return f"u{self.value}"
        if self.kind == "i":
            return f"0x{IMMEDIATES[self.value]:X}"
        return f"{SPECIAL_FAU[self.page][self.value]}.w{self.word}"


@dataclass(frozen=True, slots=True)
class Instr:
    raw: int
    form: Form
    flow: int
    page: int
    dest: tuple | None     # (register, write mask 1|2|3)
    staging: tuple         # ((register, count, read, write), ...)
    srcs: tuple
    imms: tuple            # ((name, value), ...)
    mods: tuple            # ((name, value), ...) value: enum string, or bool for flags

    @property
    def name(self) -> str:
        return self.form.name

    def mod(self, name, default=None):
        for k, v in self.mods:
            if k == name:
                return v
        return default

    def imm(self, name):
        for k, v in self.imms:
            if k == name:
                return v
        raise KeyError(name)


def _bits(raw: int, start: int, size: int) -> int:
    return (raw >> start) & ((1 << size) - 1)


def _enum_value(raw: int, name: str, start: int, size: int, enum: str, where: str) -> str:
    v = _bits(raw, start, size)
    vals = ENUMS[enum].values
    if v >= len(vals) or vals[v] is None:
        raise InvalidEncoding(f"{where}: reserved {name} value {v}")
    return vals[v]


def _operand(raw: int, f: SrcField, page: int, where: str) -> Operand:
    byte = _bits(raw, f.start, 8)
    mods = []
    for key, start, bits, enum in f.mods:
        if enum is None:
            mods.append((key, bool(_bits(raw, start, 1))))
        else:
            mods.append((key, _enum_value(raw, key, start, bits, enum, where)))
    kind = byte >> 6
    if kind < 2:
        return Operand("r", byte & 0x3F, bool(kind & 1), mods=tuple(mods))
    if kind == 2:
        return Operand("u", (byte & 0x3F) | page << 6, mods=tuple(mods))
    v = byte & 0x1F
    if not byte & 0x20:
        return Operand("i", v, mods=tuple(mods))
    entry = v >> 1
    if entry not in SPECIAL_FAU.get(page, {}):
        raise InvalidEncoding(f"{where}: reserved special FAU value {entry} of page {page}")
    return Operand("s", entry, word=v & 1, page=page, mods=tuple(mods))


@lru_cache(maxsize=65536)
def decode(raw: int) -> Instr:
    """Decode a 64-bit word (little-endian bit 0 first). InvalidEncoding names what is wrong."""
    opcode = _bits(raw, 48, 9)
    if raw >> 63:
        raise InvalidEncoding(f"opcode 0x{opcode:X}: reserved bit 63 set")
    bucket = _BUCKETS.get(opcode)
    if bucket is None:
        raise InvalidEncoding(f"opcode 0x{opcode:X} is not a Valhall v10 instruction")
    form = None
    for f in bucket:
        if f.spec.opcode2 is None or _bits(raw, f.shift, 16) & f.mask == f.spec.opcode2:
            form = f
            break
    if form is None:
        f = bucket[0]
        raise InvalidEncoding(f"opcode 0x{opcode:X}: secondary opcode 0x{_bits(raw, f.shift, 16) & f.mask:X} "
                              f"(bits {f.shift}+) is not defined")
    where = form.name
    flow = _bits(raw, 59, 4)
    if FLOW.values[flow] is None:
        raise InvalidEncoding(f"{where}: reserved flow {flow}")
    page = _bits(raw, 57, 2)
    mods = []
    counts = {}
    for m in form.mods:
        if m.start >= 64:
            continue
        if m.implied:
            counts[m.name] = _bits(raw, m.start, m.size)
        elif m.enum is None:
            mods.append((m.name, bool(_bits(raw, m.start, 1))))
        else:
            mods.append((m.name, _enum_value(raw, m.name, m.start, m.size, m.enum, where)))
    dest = None
    if form.spec.dests:
        b = _bits(raw, 40, 8)
        dest = (b & 0x3F, b >> 6)
    staging = []
    for start, read, write, rule, _ in form.staging:
        count = (counts.get("staging_register_write_count", 0) + 1 if rule == "write"
                 else counts.get("staging_register_count", 0))
        staging.append((_bits(raw, start, 6), count, read, write))
    srcs = tuple(_operand(raw, f, page, where) for f in form.srcs)
    imms = []
    for imm in form.imms:
        v = _bits(raw, imm.start, imm.size)
        if imm.signed and v >> (imm.size - 1):
            v -= 1 << imm.size
        imms.append((imm.name, v))
    return Instr(raw, form, flow, page, dest, tuple(staging), srcs, tuple(imms), tuple(mods))


# -- disassembly (Mesa's text) ---------------------------------------------------------------------

_NOT_PRINTED = ("left", "memory_width", "descriptor_type")


def disassemble(ins: Instr | int) -> str:
    if isinstance(ins, int):
        ins = decode(ins)
    f = ins.form
    out = [f.name]
    for m in f.mods:
        if m.implied or m.name in _NOT_PRINTED:
            continue
        v = ins.mod(m.name)
        if m.enum is None:
            out.append(f".{m.name}" if v else "")
        else:
            out.append(ENUMS[m.enum].text(ENUMS[m.enum].values.index(v)))
    out.append(FLOW.text(ins.flow))
    ops = []
    if ins.dest is not None:
        reg, mask = ins.dest
        ops.append(f"r{reg}" + ("" if mask == 3 else f".h{0 if mask == 1 else 1}"))
    for reg, count, _, _ in ins.staging:
        ops.append("@" + ":".join(f"r{reg + i}" for i in range(count)))
    for sf, op in zip(f.srcs, ins.srcs):
        text = op.name
        if "absneg" in sf.flags:
            text += ".neg" * op.mod("neg") + ".abs" * op.mod("abs")
        for key, _, _, enum in sf.mods:
            if enum is not None:
                text += ENUMS[enum].text(ENUMS[enum].values.index(op.mod(key)))
        if op.mod("not"):
            text += ".not"
        ops.append(text)
    for imm, (name, v) in zip(f.imms, ins.imms):
        prefix = "#" if name == "constant" else name + ":"
        ops.append(prefix + (str(v) if imm.signed else f"0x{v:X}"))
    return "".join(out) + " " + ", ".join(ops)


# -- assembly (Mesa's text back to a word: tests and hand-written shaders) ------------------------

_SRC_RE = re.compile(r"^(\^?)(?:r(\d+)|u(\d+)|(0x[0-9A-Fa-f]+)|([a-z_0-9]+?)\.w([01]))((?:\.[A-Za-z0-9_]+)*)$")


def _find_form(mnemonic: str) -> tuple[Form, list[str]]:
    parts = mnemonic.split(".")
    for n in range(len(parts), 0, -1):
        f = FORMS.get(".".join(parts[:n]))
        if f is not None:
            return f, parts[n:]
    raise ValueError(f"unknown instruction {mnemonic!r}")


def assemble(text: str) -> int:
    """Mesa-syntax text -> 64-bit word (the inverse of disassemble)."""
    text = text.strip()
    mnemonic, _, rest = text.partition(" ")
    f, tokens = _find_form(mnemonic)
    raw = f.spec.opcode << 48
    if f.spec.opcode2 is not None:
        raw |= f.spec.opcode2 << f.shift
    flow = 0
    for t in tokens:
        if t in FLOW.values:
            flow = FLOW.values.index(t)
            continue
        for m in f.mods:
            if m.implied or m.start >= 64:
                continue
            if m.enum is None and t == m.name:
                raw |= 1 << m.start
                break
            if m.enum is not None and t in ENUMS[m.enum].values:
                raw = raw & ~(((1 << m.size) - 1) << m.start) | ENUMS[m.enum].values.index(t) << m.start
                break
        else:
            raise ValueError(f"{f.name}: unknown modifier .{t}")
    for m in f.mods:  # enums left at their default
        if m.enum is not None and not m.implied and m.start < 64 and ENUMS[m.enum].default is not None:
            if not any(t in ENUMS[m.enum].values for t in tokens):
                raw |= ENUMS[m.enum].default << m.start
    ops = [o.strip() for o in rest.split(",") if o.strip()] if rest.strip() else []
    page = None
    pos = 0
    if f.spec.dests:
        m = re.fullmatch(r"r(\d+)(?:\.h([01]))?", ops[pos])
        mask = 3 if m.group(2) is None else (1 if m.group(2) == "0" else 2)
        raw |= (int(m.group(1)) | mask << 6) << 40
        pos += 1
    elif not f.staging:
        raw |= 0xC0 << 40
    for start, read, write, rule, encflags in f.staging:
        regs = ops[pos][1:].split(":") if ops[pos] != "@" else []
        if not ops[pos].startswith("@") or any(not re.fullmatch(r"r\d+", r) for r in regs):
            raise ValueError(f"{f.name}: staging registers must be @rN:rN+1..., not {ops[pos]!r}")
        pos += 1
        base = int(regs[0][1:]) if regs else 0
        flags = 0
        if encflags == "rw":
            flags = 0xC0
        elif encflags == "true":
            flags = (0x80 if write else 0) | (0x40 if read else 0)
        raw |= (base | flags) << start if start == 40 else base << start
        if rule == "write":
            raw |= (len(regs) - 1) << 36
        else:
            raw |= len(regs) << 33
    for sf in f.srcs:
        m = _SRC_RE.match(ops[pos])
        if m is None:
            raise ValueError(f"{f.name}: bad source {ops[pos]!r}")
        pos += 1
        disc, reg, uni, imm, special, word, suffix = m.groups()
        if reg is not None:
            byte = int(reg) | (0x40 if disc else 0)
        elif uni is not None:
            u = int(uni)
            byte, page = 0x80 | (u & 0x3F), u >> 6
        elif imm is not None:
            byte = 0xC0 | IMMEDIATES.index(int(imm, 16))
        else:
            p, entry = _SPECIAL_BY_NAME[special]
            byte, page = 0xE0 | entry << 1 | int(word), p
        raw |= byte << sf.start
        for t in suffix.split(".")[1:]:
            for key, start, bits, enum in sf.mods:
                if enum is None and t == key:
                    raw |= 1 << start
                    break
                if enum is not None and t in ENUMS[enum].values:
                    raw = raw & ~(((1 << bits) - 1) << start) | ENUMS[enum].values.index(t) << start
                    break
            else:
                raise ValueError(f"{f.name}: unknown source modifier .{t}")
        for key, start, bits, enum in sf.mods:
            if enum is not None and ENUMS[enum].default is not None:
                if not any(t in ENUMS[enum].values for t in suffix.split(".")[1:]):
                    raw |= ENUMS[enum].default << start
    for imm in f.imms:
        t = ops[pos]
        pos += 1
        v = int(t.split(":", 1)[1] if ":" in t else t.lstrip("#"), 0)
        raw |= (v & ((1 << imm.size) - 1)) << imm.start
    if pos != len(ops):
        raise ValueError(f"{f.name}: {len(ops) - pos} operands too many in {text!r}")
    return raw | (page or 0) << 57 | flow << 59


def assemble_program(text: str) -> bytes:
    """One instruction a line ('#' or '//' start comments) -> little-endian code bytes."""
    words = []
    for line in text.splitlines():
        line = line.split("//")[0].strip()
        if line and not line.startswith(";"):
            words.append(assemble(line))
    return b"".join(w.to_bytes(8, "little") for w in words)
