"""The Mali v10+ (CSF) command-stream instruction set: decoder, disassembler and assembler.

This is the one shared decoder for the CS interpreter, the logs and the traces.

Every instruction is a little-endian 64-bit word, and the opcode is in bits [63:56]. Registers are
8-bit indices into the CS register file of 32-bit registers. "dN" is the 64-bit pair rN (low half)
and rN+1 (high half).

The bit layouts follow Mesa's ``src/panfrost/genxml/v10.xml`` (CS section), in its newest form.
Mesa has widened some fields over time. A widened field only makes bits that used to be reserved
part of the field, and no field has moved:

* WAIT wait_mask is 16 bits at 16 (older genxml: 8 bits).
* BRANCH cond is 4 bits at 28 (older: 3).
* SYNC_WAIT32/64 gained ``scope`` at bits 1-2.
* STORE_STATE state is 8 bits at 32 (older: 2).
* HEAP_OPERATION operation is 3 bits at 32 (older: 2).
* NOP's ignored payload is split into metadata_payload (0:48) and metadata_type (48:8).

Field names are snake_case and short. The genxml "Destination" is ``dst``, "Source" is ``src``,
"Address" is ``addr`` and "Progress increment" is ``progress_inc`` (``progress_increment`` is also
accepted). Enum-typed fields decode to plain ints; wrap them in :class:`Cond`,
:class:`SyncScope` and so on when needed. A value the genxml enum does not define (BRANCH cond 7
to 15, for example) still decodes. Rejecting it is the interpreter's job.

:func:`decode` raises :class:`InvalidInstruction` for an opcode genxml does not define. It also
raises for a word with bits set outside every field of its opcode, which is what Mesa's unpack
flags. NOP has no reserved bits.
"""

from __future__ import annotations

import enum
import operator
import struct
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterator, Mapping, NamedTuple

__all__ = [
    "Op", "Cond", "SyncScope", "FlushMode", "OtherFlushMode", "StateId", "HeapOperation",
    "TaskAxis", "ExceptionType", "TileOrder", "ComputeSR", "IdvsSR", "FragmentSR",
    "FieldSpec", "FIELDS", "INSTR_SIZE", "InvalidInstruction", "Instr",
    "decode", "disassemble", "encode", "decode_stream", "iter_stream", "field_names",
    "parse_op", "branch_target", "clear_cache",
]

INSTR_SIZE = 8
_U64 = (1 << 64) - 1


# --------------------------------------------------------------------------------------------
# Enums (genxml names, upper snake case)
# --------------------------------------------------------------------------------------------

class Op(enum.IntEnum):
    """CS opcodes (genxml "CS Opcode"). ADD_IMM32/ADD_IMM64/UMIN32 are genxml's
    ADD_IMMEDIATE32/ADD_IMMEDIATE64/COMPARE_SELECT32 (named after their struct)."""
    NOP = 0
    MOVE48 = 1
    MOVE32 = 2
    WAIT = 3
    RUN_COMPUTE = 4
    RUN_TILING = 5
    RUN_IDVS = 6
    RUN_FRAGMENT = 7
    RUN_FULLSCREEN = 8
    FINISH_TILING = 9
    FINISH_FRAGMENT = 11
    ADD_IMM32 = 16
    ADD_IMM64 = 17
    UMIN32 = 18
    LOAD_MULTIPLE = 20
    STORE_MULTIPLE = 21
    BRANCH = 22
    SET_SB_ENTRY = 23
    PROGRESS_WAIT = 24
    SET_EXCEPTION_HANDLER = 25
    CALL = 32
    JUMP = 33
    REQ_RESOURCE = 34
    FLUSH_CACHE2 = 36
    SYNC_ADD32 = 37
    SYNC_SET32 = 38
    SYNC_WAIT32 = 39
    STORE_STATE = 40
    PROT_REGION = 41
    PROGRESS_STORE = 42
    PROGRESS_LOAD = 43
    RUN_COMPUTE_INDIRECT = 44
    ERROR_BARRIER = 47
    HEAP_SET = 48
    HEAP_OPERATION = 49
    TRACE_POINT = 50
    SYNC_ADD64 = 51
    SYNC_SET64 = 52
    SYNC_WAIT64 = 53


class Cond(enum.IntEnum):
    """genxml "CS Condition", used by BRANCH (compare register to 0) and SYNC_WAIT32/64."""
    LE = 0
    GT = 1
    EQ = 2
    NE = 3
    LT = 4
    GE = 5
    ALWAYS = 6


class SyncScope(enum.IntEnum):
    SYSTEM = 0
    CSG = 2


