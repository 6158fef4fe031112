"""Every Valhall v10 instruction's encoding: ONE declarative table (facts from Mesa's ISA.xml).

Each entry lists, in ISA.xml order, what the instruction carries: sources (`S`), staging
registers (`SR`), immediates (`IMM`), named modifiers (`M`, bit positions fixed by the
encoding for every instruction) and instruction-specific modifiers (`VA`). Groups share
their items between members. The order matters: it is the disassembler's order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class S:
    """A source. `flags`: absneg swizzle widen lanes halfswizzle combine not float."""
    flags: str = ""
    size: int | None = None     # bits; default: the instruction's type size
    lane: int | None = None     # bit of an explicit lane select (-1: "true", 38 for src0 else 36)


@dataclass(frozen=True)
class SR:
    read: bool = False
    write: bool = False
    count: int = 0              # fixed count; 0: from sr_count / sr_write_count
    flags: str = "true"         # "false": a write staging register encoded at bits 16-21


@dataclass(frozen=True)
class IMM:
    name: str
    start: int
    size: int
    signed: bool = False


@dataclass(frozen=True)
class M:
    tag: str                    # a key of MODIFIERS


@dataclass(frozen=True)
class VA:
    name: str
    start: int                  # 128: implied, no bits
    size: int


# Named modifiers: tag -> (name, start, size, enum or None for a flag). From valhall.py.
MODIFIERS = {
    "wide_indices": ("wide_indices", 8, 1, None), "array_enable": ("array_enable", 10, 1, None),
    "texel_offset": ("texel_offset", 11, 1, None), "shadow": ("shadow", 12, 1, None),
    "integer_coordinates": ("integer_coordinates", 13, 1, None),
    "fetch_component": ("fetch_component", 14, 2, "fetch_component"),
    "lod_mode": ("lod_mode", 13, 3, "lod_mode"),
    "lod_bias_disable": ("lod_mode", 13, 1, None), "lod_clamp_disable": ("lod_mode", 14, 1, None),
    "write_mask": ("write_mask", 22, 4, "write_mask"), "register_type": ("register_type", 26, 2, "register_type"),
    "dimension": ("dimension", 28, 2, "dimension"), "skip": ("skip", 39, 1, None),
    "register_width": ("register_width", 46, 1, "register_width"),
    "secondary_register_width": ("secondary_register_width", 47, 1, "register_width"),
    "vartex_register_width": ("varying_texture_register_width", 24, 2, "varying_texture_register_width"),
    "atom_opc": ("atomic_operation", 22, 4, "atomic_operation"),
    "atom_opc_1": ("atomic_operation_with_1", 22, 4, "atomic_operation_with_1"),
    "inactive_result": ("inactive_result", 22, 4, "inactive_result"),
    "memory_access": ("memory_access", 24, 2, "memory_access"),
    "regfmt": ("register_format", 24, 3, "register_format"),
    "source_format": ("source_format", 24, 4, "source_format"),
    "vecsize": ("vector_size", 28, 2, "vector_size"),
    "slot": ("slot", 30, 3, "slot"), "roundmode": ("round_mode", 30, 2, "round_mode"),
    "result_type": ("result_type", 30, 2, "result_type"),
    "saturate": ("saturate", 30, 1, None), "not_result": ("not_result", 30, 1, None),
    "lane_op": ("lane_operation", 32, 2, "lane_operation"), "cmp": ("condition", 32, 3, "condition"),
    "clamp": ("clamp", 32, 2, "clamp"),
    "sr_count": ("staging_register_count", 33, 3, ""),           # "": implied, not printed
    "sample_and_update": ("sample_and_update_mode", 33, 3, "sample_and_update_mode"),
    "sr_write_count": ("staging_register_write_count", 36, 3, ""),
    "conservative": ("conservative", 35, 1, None), "subgroup": ("subgroup_size", 36, 4, "subgroup_size"),
    "update": ("update_mode", 36, 2, "update_mode"), "sample": ("sample_mode", 38, 2, "sample_mode"),
}
# va_mod enums, by modifier name (others of size 1 are flags)
VA_ENUMS = {"mux": "mux", "nan_mode": "nan_mode", "memory_access": "memory_access",
            **{f"load_lane_{n}_bit": f"load_lane_{n}_bit" for n in (8, 16, 24, 32, 48, 64, 96, 128)}}


@dataclass(frozen=True)
class Spec:
    name: str
    opcode: int
    opcode2: int | None
    unit: str
    dests: int
    items: tuple = field(repr=False)


TABLE: list[Spec] = []


def ins(name, opcode, opcode2=None, unit="CVT", dests=0, *items):
    TABLE.append(Spec(name, opcode, opcode2, unit, dests, tuple(items)))


def group(members, unit, dests, *items, opcode=None, opcode2=None):
    for m in members:
        name, op, op2 = (m + (None, None))[:3] if isinstance(m, tuple) else (m, None, None)
        ins(name, op if op is not None else opcode, op2 if op2 is not None else opcode2, unit, dests, *items)


AN, ANS, W, F = S("absneg"), S("absneg swizzle"), S("widen"), S("float")
MEMSIZES = ("i8", "i16", "i24", "i32", "i48", "i64", "i96", "i128")
LANE_BITS = ("8", "16", "24", "32", "48", "64", "96", "128")

# --- control flow and misc -----------------------------------------------------------------
ins("NOP", 0x00, None, "CVT", 0)
ins("BRANCHZ", 0x1F, None, "CVT", 0, S("combine"), IMM("offset", 8, 27, True), M("conservative"), VA("eq", 36, 1))
ins("DISCARD.f32", 0x20, None, "CVT", 0, M("cmp"), ANS, ANS)
ins("BRANCHZI", 0x2F, None, "CVT", 0, S("combine"), S(), M("conservative"), VA("eq", 36, 1), VA("absolute", 40, 1))
ins("BARRIER", 0x45, None, "NONE", 0, M("slot"))
group([("CSEL.f32", 0x154), ("CSEL.v2f16", 0x155)], "CVT", 1, M("cmp"), F, F, F, F)
group([("CSEL.u32", 0x150), ("CSEL.v2u16", 0x151), ("CSEL.s32", 0x158), ("CSEL.v2s16", 0x159)], "CVT", 1,
      M("cmp"), S(), S(), S(), S())

# --- varyings, attributes, textures, buffers -----------------------------------------------
ins("LD_VAR_SPECIAL", 0x56, None, "V", 0, SR(write=True), M("sr_count"), M("vecsize"), M("regfmt"), M("sample"),
    M("update"), M("slot"), S(), IMM("index", 12, 4))
group([("LD_VAR_BUF_IMM.f32", 0x5C), ("LD_VAR_BUF_IMM.f16", 0x5D)], "V", 0, M("slot"), M("vecsize"),
      M("source_format"), M("sample"), M("update"), SR(write=True), M("sr_count"), S(), IMM("index", 16, 8))
group([("LD_VAR_BUF.f32", 0x6C), ("LD_VAR_BUF.f16", 0x6D)], "V", 0, M("slot"), M("vecsize"), M("source_format"),
      M("sample"), M("update"), SR(write=True), M("sr_count"), S(), S())
ins("LD_VAR", 0x64, None, "V", 0, M("slot"), M("vecsize"), M("regfmt"), M("sample"), M("update"), SR(write=True),
    M("sr_count"), S(), S())
ins("LD_VAR_IMM", 0x54, None, "V", 0, M("slot"), M("vecsize"), M("regfmt"), M("sample"), M("update"),
    SR(write=True), M("sr_count"), S(), IMM("table", 8, 4), IMM("index", 12, 8))
ins("LD_VAR_FLAT", 0x55, None, "V", 0, M("slot"), M("vecsize"), M("regfmt"), SR(write=True), M("sr_count"), S())
ins("LD_VAR_FLAT_IMM", 0x41, None, "V", 0, M("slot"), M("vecsize"), M("regfmt"), SR(write=True), M("sr_count"),
    IMM("table", 8, 4), IMM("index", 12, 8))
_DT = VA("descriptor_type", 128, 1)
ins("LD_ATTR_IMM", 0x66, 0, "LS", 0, M("sr_count"), M("vecsize"), M("regfmt"), M("slot"), _DT, SR(write=True),
    S(), S(), IMM("index", 20, 4), IMM("table", 16, 4))
ins("LD_ATTR", 0x76, 0, "LS", 0, M("sr_count"), M("vecsize"), M("regfmt"), M("slot"), _DT, SR(write=True),
    S(), S(), S())
ins("LD_TEX_IMM", 0x66, 1, "LS", 0, M("sr_count"), M("vecsize"), M("regfmt"), M("slot"), _DT, SR(write=True),
    S(), S(), IMM("index", 20, 4), IMM("table", 16, 4))
ins("LD_TEX", 0x76, 1, "LS", 0, M("sr_count"), M("vecsize"), M("regfmt"), M("slot"), _DT, SR(write=True),
    S(), S(), S())
ins("LEA_ATTR_IMM", 0x67, 0, "LS", 0, M("slot"), M("sr_count"), _DT, SR(write=True), S(), S(),
    IMM("table", 16, 4), IMM("index", 20, 4))
ins("LEA_ATTR", 0x77, 0, "LS", 0, M("vecsize"), M("slot"), M("sr_count"), _DT, SR(write=True), S(), S(), S())
ins("LEA_TEX_IMM", 0x67, 1, "LS", 0, M("slot"), M("sr_count"), _DT, SR(write=True), S(), S(),
    IMM("table", 16, 4), IMM("index", 20, 4))
ins("LEA_TEX", 0x77, 1, "LS", 0, M("vecsize"), M("slot"), M("sr_count"), _DT, SR(write=True), S(size=16), S(), S())
for _i, (_n, _c) in enumerate(zip(MEMSIZES, (1, 1, 1, 1, 2, 2, 3, 4))):
    ins(f"LD_BUFFER.{_n}", 0x6A, _i, "LS", 0, SR(write=True), M("sr_count"),
        VA(f"load_lane_{LANE_BITS[_i]}_bit", 36, 3), VA("unsigned", 39, 1), M("slot"), S(size=32), S(size=32))
ins("LEA_BUF_IMM", 0x5E, None, "LS", 0, SR(write=True), M("sr_count"), M("slot"), IMM("table", 8, 4),
    IMM("index", 12, 8), S())
for _i, _n in enumerate(MEMSIZES):
    ins(f"LOAD.{_n}", 0x60, _i, "LS", 0, SR(write=True), M("memory_access"), M("sr_count"),
        VA(f"load_lane_{LANE_BITS[_i]}_bit", 36, 3), VA("unsigned", 39, 1), M("slot"), S(size=64),
        IMM("offset", 8, 16, True))
group([(f"STORE.{n}", None, i) for i, n in enumerate(MEMSIZES)], "LS", 0, SR(read=True), M("sr_count"),
      M("memory_access"), M("slot"), S(size=64), IMM("offset", 8, 16, True), opcode=0x61)
ins("LEA_BUFFER", 0x6B, None, "LS", 0, SR(write=True), M("sr_count"), M("slot"), S(), S())
ins("ST_CVT", 0x71, None, "LS", 0, M("slot"), VA("memory_access", 37, 3), M("vecsize"), M("regfmt"),
    SR(read=True), M("sr_count"), S(size=64), IMM("offset", 8, 8), S())
ins("LD_TILE", 0x78, None, "NONE", 0, SR(write=True), M("sr_count"), M("vecsize"), M("regfmt"), M("slot"),
    S(), S(), S())
ins("ST_TILE", 0x79, None, "NONE", 0, SR(read=True), M("sr_count"), M("vecsize"), M("regfmt"), M("slot"),
    S(), S(), S())
ins("BLEND", 0x7F, None, "NONE", 0, SR(read=True), S(size=64), S(), IMM("target", 8, 8), M("slot"),
    M("sr_count"), M("vecsize"), M("regfmt"))
ins("ATEST", 0x7D, None, "NONE", 0, SR(write=True), S(), S("swizzle"), S(), M("sr_count"))
ins("ZS_EMIT", 0x7E, None, "NONE", 0, VA("z", 25, 1), VA("stencil", 24, 1), SR(write=True), S(), S(), S(),
    M("sr_count"), M("slot"))

# --- conversions (0x90) ----------------------------------------------------------------------
group([("V2S16_TO_V2F16", None, 0x7), ("S32_TO_F32", None, 0x9), ("V2U16_TO_V2F16", None, 0x17),
       ("U32_TO_F32", None, 0x19)], "CVT", 1, M("roundmode"), W, opcode=0x90)
group([("S16_TO_S32", None, 0x4), ("S16_TO_F32", None, 0x5), ("U16_TO_U32", None, 0x14),
       ("U16_TO_F32", None, 0x15)], "CVT", 1, S("swizzle", size=16), opcode=0x90)
group([("F32_TO_S32", None, 0xC), ("F32_TO_U32", None, 0x1C)], "CVT", 1, M("roundmode"), AN, opcode=0x90)
group([("V2F16_TO_V2S16", None, 0xE), ("V2F16_TO_V2U16", None, 0x1E), ("F16_TO_S32", None, 0xA),
       ("F16_TO_U32", None, 0x1A)], "CVT", 1, M("roundmode"), S("swizzle absneg", size=16), opcode=0x90)
ins("F16_TO_F32", 0x90, 0xB, "CVT", 1, M("roundmode"), S("absneg", size=16, lane=28))
group([("S8_TO_S32", None, 0x0), ("S8_TO_F32", None, 0x1), ("U8_TO_U32", None, 0x10),
       ("U8_TO_F32", None, 0x11)], "CVT", 1, S(size=8, lane=28), opcode=0x90)
group([("V2S8_TO_V2S16", None, 0x2), ("V2S8_TO_V2F16", None, 0x3), ("V2U8_TO_V2U16", None, 0x12),
       ("V2U8_TO_V2F16", None, 0x13)], "CVT", 1, S("halfswizzle", size=8), opcode=0x90)
group([("FROUND.f32", None, 0xD), ("FROUND.v2f16", None, 0xF)], "CVT", 1, M("roundmode"), ANS, opcode=0x90)

# --- one-source integer ops (0x91), WMASK, FLUSH, FREXP, SFU ---------------------------------
ins("MOV.i32", 0x91, 0x0, "CVT", 1, S())
ins("CLZ.u32", 0x91, 0x4, "CVT", 1, S())
ins("CLZ.v2u16", 0x91, 0x5, "CVT", 1, S("swizzle"))
ins("CLZ.v4u8", 0x91, 0x6, "CVT", 1, S())
ins("IABS.s32", 0x91, 0x8, "CVT", 1, W)
ins("IABS.v2s16", 0x91, 0x9, "CVT", 1, W)
ins("IABS.v4s8", 0x91, 0xA, "CVT", 1, S())
ins("POPCOUNT.i32", 0x91, 0xC, "SFU", 1, S())
ins("BITREV.i32", 0x91, 0xD, "SFU", 1, S())
ins("NOT_OLD.i32", 0x91, 0xE, "SFU", 1, S())
ins("NOT_OLD.i64", 0x191, 0xE, "SFU", 1, S())
ins("WMASK", 0x95, None, "CVT", 1, S(), M("subgroup"))
group([("FLUSH.f32", None, 0), ("FLUSH.v2f16", None, 1)], "CVT", 1, VA("nan_mode", 8, 2), VA("ftz", 10, 1),
      VA("flush_inf", 11, 1), S("float absneg swizzle"), opcode=0x98)
group([("FREXPM.f32", None, 0), ("FREXPM.v2f16", None, 1), ("FREXPE.f32", None, 2), ("FREXPE.v2f16", None, 3)],
      "CVT", 1, VA("sqrt", 24, 1), VA("log", 25, 1), S("float swizzle"), opcode=0x99)
group([("FRCP.f32", None, 0), ("FRCP.f16", None, 1), ("FRSQ.f32", None, 2), ("FRSQ.f16", None, 3),
       ("FLOGD.f32", None, 8), ("FPCLASS.f32", None, 10), ("FPCLASS.f16", None, 11), ("FLOG_TABLE.f32", None, 12),
       ("FRCP_APPROX.f32", None, 14), ("FRSQ_APPROX.f32", None, 15)], "SFU", 1, S("float swizzle absneg"),
      opcode=0x9C)
group([("FSIN_TABLE.u6", None, 4), ("FCOS_TABLE.u6", None, 5), ("FSINCOS_OFFSET.u6", None, 6),
       ("FEXP_TABLE.u4", None, 13)], "SFU", 1, S(), opcode=0x9C)

# --- two-source arithmetic -------------------------------------------------------------------
group([("FADD.f32", 0xA4), ("FADD.v2f16", 0xA5)], "FMA", 1, M("roundmode"), M("clamp"), ANS, ANS, opcode2=0)
group([("FMIN.f32", 0xA4), ("FMIN.v2f16", 0xA5)], "CVT", 1, M("clamp"), ANS, ANS, opcode2=2)
group([("FMAX.f32", 0xA4), ("FMAX.v2f16", 0xA5)], "CVT", 1, M("clamp"), ANS, ANS, opcode2=3)
ins("V2F32_TO_V2F16", 0xA5, 4, "CVT", 1, M("clamp"), M("roundmode"), AN, AN)
group([("LDEXP.f32", 0xA4), ("LDEXP.v2f16", 0xA5)], "FMA", 1, AN, S(), M("roundmode"), opcode2=6)
ins("FEXP.f32", 0xA4, 8, "SFU", 1, M("clamp"), S(), AN)
ins("FADD_LSCALE.f32", 0xA4, 9, "FMA", 1, M("clamp"), AN, AN)
ins("FATAN_ASSIST.f32", 0xA4, 14, "SFU", 1, VA("second", 24, 1), S(), S())
_INT_TYPES = (("u32", 0xA0), ("v2u16", 0xA1), ("v4u8", 0xA2), ("s32", 0xA8), ("v2s16", 0xA9), ("v4s8", 0xAA))
group([(f"IADD.{t}", o) for t, o in _INT_TYPES] + [("IADD.u64", 0x1A3), ("IADD.s64", 0x1AB)], "CVT", 1,
      W, W, M("saturate"), opcode2=0)
ins("MKVEC.v2i16", 0xA1, 0x5, "CVT", 1, S(size=16, lane=28), S(size=16, lane=26))
group([(f"ISUB.{t}", o) for t, o in _INT_TYPES] + [("ISUB.u64", 0x1A3), ("ISUB.s64", 0x1AB)], "CVT", 1,
      W, W, M("saturate"), opcode2=1)
ins("SEG_ADD.u64", 0x1A3, 6, "CVT", 1, VA("neg", 38, 1), VA("preserve_null", 39, 1), S(), W)
group([("SHADDX.u64", 0x1A3), ("SHADDX.s64", 0x1AB)], "CVT", 1, IMM("shift", 20, 3), S(), W, opcode2=7)
group([("IMUL.i32", 0xA0), ("IMUL.v2i16", 0xA1), ("IMUL.v4i8", 0xA2), ("IMUL.s32", 0xA8), ("IMUL.v2s16", 0xA9),
       ("IMUL.v4s8", 0xAA), ("IMULD.u64", 0x1A3)], "SFU", 1, W, W, M("saturate"), opcode2=0xA)
group([(f"HADD.{t}", o) for t, o in _INT_TYPES], "CVT", 1, VA("rhadd", 30, 1), W, W, opcode2=0xB)
group([("CLPER.i32", 0xA0), ("CLPER.v2u16", 0xA1), ("CLPER.v4u8", 0xA2), ("CLPER.s32", 0xA8),
       ("CLPER.v2s16", 0xA9), ("CLPER.v4s8", 0xAA), ("CLPER.u64", 0x1A3), ("CLPER.s64", 0x1AB)], "SFU", 1,
      S(), S("lanes", size=8), M("subgroup"), M("lane_op"), M("inactive_result"), opcode2=0xF)

# --- three/four-source arithmetic --------------------------------------------------------------
group([("FMA.f32", 0xB2), ("FMA.v2f16", 0xB3)], "FMA", 1, M("clamp"), ANS, ANS, ANS)
_LEFT = VA("left", 128, 1)
for _op, _o2, _left in (("LSHIFT_AND", 0x100, True), ("RSHIFT_AND", 0x0, False), ("LSHIFT_OR", 0x101, True),
                        ("RSHIFT_OR", 0x1, False), ("LSHIFT_XOR", 0x102, True), ("RSHIFT_XOR", 0x2, False)):
    _signed = () if _left else (VA("signed", 34, 1),)
    group([(f"{_op}.i32", 0xB4), (f"{_op}.v2i16", 0xB5), (f"{_op}.v4i8", 0xB6), (f"{_op}.i64", 0x1B7)], "SFU", 1,
          _LEFT, *_signed, M("not_result"), W, S("lanes", size=8), S("not"), opcode2=_o2)
ins("MUX.i32", 0xB8, None, "SFU", 1, VA("mux", 32, 2), S(), S(), S())
ins("MUX.v2i16", 0xB9, None, "SFU", 1, VA("mux", 32, 2), S("swizzle"), S("swizzle"), S("swizzle"))
ins("MUX.v4i8", 0xBA, None, "SFU", 1, VA("mux", 32, 2), S(), S(), S())
ins("CUBE_SSEL", 0xBC, 0, "SFU", 1, AN, AN, S())
ins("CUBE_TSEL", 0xBC, 1, "SFU", 1, AN, AN, S())
ins("MKVEC.v2i8", 0xBD, None, "CVT", 1, S(lane=-1), S(lane=-1), S())
ins("CUBEFACE1", 0xC0, None, "SFU", 1, AN, AN, AN)
ins("CUBEFACE2_V9", 0xC1, None, "SFU", 1, AN, AN, AN)
group([("IDP.v4s8", None, 0), ("IDP.v4u8", None, 1)], "FMA", 1, S(), S(), S(), M("saturate"), opcode=0xC2)
for _n, _o2, _ops in (("ICMP_OR", 0, (("u32", 0xF0), ("v2u16", 0xF1), ("v4u8", 0xF2), ("s32", 0xF8),
                                       ("v2s16", 0xF9), ("v4s8", 0xFA))),
                      ("ICMP_AND", 1, (("u32", 0xF0), ("v2u16", 0xF1), ("v4u8", 0xF2), ("s32", 0xF8),
                                        ("v2s16", 0xF9), ("v4s8", 0xFA))),
                      ("ICMP_MULTI", 2, (("u32", 0xF0), ("s32", 0xF8)))):
    group([(f"{_n}.{t}", o) for t, o in _ops], "CVT", 1, M("cmp"), M("result_type"), W, W, S(), opcode2=_o2)
for _n, _o2 in (("FCMP_OR", 0), ("FCMP_AND", 1)):
    group([(f"{_n}.f32", 0xF4), (f"{_n}.v2f16", 0xF5)], "CVT", 1, M("cmp"), M("result_type"), ANS, ANS, S(),
          opcode2=_o2)
_K = IMM("constant", 8, 32)
ins("IADD_IMM.i32", 0x110, None, "CVT", 1, S(), _K)
ins("IADD_IMM.v2i16", 0x111, None, "CVT", 1, S(), _K)
ins("IADD_IMM.v4i8", 0x112, None, "CVT", 1, S(), _K)
ins("FADD_IMM.f32", 0x114, None, "FMA", 1, S(), _K)
ins("FADD_IMM.v2f16", 0x115, None, "FMA", 1, F, _K)
for _n, _c in (("FMA_RSCALE.f32", 0x160), ("FMA_RSCALE_N.f32", 0x161), ("FMA_RSCALE_LEFT.f32", 0x162),
               ("FMA_RSCALE_SCALE16.f32", 0x163)):
    ins(_n, _c, None, "FMA", 1, M("clamp"), AN, AN, AN, S())

# --- atomics -----------------------------------------------------------------------------------
_MW = VA("memory_width", 128, 1)
for _w, _o2 in (("i32", 3), ("i64", 5)):
    ins(f"ATOM1_RETURN.{_w}", 0x69, _o2, "LS", 0, M("slot"), M("sr_count"), M("atom_opc_1"), _MW,
        SR(write=True), S(size=64), IMM("offset", 8, 8))
    ins(f"ATOM.{_w}", 0x68, _o2, "LS", 0, M("slot"), M("sr_count"), M("atom_opc"), _MW, SR(read=True),
        S(size=64), IMM("offset", 8, 8))
    ins(f"ATOM_RETURN.{_w}", 0x120, _o2, "LS", 0, M("slot"), M("sr_count"), M("sr_write_count"),
        VA("compare", 26, 1), M("atom_opc"), _MW, SR(write=True, flags="false"), SR(read=True, flags="rw"),
        S(size=64), IMM("offset", 8, 8))

# --- textures and fused varying-texture (decoded, not executed) ---------------------------------
_TEX_SR = (M("sr_count"), M("sr_write_count"), SR(write=True, flags="false"), SR(read=True, flags="false"),
           S(size=64))
ins("TEX_FETCH", 0x125, None, "T", 0, M("slot"), M("skip"), M("register_type"), M("register_width"),
    M("write_mask"), M("dimension"), M("wide_indices"), M("array_enable"), M("texel_offset"), *_TEX_SR)
ins("TEX_SINGLE", 0x128, None, "T", 0, M("slot"), M("skip"), M("register_type"), M("register_width"),
    M("write_mask"), M("dimension"), M("wide_indices"), M("array_enable"), M("texel_offset"), M("shadow"),
    M("lod_mode"), *_TEX_SR)
ins("TEX_GATHER", 0x129, None, "T", 0, M("slot"), M("skip"), M("register_type"), M("register_width"),
    M("write_mask"), M("dimension"), M("wide_indices"), M("array_enable"), M("texel_offset"),
    M("integer_coordinates"), M("fetch_component"), M("shadow"), *_TEX_SR)
ins("TEX_GRADIENT", 0x12A, None, "T", 0, M("slot"), M("skip"), M("register_type"), M("register_width"),
    M("write_mask"), M("dimension"), M("wide_indices"), M("lod_bias_disable"), M("lod_clamp_disable"), *_TEX_SR)
ins("TEX_DUAL", 0x12F, None, "T", 0, M("slot"), M("skip"), M("register_type"), M("register_width"),
    M("secondary_register_width"), M("write_mask"), M("dimension"), M("wide_indices"), M("array_enable"),
    M("texel_offset"), M("shadow"), M("lod_mode"), *_TEX_SR)
for _n, _c, _mods in (
        ("VAR_TEX_BUF_SINGLE", 0x130, ("array_enable", "shadow", "lod_mode")),
        ("VAR_TEX_BUF_GATHER", 0x131, ("array_enable", "integer_coordinates", "fetch_component", "shadow")),
        ("VAR_TEX_BUF_GRADIENT", 0x132, ("array_enable", "shadow", "lod_bias_disable", "lod_clamp_disable")),
        ("VAR_TEX_BUF_DUAL", 0x137, ("array_enable", "shadow", "lod_mode")),
        ("VAR_TEX_SINGLE", 0x138, ("array_enable", "shadow", "lod_mode")),
        ("VAR_TEX_GATHER", 0x139, ("array_enable", "integer_coordinates", "fetch_component", "shadow")),
        ("VAR_TEX_GRADIENT", 0x13A, ("array_enable", "shadow", "lod_bias_disable", "lod_clamp_disable")),
        ("VAR_TEX_DUAL", 0x13F, ("array_enable", "shadow", "lod_mode"))):
    ins(_n, _c, None, "VT", 0, M("slot"), M("skip"), M("sample_and_update"), M("register_type"),
        M("vartex_register_width"), M("dimension"), *(M(m) for m in _mods), M("sr_write_count"),
        SR(write=True), S(size=64), S())