class FlushMode(enum.IntEnum):
    """FLUSH_CACHE2 l2 / lsc."""
    NONE = 0
    CLEAN = 1
    CLEAN_INVALIDATE = 3


class OtherFlushMode(enum.IntEnum):
    """FLUSH_CACHE2 other."""
    NONE = 0
    INVALIDATE = 2


class StateId(enum.IntEnum):
    """STORE_STATE state."""
    TIMESTAMP = 0
    CYCLE_COUNT = 1
    DISJOINT_COUNT = 2
    ERROR_STATUS = 3


class HeapOperation(enum.IntEnum):
    VERTEX_TILER_STARTED = 0
    VERTEX_TILER_COMPLETED = 1
    FRAGMENT_COMPLETED = 3


class TaskAxis(enum.IntEnum):
    X = 0
    Y = 1
    Z = 2


class ExceptionType(enum.IntEnum):
    TILER_OOM = 2


class TileOrder(enum.IntEnum):
    """genxml "Tile Render Order" (RUN_FRAGMENT tile_order)."""
    Z_ORDER = 0
    HORIZONTAL = 1
    VERTICAL = 2
    REVERSE_HORIZONTAL = 5
    REVERSE_VERTICAL = 6


class ComputeSR(enum.IntEnum):
    """Staging registers that RUN_COMPUTE(_INDIRECT) reads. SRT/FAU/SPD/TSD are register pairs,
    and the instruction's *_select field picks one of the four."""
    SRT_0 = 0
    SRT_1 = 2
    SRT_2 = 4
    SRT_3 = 6
    FAU_0 = 8
    FAU_1 = 10
    FAU_2 = 12
    FAU_3 = 14
    SPD_0 = 16
    SPD_1 = 18
    SPD_2 = 20
    SPD_3 = 22
    TSD_0 = 24
    TSD_1 = 26
    TSD_2 = 28
    TSD_3 = 30
    GLOBAL_ATTRIBUTE_OFFSET = 32
    WG_SIZE = 33
    JOB_OFFSET_X = 34
    JOB_OFFSET_Y = 35
    JOB_OFFSET_Z = 36
    JOB_SIZE_X = 37
    JOB_SIZE_Y = 38
    JOB_SIZE_Z = 39


class IdvsSR(enum.IntEnum):
    """Staging registers read by RUN_IDVS / RUN_TILING (v10)."""
    SRT_0 = 0
    SRT_1 = 2
    SRT_2 = 4
    SRT_3 = 6
    FAU_0 = 8
    FAU_1 = 10
    FAU_2 = 12
    FAU_3 = 14
    SPD_0 = 16
    SPD_1 = 18
    SPD_2 = 20
    SPD_3 = 22
    TSD_0 = 24
    TSD_1 = 26
    TSD_2 = 28
    TSD_3 = 30
    GLOBAL_ATTRIBUTE_OFFSET = 32
    INDEX_COUNT = 33
    INSTANCE_COUNT = 34
    INDEX_OFFSET = 35
    VERTEX_OFFSET = 36
    INSTANCE_OFFSET = 37
    DCD2 = 38
    INDEX_BUFFER_SIZE = 39
    TILER_CTX = 40
    SCISSOR_BOX = 42
    LOW_DEPTH_CLAMP = 44
    HIGH_DEPTH_CLAMP = 45
    OQ = 46
    VARY_SIZE = 48
    BLEND_DESC = 50
    ZSD = 52
    INDEX_BUFFER = 54
    TILER_FLAGS = 56
    DCD0 = 57
    DCD1 = 58
    PRIMITIVE_SIZE = 60


class FragmentSR(enum.IntEnum):
    """Staging registers read by RUN_FRAGMENT."""
    FBD_POINTER = 40
    BBOX_MIN = 42
    BBOX_MAX = 43
    TEM_POINTER = 44
    TEM_ROW_STRIDE = 46


# --------------------------------------------------------------------------------------------
# Field tables
# --------------------------------------------------------------------------------------------

class FieldSpec(NamedTuple):
    name: str
    shift: int
    width: int
    signed: bool = False
    scale: int = 0      # genxml modifier shr(N): the decoded value is (raw field) << N


def _f(name: str, shift: int, width: int, signed: bool = False, scale: int = 0) -> FieldSpec:
    return FieldSpec(name, shift, width, signed, scale)


_PROGRESS = _f("progress_inc", 32, 1)
_SELECTS = (_f("srt_select", 40, 2), _f("spd_select", 42, 2), _f("tsd_select", 44, 2),
            _f("fau_select", 46, 2))
_SYNC_UPDATE = (_f("error_propagate", 0, 1), _f("scope", 1, 2), _f("wait_mask", 16, 16),
                _f("data", 32, 8), _f("addr", 40, 8), _f("signal_slot", 48, 4))
_SYNC_WAIT = (_f("error_reject", 0, 1), _f("scope", 1, 2), _f("cond", 28, 4),
              _f("data", 32, 8), _f("addr", 40, 8))
_MULTIPLE = (_f("offset", 0, 16, True), _f("mask", 16, 16), _f("addr", 40, 8), _f("base", 48, 8))
_IMM_ADD = (_f("imm", 0, 32, True), _f("src", 40, 8), _f("dst", 48, 8))
_CALL = (_f("length", 32, 8), _f("addr", 40, 8))

#: Fields of every opcode, in bit order (genxml v10, newest layout).
FIELDS: Mapping[Op, tuple[FieldSpec, ...]] = MappingProxyType({
    Op.NOP: (_f("metadata_payload", 0, 48), _f("metadata_type", 48, 8)),
    Op.MOVE48: (_f("imm", 0, 48), _f("dst", 48, 8)),
    Op.MOVE32: (_f("imm", 0, 32), _f("dst", 48, 8)),
    Op.WAIT: (_f("wait_mask", 16, 16), _PROGRESS),
    Op.RUN_COMPUTE: (_f("task_increment", 0, 14), _f("task_axis", 14, 2), _PROGRESS, *_SELECTS),
    Op.RUN_TILING: (_f("flags_override", 0, 32), _PROGRESS, *_SELECTS),
    Op.RUN_IDVS: (_f("flags_override", 0, 32), _PROGRESS, _f("malloc_enable", 33, 1),
                  _f("draw_id_register_enable", 34, 1), _f("varying_srt_select", 35, 1),
                  _f("varying_fau_select", 36, 1), _f("varying_tsd_select", 37, 1),
                  _f("fragment_srt_select", 38, 1), _f("fragment_tsd_select", 39, 1),
                  _f("draw_id", 40, 8)),
    Op.RUN_FRAGMENT: (_f("enable_tem", 0, 1), _f("tile_order", 4, 4), _PROGRESS),
    Op.RUN_FULLSCREEN: (_f("flags_override", 0, 32), _PROGRESS, _f("dcd", 40, 8)),
    Op.FINISH_TILING: (_PROGRESS,),
    Op.FINISH_FRAGMENT: (_f("increment_fragment_completed", 0, 1), _f("wait_mask", 16, 16),
                         _f("last_heap_chunk", 32, 8), _f("first_heap_chunk", 40, 8),
                         _f("signal_slot", 48, 4)),
    Op.ADD_IMM32: _IMM_ADD,
    Op.ADD_IMM64: _IMM_ADD,
    Op.UMIN32: (_f("src1", 32, 8), _f("src0", 40, 8), _f("dst", 48, 8)),
    Op.LOAD_MULTIPLE: _MULTIPLE,
    Op.STORE_MULTIPLE: _MULTIPLE,
    Op.BRANCH: (_f("offset", 0, 16, True), _f("cond", 28, 4), _f("value", 40, 8)),
    Op.SET_SB_ENTRY: (_f("endpoint_entry", 0, 4), _f("other_entry", 4, 4)),
    Op.PROGRESS_WAIT: (_f("queue", 0, 5), _f("src", 40, 8)),
    Op.SET_EXCEPTION_HANDLER: (_f("exception_type", 0, 8), *_CALL),
    Op.CALL: _CALL,
    Op.JUMP: _CALL,
    Op.REQ_RESOURCE: (_f("compute", 0, 1), _f("fragment", 1, 1), _f("tiler", 2, 1),
                      _f("idvs", 3, 1)),
    Op.FLUSH_CACHE2: (_f("l2", 0, 4), _f("lsc", 4, 4), _f("other", 8, 4), _f("wait_mask", 16, 16),
                      _f("flush_id", 40, 8), _f("signal_slot", 48, 4)),
    Op.SYNC_ADD32: _SYNC_UPDATE,
    Op.SYNC_SET32: _SYNC_UPDATE,
    Op.SYNC_WAIT32: _SYNC_WAIT,
    Op.STORE_STATE: (_f("offset", 0, 16, True), _f("wait_mask", 16, 16), _f("state", 32, 8),
                     _f("addr", 40, 8), _f("signal_slot", 48, 4)),
    Op.PROT_REGION: (_f("size", 0, 16, scale=3),),
    Op.PROGRESS_STORE: (_f("src", 40, 8),),
    Op.PROGRESS_LOAD: (_f("dst", 48, 8),),
    Op.RUN_COMPUTE_INDIRECT: (_f("workgroups_per_task", 0, 16), _PROGRESS, *_SELECTS),
    Op.ERROR_BARRIER: (),
    Op.HEAP_SET: (_f("addr", 40, 8),),
    Op.HEAP_OPERATION: (_f("wait_mask", 16, 16), _f("operation", 32, 3), _f("signal_slot", 48, 4)),
    Op.TRACE_POINT: (_f("wait_mask", 16, 16), _f("base", 32, 8), _f("count", 40, 8),
                     _f("signal_slot", 48, 4)),
    Op.SYNC_ADD64: _SYNC_UPDATE,
    Op.SYNC_SET64: _SYNC_UPDATE,
    Op.SYNC_WAIT64: _SYNC_WAIT,
})

#: Other names accepted for a field, by attribute access and by :func:`encode`.
_FIELD_ALIASES = {"progress_increment": "progress_inc"}

#: Other spellings accepted for an opcode by :func:`encode` / :func:`parse_op`.
_OP_ALIASES = {"ADD_IMMEDIATE32": Op.ADD_IMM32, "ADD_IMMEDIATE64": Op.ADD_IMM64,
               "COMPARE_SELECT32": Op.UMIN32}


def _check_tables() -> None:
    for op, specs in FIELDS.items():
        used = 0xFF << 56
        for s in specs:
            m = ((1 << s.width) - 1) << s.shift
            assert not used & m, f"{op.name}.{s.name} overlaps another field"
            used |= m
    assert set(FIELDS) == set(Op)


_check_tables()

# Decode tables, indexed by opcode (0..255):
# (op, ((name, shift, mask, sign_bit, scale), ...), reserved_mask) or None.
_DecodeEntry = tuple[Op, tuple[tuple[str, int, int, int, int], ...], int]
_DECODE: list[_DecodeEntry | None] = [None] * 256
for _op, _specs in FIELDS.items():
    _used = 0
    _tbl = []
    for _s in _specs:
        _m = (1 << _s.width) - 1
        _used |= _m << _s.shift
        _tbl.append((_s.name, _s.shift, _m, (1 << (_s.width - 1)) if _s.signed else 0, _s.scale))
    _DECODE[_op] = (_op, tuple(_tbl), ~_used & ((1 << 56) - 1))
_FIELD_INDEX = {op: {s.name: s for s in specs} for op, specs in FIELDS.items()}
del _op, _specs, _used, _tbl, _s, _m


def field_names(op: Op | int | str) -> tuple[str, ...]:
    """The field names of an opcode, in bit order."""
    return tuple(s.name for s in FIELDS[parse_op(op)])


def parse_op(op: Op | int | str) -> Op:
    """An :class:`Op` from an Op, an opcode number or a name (case-insensitive, genxml aliases
    ADD_IMMEDIATE32/64 and COMPARE_SELECT32 accepted). Raises ValueError."""
    if isinstance(op, Op):
        return op
    if isinstance(op, str):
        key = op.strip().upper()
        if key in Op.__members__:
            return Op[key]
        if key in _OP_ALIASES:
            return _OP_ALIASES[key]
        raise ValueError(f"unknown CS opcode name {op!r}")
    if isinstance(op, int) and 0 <= op < 256 and _DECODE[op] is not None:
        return _DECODE[op][0]
    raise ValueError(f"unknown CS opcode {op!r}")


# --------------------------------------------------------------------------------------------
# Instr / InvalidInstruction
# --------------------------------------------------------------------------------------------

class InvalidInstruction(Exception):
    """A word that is not a valid v10 CS instruction: an undefined opcode, or bits set outside
    every field of its opcode. ``op`` is the Op if the opcode is known, else None."""

    def __init__(self, raw: int, reason: str, op: Op | None = None):
        super().__init__(raw, reason, op)
        self.raw = raw
        self.reason = reason
        self.op = op

    @property
    def opcode(self) -> int:
        return (self.raw >> 56) & 0xFF

    def __str__(self) -> str:
        return f"invalid CS instruction 0x{self.raw:016x}: {self.reason}"


@dataclass(frozen=True, slots=True, repr=False)
class Instr:
    """One decoded instruction. It is immutable and cached, so never mutate ``fields``.
    Fields are readable as attributes (``instr.dst``, ``instr.imm``). Equality and hash go by
    ``raw``."""
    raw: int
    op: Op = field(compare=False)
    fields: Mapping[str, int] = field(compare=False)

    def __getattr__(self, name: str) -> int:
        # Only reached when normal lookup fails, i.e. for field names. Guard dunders and the
        # slots themselves, because copy/pickle probe them before __init__ has run.
        if name.startswith("__") or name in ("raw", "op", "fields"):
            raise AttributeError(name)
        fields = self.fields
        try:
            return fields[name]
        except KeyError:
            alias = _FIELD_ALIASES.get(name)
            if alias is not None and alias in fields:
                return fields[alias]
            raise AttributeError(
                f"{self.op.name} has no field {name!r} (fields: {', '.join(fields) or 'none'})"
            ) from None

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def opcode(self) -> int:
        return int(self.op)

    def __str__(self) -> str:
        return disassemble(self)

    def __repr__(self) -> str:
        return f"<Instr 0x{self.raw:016x} {disassemble(self)}>"

    def __reduce__(self):
        return (decode, (self.raw,))


def _field_property(fname: str) -> property:
    def get(self: Instr) -> int:
        try:
            return self.fields[fname]
        except KeyError:
            raise AttributeError(fname) from None   # falls back to __getattr__ (aliases, message)
    get.__name__ = fname
    return property(get, doc=f"The {fname!r} field (AttributeError if the opcode has none).")


# Fast attribute access: one class-level property per field name. A property is a plain
# descriptor hit, roughly 10x faster than going through __getattr__ after a failed lookup.
for _fname in sorted({s.name for specs in FIELDS.values() for s in specs}):
    assert not hasattr(Instr, _fname), _fname
    setattr(Instr, _fname, _field_property(_fname))
for _alias, _fname in _FIELD_ALIASES.items():
    setattr(Instr, _alias, _field_property(_fname))
del _fname, _alias


# --------------------------------------------------------------------------------------------
# decode
# --------------------------------------------------------------------------------------------

_CACHE: dict[int, Instr] = {}
_CACHE_MAX = 1 << 16


def clear_cache() -> None:
    _CACHE.clear()


def decode(raw: int) -> Instr:
    """Decode a 64-bit instruction word. Raises :class:`InvalidInstruction` for an undefined
    opcode or for bits set outside every field. Results are cached by ``raw``."""
    try:
        return _CACHE[raw]
    except KeyError:
        return _decode_miss(raw)
    except TypeError:
        raise TypeError(f"CS instruction must be an int, not {type(raw).__name__}") from None


def _decode_miss(raw: int) -> Instr:
    if type(raw) is not int:
        try:
            raw = operator.index(raw)     # numpy integers, IntEnum, ...
        except TypeError:
            raise TypeError(f"CS instruction must be an int, not {type(raw).__name__}") from None
        try:
            return _CACHE[raw]
        except KeyError:
            pass
    if raw < 0 or raw > _U64:
        raise ValueError(f"CS instruction 0x{raw:x} does not fit in 64 bits")
    opc = raw >> 56
    entry = _DECODE[opc]
    if entry is None:
        raise InvalidInstruction(raw, f"unknown opcode {opc} (0x{opc:02x})")
    op, tbl, reserved = entry
    bad = raw & reserved
    if bad:
        raise InvalidInstruction(raw, f"{op.name} with reserved bits set: 0x{bad:014x}", op)
    fields = {}
    for name, shift, mask, sign, scale in tbl:
        v = (raw >> shift) & mask
        if sign and v & sign:
            v -= sign << 1
        if scale:
            v <<= scale
        fields[name] = v
    instr = Instr(raw, op, MappingProxyType(fields))
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[raw] = instr
    return instr


def iter_stream(data: bytes | bytearray | memoryview, base_va: int = 0
                ) -> Iterator[tuple[int, Instr | InvalidInstruction]]:
    """Like :func:`decode_stream`, lazily."""
    mv = memoryview(data).cast("B")
    n = len(mv) // INSTR_SIZE * INSTR_SIZE
    va = base_va
    for (raw,) in struct.iter_unpack("<Q", mv[:n]):
        try:
            yield va, decode(raw)
        except InvalidInstruction as e:
            yield va, e
        va += INSTR_SIZE
    if n != len(mv):
        tail = bytes(mv[n:])
        yield va, InvalidInstruction(int.from_bytes(tail, "little"),
                                     f"truncated instruction ({len(tail)} trailing bytes)")


def decode_stream(data: bytes | bytearray | memoryview, base_va: int = 0
                  ) -> list[tuple[int, Instr | InvalidInstruction]]:
    """Decode a buffer of instructions into ``(va, Instr | InvalidInstruction)`` pairs. Trailing
    bytes that do not fill an instruction come back as an InvalidInstruction."""
    return list(iter_stream(data, base_va))


# --------------------------------------------------------------------------------------------
# encode
# --------------------------------------------------------------------------------------------

def encode(op: Op | str | int, **fields: int) -> int:
    """Assemble one instruction. Missing fields are 0. Raises ValueError for an unknown opcode,
    a field the opcode does not have, or a value that does not fit. A signed field takes
    -2**(w-1) .. 2**(w-1)-1, and a scaled field (PROT_REGION size) must be a multiple of its
    unit."""
    op = parse_op(op)
    index = _FIELD_INDEX[op]
    raw = int(op) << 56
    for name, value in fields.items():
        spec = index.get(name)
        if spec is None:
            alias = _FIELD_ALIASES.get(name)
            spec = index.get(alias) if alias else None
            if spec is None:
                raise ValueError(f"{op.name} has no field {name!r} "
                                 f"(fields: {', '.join(index) or 'none'})")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise ValueError(f"{op.name}.{spec.name} must be an int, not {type(value).__name__}")
        v = int(value)
        if spec.scale:
            if v & ((1 << spec.scale) - 1):
                raise ValueError(f"{op.name}.{spec.name}={value} is not a multiple of "
                                 f"{1 << spec.scale}")
            v >>= spec.scale
        if spec.signed:
            lo, hi = -(1 << (spec.width - 1)), (1 << (spec.width - 1)) - 1
        else:
            lo, hi = 0, (1 << spec.width) - 1
        if not lo <= v <= hi:
            lo_s, hi_s = lo << spec.scale, hi << spec.scale
            raise ValueError(f"{op.name}.{spec.name}={value} does not fit "
                             f"({'signed ' if spec.signed else ''}{spec.width} bits: "
                             f"{lo_s}..{hi_s})")
        raw |= (v & ((1 << spec.width) - 1)) << spec.shift
    return raw


# --------------------------------------------------------------------------------------------
# disassemble
# --------------------------------------------------------------------------------------------

_COND_NAMES = {c.value: c.name for c in Cond}
_FLUSH_NAMES = {0: "none", 1: "clean", 3: "clean_invalidate"}
_OTHER_FLUSH_NAMES = {0: "none", 2: "invalidate"}
_STATE_NAMES = {0: "timestamp", 1: "cycle_count", 2: "disjoint_count", 3: "error_status"}
_HEAP_OP_NAMES = {0: "vt_started", 1: "vt_completed", 3: "fragment_completed"}
_TILE_ORDER_NAMES = {0: "z_order", 1: "horizontal", 2: "vertical", 5: "reverse_horizontal",
                     6: "reverse_vertical"}
_SCOPE_NAMES = {0: "system", 2: "csg"}


def _enum_name(table: dict[int, str], v: int) -> str:
    return table.get(v, f"unknown{v}")


def _cond_name(v: int) -> str:
    return _COND_NAMES.get(v, f"COND{v}")


def _mem(addr: int, offset: int = 0) -> str:
    if offset > 0:
        return f"[d{addr} + 0x{offset:x}]"
    if offset < 0:
        return f"[d{addr} - 0x{-offset:x}]"
    return f"[d{addr}]"


def _reg_mask(base: int, mask: int) -> str:
    if not mask:
        return "none"
    lo = (mask & -mask).bit_length() - 1
    hi = mask.bit_length() - 1
    return f"r{base + lo}..r{base + hi}"


def _sb_list(mask: int) -> str:
    """A scoreboard mask as 'sb0', 'sb0..sb7' or 'sb0,sb3..sb5'. 'none' if empty."""
    if not mask:
        return "none"
    parts = []
    i = 0
    while mask >> i:
        if mask >> i & 1:
            j = i
            while mask >> (j + 1) & 1:
                j += 1
            parts.append(f"sb{i}" if i == j else f"sb{i}..sb{j}")
            i = j + 1
        else:
            i += 1
    return ",".join(parts)


def _sync_tail(f: Mapping[str, int]) -> str:
    s = f", scope={_enum_name(_SCOPE_NAMES, f['scope'])}"
    if f["error_propagate"]:
        s += ", propagate"
    return s + f", wait=0x{f['wait_mask']:02x}, signal={f['signal_slot']}"


def _selects(f: Mapping[str, int]) -> str:
    return (f"srt={f['srt_select']}, spd={f['spd_select']}, tsd={f['tsd_select']}, "
            f"fau={f['fau_select']}")


def _progress(f: Mapping[str, int]) -> str:
    return ", progress_inc" if f["progress_inc"] else ""


def branch_target(instr: Instr, pc: int) -> int:
    """The address a BRANCH at ``pc`` goes to when taken: offset instructions past the next."""
    return (pc + INSTR_SIZE * (1 + instr.fields["offset"])) & _U64


def disassemble(raw_or_instr: int | Instr, pc: int | None = None) -> str:
    """One line of assembly. ``pc``, when given, is the instruction's address, used to show
    branch targets. Never raises for a 64-bit word: an invalid one comes back as
    ``.inst 0x... ; invalid: <reason>``."""
    if isinstance(raw_or_instr, Instr):
        instr = raw_or_instr
    else:
        try:
            instr = decode(raw_or_instr)
        except InvalidInstruction as e:
            return f".inst 0x{e.raw:016x}  ; invalid: {e.reason}"
    op, f = instr.op, instr.fields
    fmt = _FORMATTERS[op]
    text = fmt(f)
    if op is Op.BRANCH and pc is not None:
        text += f" -> 0x{branch_target(instr, pc):x}"
    return text


def _nop(f):
    if f["metadata_type"] or f["metadata_payload"]:
        return f"NOP type={f['metadata_type']}, payload=0x{f['metadata_payload']:x}"
    return "NOP"


def _wait(f):
    return f"WAIT {_sb_list(f['wait_mask'])}{_progress(f)}"


def _run_compute(f):
    axis = {0: "X", 1: "Y", 2: "Z"}.get(f["task_axis"], f"axis{f['task_axis']}")
    return (f"RUN_COMPUTE.{axis} task_inc={f['task_increment']}, {_selects(f)}{_progress(f)}")


_IDVS_FLAGS = (("malloc", "malloc_enable"), ("draw_id_enable", "draw_id_register_enable"),
               ("vary_srt", "varying_srt_select"), ("vary_fau", "varying_fau_select"),
               ("vary_tsd", "varying_tsd_select"), ("frag_srt", "fragment_srt_select"),
               ("frag_tsd", "fragment_tsd_select"))


def _run_idvs(f):
    extra = "".join(", " + short for short, key in _IDVS_FLAGS if f[key])
    return (f"RUN_IDVS r{f['draw_id']}, flags=0x{f['flags_override']:x}{extra}{_progress(f)}")


def _run_fragment(f):
    tem = ", tem" if f["enable_tem"] else ""
    return (f"RUN_FRAGMENT tile_order={_enum_name(_TILE_ORDER_NAMES, f['tile_order'])}"
            f"{tem}{_progress(f)}")


def _finish_fragment(f):
    end = ", frag_end" if f["increment_fragment_completed"] else ""
    return (f"FINISH_FRAGMENT d{f['last_heap_chunk']}, d{f['first_heap_chunk']}{end}, "
            f"wait=0x{f['wait_mask']:02x}, signal={f['signal_slot']}")


def _multiple(name, load):
    def fmt(f):
        regs = _reg_mask(f["base"], f["mask"])
        mem = _mem(f["addr"], f["offset"])
        a, b = (regs, mem) if load else (mem, regs)
        return f"{name} {a}, {b} (mask 0x{f['mask']:04x})"
    return fmt


def _branch(f):
    return f"BRANCH.{_cond_name(f['cond'])} r{f['value']}, {f['offset']:+d}"


def _req_resource(f):
    res = [n for n in ("compute", "fragment", "tiler", "idvs") if f[n]]
    return "REQ_RESOURCE " + (", ".join(res) if res else "none")


def _flush_cache2(f):
    return (f"FLUSH_CACHE2 l2={_enum_name(_FLUSH_NAMES, f['l2'])}, "
            f"lsc={_enum_name(_FLUSH_NAMES, f['lsc'])}, "
            f"other={_enum_name(_OTHER_FLUSH_NAMES, f['other'])}, flush_id=r{f['flush_id']}, "
            f"wait=0x{f['wait_mask']:02x}, signal={f['signal_slot']}")


def _sync_update(name, sym, reg):
    def fmt(f):
        return f"{name} {_mem(f['addr'])} {sym} {reg}{f['data']}{_sync_tail(f)}"
    return fmt


def _sync_wait(name, reg):
    def fmt(f):
        s = f"{name}.{_cond_name(f['cond'])} {_mem(f['addr'])}, {reg}{f['data']}"
        if f["scope"]:
            s += f", scope={_enum_name(_SCOPE_NAMES, f['scope'])}"
        if f["error_reject"]:
            s += ", reject"
        return s
    return fmt


def _store_state(f):
    return (f"STORE_STATE {_mem(f['addr'], f['offset'])} = "
            f"{_enum_name(_STATE_NAMES, f['state'])}, "
            f"wait=0x{f['wait_mask']:02x}, signal={f['signal_slot']}")


def _heap_operation(f):
    return (f"HEAP_OPERATION {_enum_name(_HEAP_OP_NAMES, f['operation'])}, "
            f"wait=0x{f['wait_mask']:02x}, signal={f['signal_slot']}")


def _trace_point(f):
    n, b = f["count"], f["base"]
    regs = f"r{b}..r{b + n - 1}" if n else "none"
    return f"TRACE_POINT {regs}, wait=0x{f['wait_mask']:02x}, signal={f['signal_slot']}"


def _set_exception_handler(f):
    t = f["exception_type"]
    tn = "TILER_OOM" if t == ExceptionType.TILER_OOM else f"TYPE{t}"
    return f"SET_EXCEPTION_HANDLER.{tn} d{f['addr']}, r{f['length']}"


_FORMATTERS = {
    Op.NOP: _nop,
    Op.MOVE48: lambda f: f"MOVE48 d{f['dst']}, #0x{f['imm']:x}",
    Op.MOVE32: lambda f: f"MOVE32 r{f['dst']}, #0x{f['imm']:x}",
    Op.WAIT: _wait,
    Op.RUN_COMPUTE: _run_compute,
    Op.RUN_TILING: lambda f: (f"RUN_TILING flags=0x{f['flags_override']:x}, {_selects(f)}"
                              f"{_progress(f)}"),
    Op.RUN_IDVS: _run_idvs,
    Op.RUN_FRAGMENT: _run_fragment,
    Op.RUN_FULLSCREEN: lambda f: (f"RUN_FULLSCREEN r{f['dcd']}, flags=0x{f['flags_override']:x}"
                                  f"{_progress(f)}"),
    Op.FINISH_TILING: lambda f: ("FINISH_TILING progress_inc" if f["progress_inc"]
                                 else "FINISH_TILING"),
    Op.FINISH_FRAGMENT: _finish_fragment,
    Op.ADD_IMM32: lambda f: f"ADD_IMM32 r{f['dst']}, r{f['src']}, #{f['imm']}",
    Op.ADD_IMM64: lambda f: f"ADD_IMM64 d{f['dst']}, d{f['src']}, #{f['imm']}",
    Op.UMIN32: lambda f: f"UMIN32 r{f['dst']}, r{f['src0']}, r{f['src1']}",
    Op.LOAD_MULTIPLE: _multiple("LOAD_MULTIPLE", load=True),
    Op.STORE_MULTIPLE: _multiple("STORE_MULTIPLE", load=False),
    Op.BRANCH: _branch,
    Op.SET_SB_ENTRY: lambda f: (f"SET_SB_ENTRY endpoint=sb{f['endpoint_entry']}, "
                                f"other=sb{f['other_entry']}"),
    Op.PROGRESS_WAIT: lambda f: f"PROGRESS_WAIT d{f['src']}, queue={f['queue']}",
    Op.SET_EXCEPTION_HANDLER: _set_exception_handler,
    Op.CALL: lambda f: f"CALL d{f['addr']}, r{f['length']}",
    Op.JUMP: lambda f: f"JUMP d{f['addr']}, r{f['length']}",
    Op.REQ_RESOURCE: _req_resource,
    Op.FLUSH_CACHE2: _flush_cache2,
    Op.SYNC_ADD32: _sync_update("SYNC_ADD32", "+=", "r"),
    Op.SYNC_SET32: _sync_update("SYNC_SET32", "=", "r"),
    Op.SYNC_WAIT32: _sync_wait("SYNC_WAIT32", "r"),
    Op.STORE_STATE: _store_state,
    Op.PROT_REGION: lambda f: f"PROT_REGION size=0x{f['size']:x}",
    Op.PROGRESS_STORE: lambda f: f"PROGRESS_STORE d{f['src']}",
    Op.PROGRESS_LOAD: lambda f: f"PROGRESS_LOAD d{f['dst']}",
    Op.RUN_COMPUTE_INDIRECT: lambda f: (f"RUN_COMPUTE_INDIRECT "
                                        f"wg_per_task={f['workgroups_per_task']}, "
                                        f"{_selects(f)}{_progress(f)}"),
    Op.ERROR_BARRIER: lambda f: "ERROR_BARRIER",
    Op.HEAP_SET: lambda f: f"HEAP_SET d{f['addr']}",
    Op.HEAP_OPERATION: _heap_operation,
    Op.TRACE_POINT: _trace_point,
    Op.SYNC_ADD64: _sync_update("SYNC_ADD64", "+=", "d"),
    Op.SYNC_SET64: _sync_update("SYNC_SET64", "=", "d"),
    Op.SYNC_WAIT64: _sync_wait("SYNC_WAIT64", "d"),
}
assert set(_FORMATTERS) == set(Op)
