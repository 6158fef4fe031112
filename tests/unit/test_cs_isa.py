"""The CS instruction decoder, assembler and disassembler (scheduler/isa.py).

The test vectors are the kernel ring wrapper from panthor-contract.md §4 (96 registers, so A=r92
and V=r94, with 8 scoreboard slots). The layouts come from Mesa genxml v10 (CS section).
"""

from __future__ import annotations

import copy
import pickle
import random
import struct

import pytest

from scheduler import isa
from scheduler.isa import (
    Cond,
    Instr,
    InvalidInstruction,
    Op,
    SyncScope,
    decode,
    decode_stream,
    disassemble,
    encode,
    field_names,
)

A, V, SB = 92, 94, 8
STREAM_ADDR = 0x0000_5C00_0000_1000
SYNC_ADDR = 0x0000_7F00_0020_0040


# ---------------------------------------------------------------------------------------------
# The oracle: facts from Mesa's src/panfrost/genxml/v10.xml, CS section (bminor/mesa-mesa
# 333ca913 and 55735b61, identical there), typed in by hand. Nothing below reads scheduler/isa.py's
# own field table: a wrong start bit or width there makes these tests fail.
#
# genxml enum name: (opcode, ((our field name, start, size, kind), ...)); kind "u" uint/hex/bool/
# enum, "s" int (sign-extended), "shr3" (modifier shr(3): the value is the field << 3).
# ---------------------------------------------------------------------------------------------

_SEL = (("srt_select", 40, 2, "u"), ("spd_select", 42, 2, "u"), ("tsd_select", 44, 2, "u"),
        ("fau_select", 46, 2, "u"))
_PROG = ("progress_inc", 32, 1, "u")
_SYNC32 = (("error_propagate", 0, 1, "u"), ("scope", 1, 2, "u"), ("wait_mask", 16, 16, "u"),
           ("data", 32, 8, "u"), ("addr", 40, 8, "u"), ("signal_slot", 48, 4, "u"))
_SWAIT = (("error_reject", 0, 1, "u"), ("cond", 28, 4, "u"), ("data", 32, 8, "u"), ("addr", 40, 8, "u"))
_MULT = (("offset", 0, 16, "s"), ("mask", 16, 16, "u"), ("addr", 40, 8, "u"), ("base", 48, 8, "u"))
_IMM = (("imm", 0, 32, "s"), ("src", 40, 8, "u"), ("dst", 48, 8, "u"))
_CALL = (("length", 32, 8, "u"), ("addr", 40, 8, "u"))

GENXML = {
    "NOP": (0, ()),                                  # "Ignored" 0:56
    "MOVE48": (1, (("imm", 0, 48, "u"), ("dst", 48, 8, "u"))),
    "MOVE32": (2, (("imm", 0, 32, "u"), ("dst", 48, 8, "u"))),
    "WAIT": (3, (("wait_mask", 16, 8, "u"), _PROG)),
    "RUN_COMPUTE": (4, (("task_increment", 0, 14, "u"), ("task_axis", 14, 2, "u"), _PROG, *_SEL)),
    "RUN_TILING": (5, (("flags_override", 0, 32, "u"), _PROG, *_SEL)),
    "RUN_IDVS": (6, (("flags_override", 0, 32, "u"), _PROG, ("malloc_enable", 33, 1, "u"),
                     ("draw_id_register_enable", 34, 1, "u"), ("varying_srt_select", 35, 1, "u"),
                     ("varying_fau_select", 36, 1, "u"), ("varying_tsd_select", 37, 1, "u"),
                     ("fragment_srt_select", 38, 1, "u"), ("fragment_tsd_select", 39, 1, "u"),
                     ("draw_id", 40, 8, "u"))),
    "RUN_FRAGMENT": (7, (("enable_tem", 0, 1, "u"), ("tile_order", 4, 4, "u"), _PROG)),
    "RUN_FULLSCREEN": (8, (("flags_override", 0, 32, "u"), _PROG, ("dcd", 40, 8, "u"))),
    "FINISH_TILING": (9, (_PROG,)),
    "FINISH_FRAGMENT": (11, (("increment_fragment_completed", 0, 1, "u"), ("wait_mask", 16, 16, "u"),
                             ("last_heap_chunk", 32, 8, "u"), ("first_heap_chunk", 40, 8, "u"),
                             ("signal_slot", 48, 4, "u"))),
    "ADD_IMMEDIATE32": (16, _IMM),
    "ADD_IMMEDIATE64": (17, _IMM),
    "COMPARE_SELECT32": (18, (("src1", 32, 8, "u"), ("src0", 40, 8, "u"), ("dst", 48, 8, "u"))),
    "LOAD_MULTIPLE": (20, _MULT),
    "STORE_MULTIPLE": (21, _MULT),
    "BRANCH": (22, (("offset", 0, 16, "s"), ("cond", 28, 3, "u"), ("value", 40, 8, "u"))),
    "SET_SB_ENTRY": (23, (("endpoint_entry", 0, 4, "u"), ("other_entry", 4, 4, "u"))),
    "PROGRESS_WAIT": (24, (("queue", 0, 5, "u"), ("src", 40, 8, "u"))),
    "SET_EXCEPTION_HANDLER": (25, (("exception_type", 0, 8, "u"), *_CALL)),
    "CALL": (32, _CALL),
    "JUMP": (33, _CALL),
    "REQ_RESOURCE": (34, (("compute", 0, 1, "u"), ("fragment", 1, 1, "u"), ("tiler", 2, 1, "u"),
                          ("idvs", 3, 1, "u"))),
    "FLUSH_CACHE2": (36, (("l2", 0, 4, "u"), ("lsc", 4, 4, "u"), ("other", 8, 4, "u"), ("wait_mask", 16, 16, "u"),
                          ("flush_id", 40, 8, "u"), ("signal_slot", 48, 4, "u"))),
    "SYNC_ADD32": (37, _SYNC32),
    "SYNC_SET32": (38, _SYNC32),
    "SYNC_WAIT32": (39, _SWAIT),
    "STORE_STATE": (40, (("offset", 0, 16, "s"), ("wait_mask", 16, 16, "u"), ("state", 32, 2, "u"),
                         ("addr", 40, 8, "u"), ("signal_slot", 48, 4, "u"))),
    "PROT_REGION": (41, (("size", 0, 16, "shr3"),)),
    "PROGRESS_STORE": (42, (("src", 40, 8, "u"),)),
    "PROGRESS_LOAD": (43, (("dst", 48, 8, "u"),)),
    "RUN_COMPUTE_INDIRECT": (44, (("workgroups_per_task", 0, 16, "u"), _PROG, *_SEL)),
    "ERROR_BARRIER": (47, ()),
    "HEAP_SET": (48, (("addr", 40, 8, "u"),)),
    "HEAP_OPERATION": (49, (("wait_mask", 16, 16, "u"), ("operation", 32, 2, "u"), ("signal_slot", 48, 4, "u"))),
    "TRACE_POINT": (50, (("wait_mask", 16, 16, "u"), ("base", 32, 8, "u"), ("count", 40, 8, "u"),
                         ("signal_slot", 48, 4, "u"))),
    "SYNC_ADD64": (51, _SYNC32),
    "SYNC_SET64": (52, _SYNC32),
    "SYNC_WAIT64": (53, _SWAIT),
}

# Where our decoder deliberately accepts more than these genxml commits (scheduler/isa.py's
# docstring: layouts of newer genxml). Each only turns reserved bits into field bits; nothing moves.
WIDER = {("WAIT", "wait_mask"): 16, ("BRANCH", "cond"): 4, ("STORE_STATE", "state"): 8,
         ("HEAP_OPERATION", "operation"): 3}
EXTRA = {"SYNC_WAIT32": (("scope", 1, 2, "u"),), "SYNC_WAIT64": (("scope", 1, 2, "u"),)}

# genxml enums (value: name), same commits.
GENXML_ENUMS = {
    "CS Condition": {0: "Lequal", 1: "Greater", 2: "Equal", 3: "Nequal", 4: "Less", 5: "Gequal", 6: "Always"},
    "CS State": {0: "Timestamp", 1: "Cycle count", 2: "Disjoint count", 3: "Error status"},
    "CS Heap Operation": {0: "Vertex/Tiler Started", 1: "Vertex/Tiler Completed", 3: "Fragment Completed"},
    "CS Flush Mode": {0: "None", 1: "Clean", 3: "Clean and invalidate"},
    "CS Other Flush Mode": {0: "None", 2: "Invalidate"},
    "CS Sync scope": {0: "System", 2: "CSG"},
    "CS Exception type": {2: "Tiler OOM"},
    "Task Axis": {0: "X", 1: "Y", 2: "Z"},
    "Tile Render Order": {0: "Z Order", 1: "Horizontal", 2: "Vertical", 5: "Reverse horizontal",
                          6: "Reverse vertical"},
}


def _op(name: str) -> Op:
    return isa.parse_op(name)


def _fields(name: str):
    return GENXML[name][1] + EXTRA.get(name, ())


def asm(name: str, **values) -> int:
    """A word assembled from the genxml facts above (not by our encoder)."""
    opcode, fields = GENXML[name]
    raw = opcode << 56
    layout = {f: (start, size, kind) for f, start, size, kind in _fields(name)}
    for f, v in values.items():
        start, size, kind = layout[f]
        if kind == "shr3":
            v >>= 3
        size = WIDER.get((name, f), size)
        assert -(1 << size) < v < (1 << size), (name, f, v)   # the test's own inputs
        raw |= (v & ((1 << size) - 1)) << start
    return raw


def _value(kind: str, size: int, bits: int) -> int:
    """What a decoder must report for raw field bits `bits` of a `size`-bit field."""
    if kind == "s" and bits >> (size - 1):
        return bits - (1 << size)
    return bits << 3 if kind == "shr3" else bits


def test_opcode_numbers_match_genxml():
    assert {name: int(_op(name)) for name in GENXML} == {name: opc for name, (opc, _) in GENXML.items()}
    assert {int(op) for op in Op} == {opc for opc, _ in GENXML.values()}


def test_enums_match_genxml():
    def ours(enum_cls):
        return {int(m): m.name for m in enum_cls}
    norm = GENXML_ENUMS
    assert set(ours(Cond)) == set(norm["CS Condition"])
    assert {v: n for v, n in ours(Cond).items()} == {0: "LE", 1: "GT", 2: "EQ", 3: "NE", 4: "LT", 5: "GE", 6: "ALWAYS"}
    assert set(ours(SyncScope)) == set(norm["CS Sync scope"])
    assert set(ours(isa.StateId)) == set(norm["CS State"])
    assert set(ours(isa.HeapOperation)) == set(norm["CS Heap Operation"])
    assert set(ours(isa.FlushMode)) == set(norm["CS Flush Mode"])
    assert set(ours(isa.OtherFlushMode)) == set(norm["CS Other Flush Mode"])
    assert set(ours(isa.ExceptionType)) == set(norm["CS Exception type"])
    assert set(ours(isa.TaskAxis)) == set(norm["Task Axis"])
    assert set(ours(isa.TileOrder)) == set(norm["Tile Render Order"])


@pytest.mark.parametrize("name", list(GENXML))
def test_field_names_are_genxml_fields(name):
    """No field the genxml does not have, none missing (NOP: genxml's one ignored payload)."""
    if name == "NOP":
        return
    assert set(field_names(_op(name))) == {f for f, *_ in _fields(name)}


@pytest.mark.parametrize("name", [n for n in GENXML if n != "NOP"])
def test_field_start_and_width_match_genxml(name):
    opcode, _ = GENXML[name]
    op = _op(name)
    for f, start, size, kind in _fields(name):
        for bits in (1, 1 << (size - 1), (1 << size) - 1, 0x5555_5555_5555 & ((1 << size) - 1)):
            raw = opcode << 56 | bits << start
            i = decode(raw)
            want = _value(kind, size, bits)
            assert getattr(i, f) == want, (name, f, hex(bits))
            assert all(v == 0 for k, v in i.fields.items() if k != f), (name, f, dict(i.fields))
            assert encode(op, **{f: want}) == raw, (name, f)
            assert encode(op, **dict(i.fields)) == raw


@pytest.mark.parametrize("name", [n for n in GENXML if n != "NOP"])
def test_reserved_bits_are_exactly_genxml_reserved_bits(name):
    """Every bit outside the genxml fields (and our listed widenings) is rejected; every bit
    inside decodes."""
    opcode, _ = GENXML[name]
    used = 0
    for f, start, size, _kind in _fields(name):
        used |= ((1 << WIDER.get((name, f), size)) - 1) << start
    for b in range(56):
        raw = opcode << 56 | 1 << b
        if used >> b & 1:
            assert decode(raw).op is _op(name)
        else:
            with pytest.raises(InvalidInstruction) as ei:
                decode(raw)
            assert ei.value.raw == raw and ei.value.op is _op(name) and "reserved" in ei.value.reason
            assert disassemble(raw).startswith(f".inst 0x{raw:016x}  ; invalid: {_op(name).name}")


@pytest.mark.parametrize(("name", "field"), list(WIDER))
def test_widened_fields_take_the_reserved_bits_above_genxml(name, field):
    opcode, fields = GENXML[name]
    start, size = next((s, n) for f, s, n, _ in fields if f == field)
    raw = opcode << 56 | 1 << (start + size)
    assert getattr(decode(raw), field) == 1 << size


@pytest.mark.parametrize("name", list(GENXML))
def test_random_genxml_words_round_trip(name):
    rng = random.Random(0xC5_0000 + GENXML[name][0])
    op = _op(name)
    for _ in range(50):
        values = {}
        for f, _start, size, kind in _fields(name):
            bits = rng.getrandbits(size)
            values[f] = _value(kind, size, bits)
        raw = asm(name, **values)
        i = decode(raw)
        assert i.op is op and i.raw == raw
        if name != "NOP":
            assert dict(i.fields) == values
            assert encode(op, **values) == raw
        assert encode(op.name.lower(), **i.fields) == raw
        assert disassemble(raw) == disassemble(i)


def test_nop_ignores_its_payload():
    # genxml: NOP's bits 0-55 are "Ignored", so every payload decodes as NOP.
    for raw in (0x00FF_FFFF_FFFF_FFFF, 0x0012_3456_789A_BCDE, 1):
        assert decode(raw).op is Op.NOP
    assert disassemble(0x0001_0000_0000_0002) == "NOP type=1, payload=0x2"


# ---------------------------------------------------------------------------------------------
# The kernel ring wrapper (contract §4), word by word
# ---------------------------------------------------------------------------------------------

def test_move32_latest_flush():
    raw = 2 << 56 | V << 48 | 0x1234ABCD
    assert raw == 0x025E0000_1234ABCD
    i = decode(raw)
    assert i.op is Op.MOVE32 and i.name == "MOVE32"
    assert (i.dst, i.imm) == (94, 0x1234ABCD)
    assert disassemble(raw) == "MOVE32 r94, #0x1234abcd"


def test_flush_cache2():
    raw = 36 << 56 | V << 40 | 0x233
    assert raw == 0x24005E00_00000233
    i = decode(raw)
    assert i.op is Op.FLUSH_CACHE2
    assert dict(i.fields) == dict(l2=3, lsc=3, other=2, wait_mask=0, flush_id=94, signal_slot=0)
    assert i.l2 == isa.FlushMode.CLEAN_INVALIDATE and i.other == isa.OtherFlushMode.INVALIDATE
    assert disassemble(raw) == ("FLUSH_CACHE2 l2=clean_invalidate, lsc=clean_invalidate, "
                                "other=invalidate, flush_id=r94, wait=0x00, signal=0")


def test_move48_stream_address_and_syncobj():
    raw = 1 << 56 | A << 48 | STREAM_ADDR
    assert raw >> 48 == 0x015C
    i = decode(raw)
    assert i.op is Op.MOVE48 and i.dst == 92 and i.imm == STREAM_ADDR
    assert disassemble(raw) == "MOVE48 d92, #0x5c0000001000"
    assert decode(1 << 56 | A << 48 | SYNC_ADDR).imm == SYNC_ADDR
    one = decode(1 << 56 | V << 48 | 1)
    assert (one.dst, one.imm) == (94, 1)


def test_move32_stream_size():
    i = decode(2 << 56 | V << 48 | 0x80)
    assert (i.op, i.dst, i.imm) == (Op.MOVE32, 94, 0x80)


def test_wait_scoreboard_0_and_all():
    i = decode(0x03000000_00010000)
    assert i.op is Op.WAIT and i.wait_mask == 1 and i.progress_inc == 0
    assert disassemble(i) == "WAIT sb0"
    raw = 3 << 56 | ((1 << SB) - 1) << 16
    assert raw == 0x03000000_00FF0000
    assert decode(raw).wait_mask == 0xFF
    assert disassemble(raw) == "WAIT sb0..sb7"


def test_wait_mask_is_16_bits_wide():
    # Newer genxml: Wait mask is 16 bits at bit 16. The older 16:8 layout would make bits 24-31
    # reserved.
    i = decode(0x03000000_FFFF0000)
    assert i.wait_mask == 0xFFFF
    assert disassemble(0x03000000_81050000) == "WAIT sb0,sb2,sb8,sb15"


def test_call():
    raw = 32 << 56 | A << 40 | V << 32
    assert raw == 0x20005C5E_00000000
    i = decode(raw)
    assert (i.op, i.addr, i.length) == (Op.CALL, 92, 94)
    assert disassemble(raw) == "CALL d92, r94"


def test_sync_add64():
    raw = 51 << 56 | A << 40 | V << 32 | 1
    assert raw == 0x33005C5E_00000001
    i = decode(raw)
    assert i.op is Op.SYNC_ADD64
    assert dict(i.fields) == dict(error_propagate=1, scope=SyncScope.SYSTEM, wait_mask=0,
                                  data=94, addr=92, signal_slot=0)
    assert disassemble(raw) == ("SYNC_ADD64 [d92] += d94, scope=system, propagate, wait=0x00, "
                                "signal=0")


def test_error_barrier_and_nop_padding():
    i = decode(0x2F000000_00000000)
    assert i.op is Op.ERROR_BARRIER and dict(i.fields) == {}
    assert disassemble(i) == "ERROR_BARRIER"
    assert decode(0).op is Op.NOP and disassemble(0) == "NOP"


def test_store_state_profiling():
    cyc = decode(40 << 56 | A << 40 | 1 << 32)
    assert (cyc.op, cyc.state, cyc.addr, cyc.offset) == (
        Op.STORE_STATE, isa.StateId.CYCLE_COUNT, 92, 0)
    assert disassemble(cyc) == "STORE_STATE [d92] = cycle_count, wait=0x00, signal=0"
    ts = decode(40 << 56 | V << 40 | 0 << 32)
    assert (ts.state, ts.addr) == (isa.StateId.TIMESTAMP, 94)


def _ring_block(latest_flush=0x42, size=0x80):
    words = [
        2 << 56 | V << 48 | latest_flush,
        36 << 56 | V << 40 | 0x233,
        1 << 56 | A << 48 | STREAM_ADDR,
        2 << 56 | V << 48 | size,
        3 << 56 | 1 << 16,
        32 << 56 | A << 40 | V << 32,
        1 << 56 | A << 48 | SYNC_ADDR,
        1 << 56 | V << 48 | 1,
        3 << 56 | ((1 << SB) - 1) << 16,
        51 << 56 | A << 40 | V << 32 | 1,
        47 << 56,
    ]
    return words + [0] * (16 - len(words))


def test_ring_block_stream_and_assembler_agree():
    words = _ring_block()
    assembled = [
        encode(Op.MOVE32, dst=V, imm=0x42),
        encode(Op.FLUSH_CACHE2, l2=3, lsc=3, other=2, flush_id=V),
        encode(Op.MOVE48, dst=A, imm=STREAM_ADDR),
        encode("move32", dst=V, imm=0x80),
        encode(Op.WAIT, wait_mask=1),
        encode(Op.CALL, addr=A, length=V),
        encode(Op.MOVE48, dst=A, imm=SYNC_ADDR),
        encode(Op.MOVE48, dst=V, imm=1),
        encode(Op.WAIT, wait_mask=0xFF),
        encode(Op.SYNC_ADD64, addr=A, data=V, error_propagate=True, scope=SyncScope.SYSTEM),
        encode(Op.ERROR_BARRIER),
    ] + [encode(Op.NOP)] * 5
    assert assembled == words

    base = 0x0000_7F00_1000_0000
    data = struct.pack("<16Q", *words)
    out = decode_stream(data, base)
    assert [va for va, _ in out] == [base + 8 * k for k in range(16)]
    assert all(isinstance(i, Instr) for _, i in out)
    assert [i.op for _, i in out] == [
        Op.MOVE32, Op.FLUSH_CACHE2, Op.MOVE48, Op.MOVE32, Op.WAIT, Op.CALL, Op.MOVE48,
        Op.MOVE48, Op.WAIT, Op.SYNC_ADD64, Op.ERROR_BARRIER] + [Op.NOP] * 5
    assert [disassemble(i) for _, i in out[:11]] == [
        "MOVE32 r94, #0x42",
        "FLUSH_CACHE2 l2=clean_invalidate, lsc=clean_invalidate, other=invalidate, flush_id=r94, "
        "wait=0x00, signal=0",
        "MOVE48 d92, #0x5c0000001000",
        "MOVE32 r94, #0x80",
        "WAIT sb0",
        "CALL d92, r94",
        "MOVE48 d92, #0x7f0000200040",
        "MOVE48 d94, #0x1",
        "WAIT sb0..sb7",
        "SYNC_ADD64 [d92] += d94, scope=system, propagate, wait=0x00, signal=0",
        "ERROR_BARRIER",
    ]


def test_reserved_bits_examples():
    assert decode(0x03000000_00010000).op is Op.WAIT
    with pytest.raises(InvalidInstruction):
        decode(0x03000000_00010001)          # WAIT bit 0
    with pytest.raises(InvalidInstruction):
        decode(0x2F000000_00000001)          # ERROR_BARRIER has no fields
    with pytest.raises(InvalidInstruction):
        decode(0x02000001_00000000)          # MOVE32 bits 32-47 are reserved
    with pytest.raises(InvalidInstruction):
        decode(0x07000000_00000002)          # RUN_FRAGMENT bits 1-3


# ---------------------------------------------------------------------------------------------
# Signed fields, scaled fields, wide-in-newer-genxml fields
# ---------------------------------------------------------------------------------------------

def test_sign_extension():
    assert decode(16 << 56 | 1 << 48 | 2 << 40 | 0xFFFF_FFFF).imm == -1
    assert decode(16 << 56 | 0x8000_0000).imm == -(1 << 31)
    assert decode(16 << 56 | 0x7FFF_FFFF).imm == (1 << 31) - 1
    assert decode(17 << 56 | 0xFFFF_FFF0).imm == -16
    lm = decode(20 << 56 | 0x8000)
    assert lm.offset == -32768
    assert decode(21 << 56 | 0xFFFC).offset == -4
    assert decode(22 << 56 | 0xFFFD).offset == -3
    assert decode(40 << 56 | 0xFFF8).offset == -8
    # MOVE48/MOVE32 immediates are hex (unsigned).
    assert decode(1 << 56 | 0xFFFF_FFFF_FFFF).imm == 0xFFFF_FFFF_FFFF
    assert decode(2 << 56 | 0xFFFF_FFFF).imm == 0xFFFF_FFFF
    assert encode(Op.ADD_IMM32, imm=-1) == 16 << 56 | 0xFFFF_FFFF
    assert encode(Op.BRANCH, offset=-3) == 22 << 56 | 0xFFFD


def test_branch_fields_and_target():
    raw = encode(Op.BRANCH, offset=-3, cond=Cond.NE, value=3)
    i = decode(raw)
    assert (i.offset, i.cond, i.value) == (-3, Cond.NE, 3)
    assert disassemble(raw) == "BRANCH.NE r3, -3"
    # The offset counts instructions from the one after the branch.
    assert disassemble(raw, pc=0x1000) == "BRANCH.NE r3, -3 -> 0xff0"
    assert isa.branch_target(i, 0x1000) == 0x1000 + 8 - 24
    fwd = encode(Op.BRANCH, offset=2, cond=Cond.ALWAYS)
    assert disassemble(fwd, pc=0x2000) == "BRANCH.ALWAYS r0, +2 -> 0x2018"
    # Condition is 4 bits in newer genxml: bit 31 decodes (undefined enum value, not reserved).
    odd = decode(22 << 56 | 0xF << 28)
    assert odd.cond == 15 and disassemble(odd) == "BRANCH.COND15 r0, +0"


def test_prot_region_size_is_scaled_by_8():
    i = decode(41 << 56 | 0x10)
    assert i.size == 0x80
    assert encode(Op.PROT_REGION, size=0x80) == 41 << 56 | 0x10
    assert encode(Op.PROT_REGION, size=0xFFFF << 3) == 41 << 56 | 0xFFFF
    with pytest.raises(ValueError):
        encode(Op.PROT_REGION, size=0x81)
    with pytest.raises(ValueError):
        encode(Op.PROT_REGION, size=0x10000 << 3)


def test_newer_genxml_widened_fields():
    sw = decode(encode(Op.SYNC_WAIT64, cond=Cond.GT, data=4, addr=2, scope=SyncScope.CSG,
                       error_reject=1))
    assert (sw.cond, sw.data, sw.addr, sw.scope, sw.error_reject) == (Cond.GT, 4, 2, 2, 1)
    assert decode(40 << 56 | 0xFF << 32).state == 0xFF          # STORE_STATE state 8 bits
    assert decode(49 << 56 | 0x4 << 32).operation == 4          # HEAP_OPERATION 3 bits


# ---------------------------------------------------------------------------------------------
# Invalid opcodes, encode errors
# ---------------------------------------------------------------------------------------------

UNDEFINED_OPCODES = [n for n in range(256) if n not in {opc for opc, _ in GENXML.values()}]


@pytest.mark.parametrize("opc", UNDEFINED_OPCODES)
def test_undefined_opcode_is_invalid(opc):
    raw = opc << 56 | 0x1234
    with pytest.raises(InvalidInstruction) as ei:
        decode(raw)
    e = ei.value
    assert e.raw == raw and e.op is None and e.opcode == opc
    assert f"unknown opcode {opc}" in e.reason
    assert f"0x{raw:016x}" in str(e)
    assert disassemble(raw) == f".inst 0x{raw:016x}  ; invalid: unknown opcode {opc} (0x{opc:02x})"


def test_invalid_instruction_pickles():
    try:
        decode(0x0A00000000000000)
    except InvalidInstruction as e:
        e2 = pickle.loads(pickle.dumps(e))
        assert (e2.raw, e2.reason, e2.op) == (e.raw, e.reason, e.op)


def test_decode_rejects_non_64_bit_words():
    with pytest.raises(ValueError):
        decode(1 << 64)
    with pytest.raises(ValueError):
        decode(-1)
    with pytest.raises(TypeError):
        decode("0x0")
    with pytest.raises(TypeError):
        decode(b"\0" * 8)


def test_encode_errors():
    with pytest.raises(ValueError, match="no field"):
        encode(Op.MOVE32, dest=1)
    with pytest.raises(ValueError, match="no field"):
        encode(Op.ERROR_BARRIER, imm=0)
    with pytest.raises(ValueError, match="does not fit"):
        encode(Op.MOVE32, imm=1 << 32)
    with pytest.raises(ValueError, match="does not fit"):
        encode(Op.MOVE48, dst=256)
    with pytest.raises(ValueError, match="does not fit"):
        encode(Op.MOVE48, imm=-1)
    with pytest.raises(ValueError, match="does not fit"):
        encode(Op.ADD_IMM32, imm=1 << 31)
    with pytest.raises(ValueError, match="does not fit"):
        encode(Op.LOAD_MULTIPLE, offset=-32769)
    with pytest.raises(ValueError, match="does not fit"):
        encode(Op.SYNC_ADD32, signal_slot=16)
    with pytest.raises(ValueError):
        encode("NO_SUCH_OP")
    with pytest.raises(ValueError):
        encode(10)
    with pytest.raises(ValueError):
        encode(Op.MOVE32, imm=1.5)


def test_encode_op_spellings_and_aliases():
    assert encode("ADD_IMMEDIATE32", imm=1) == encode(Op.ADD_IMM32, imm=1)
    assert encode("compare_select32", dst=1) == encode(Op.UMIN32, dst=1)
    assert encode(51, addr=A) == encode(Op.SYNC_ADD64, addr=A)
    assert encode(Op.RUN_COMPUTE, progress_increment=1) == encode(Op.RUN_COMPUTE, progress_inc=1)
    assert decode(encode(Op.WAIT, progress_inc=1)).progress_increment == 1


# ---------------------------------------------------------------------------------------------
# Instr object
# ---------------------------------------------------------------------------------------------

def test_instr_is_immutable_cached_and_hashable():
    raw = encode(Op.MOVE32, dst=3, imm=7)
    i = decode(raw)
    assert decode(raw) is i
    with pytest.raises(AttributeError):
        i.raw = 0
    with pytest.raises(TypeError):
        i.fields["dst"] = 4
    assert i == decode(raw) and hash(i) == hash(decode(raw))
    assert i != decode(encode(Op.MOVE32, dst=3, imm=8))
    assert {i: 1}[decode(raw)] == 1
    with pytest.raises(AttributeError, match="no field 'src'"):
        i.src
    assert not hasattr(i, "offset")
    assert str(i) == "MOVE32 r3, #0x7"
    assert repr(i) == f"<Instr 0x{raw:016x} MOVE32 r3, #0x7>"
    assert copy.copy(i) == i and copy.deepcopy(i) == i
    assert pickle.loads(pickle.dumps(i)) == i
    assert i.opcode == 2


def test_decode_accepts_integer_like_words():
    numpy = pytest.importorskip("numpy")
    raw = encode(Op.MOVE48, dst=4, imm=0xABC)
    isa.clear_cache()
    assert decode(numpy.uint64(raw)).imm == 0xABC
    assert decode(numpy.uint64(raw)) is decode(raw)
    words = numpy.array([raw, 0], dtype="<u8")
    assert [i.op for _, i in decode_stream(words.tobytes())] == [Op.MOVE48, Op.NOP]


def test_cache_is_bounded():
    isa.clear_cache()
    old = isa._CACHE_MAX
    try:
        isa._CACHE_MAX = 4
        for k in range(10):
            decode(encode(Op.MOVE32, imm=k))
        assert len(isa._CACHE) <= 4
    finally:
        isa._CACHE_MAX = old
        isa.clear_cache()


# ---------------------------------------------------------------------------------------------
# decode_stream
# ---------------------------------------------------------------------------------------------

def test_decode_stream_invalid_and_trailing_bytes():
    good = encode(Op.MOVE32, dst=1, imm=2)
    bad = 0x0A00_0000_0000_0000
    data = struct.pack("<3Q", good, bad, 0) + b"\x01\x02\x03"
    out = decode_stream(data, base_va=0x100)
    assert [va for va, _ in out] == [0x100, 0x108, 0x110, 0x118]
    assert isinstance(out[0][1], Instr) and out[0][1].imm == 2
    assert isinstance(out[1][1], InvalidInstruction) and out[1][1].raw == bad
    assert out[2][1].op is Op.NOP
    tail = out[3][1]
    assert isinstance(tail, InvalidInstruction) and tail.raw == 0x030201
    assert "truncated" in tail.reason
    assert decode_stream(b"") == []
    assert decode_stream(memoryview(struct.pack("<Q", good))) == [(0, decode(good))]


# ---------------------------------------------------------------------------------------------
# Disassembly (stable strings, one per opcode)
# ---------------------------------------------------------------------------------------------

# genxml enum values by the names our disassembler prints (lower snake case of genxml's names).
FLUSH = {"none": 0, "clean": 1, "clean_invalidate": 3}     # CS Flush Mode
TILE = {"z_order": 0, "horizontal": 1, "vertical": 2}       # Tile Render Order
STATE = {"timestamp": 0, "cycle_count": 1}                 # CS State
HEAP = {"fragment_completed": 3}                           # CS Heap Operation
OOM = 2                                                    # CS Exception type "Tiler OOM"
CSG, SYSTEM = 2, 0                                         # CS Sync scope
LE, GT, NE = 0, 1, 3                                       # CS Condition


def _sb(mask: int) -> str:
    return ",".join(f"sb{b}" for b in range(16) if mask >> b & 1)


# Words assembled from the genxml facts; the text is spelled from the same values in our
# syntax (dN for a 64-bit register pair, rN for 32 bits, #imm, [address]).
DISASM = [
    (asm("NOP"), "NOP"),
    (asm("MOVE48", dst=0, imm=0xDEADBEEF0), f"MOVE48 d0, #0x{0xDEADBEEF0:x}"),
    (asm("MOVE32", dst=2, imm=42), f"MOVE32 r2, #0x{42:x}"),
    (asm("WAIT", wait_mask=0b1110_0101, progress_inc=1), "WAIT sb0,sb2,sb5..sb7, progress_inc"),
    (asm("WAIT", wait_mask=0b0000_0101), f"WAIT {_sb(0b101)}"),
    (asm("WAIT"), "WAIT none"),
    (asm("RUN_COMPUTE", task_increment=16, task_axis=1, srt_select=1, spd_select=2, tsd_select=3),
     "RUN_COMPUTE.Y task_inc=16, srt=1, spd=2, tsd=3, fau=0"),
    (asm("RUN_TILING", flags_override=0x100), "RUN_TILING flags=0x100, srt=0, spd=0, tsd=0, fau=0"),
    (asm("RUN_IDVS", draw_id=7, flags_override=0x3, malloc_enable=1, fragment_tsd_select=1),
     "RUN_IDVS r7, flags=0x3, malloc, frag_tsd"),
    (asm("RUN_FRAGMENT", enable_tem=1, tile_order=TILE["vertical"]), "RUN_FRAGMENT tile_order=vertical, tem"),
    (asm("RUN_FULLSCREEN", dcd=8, flags_override=0x10), "RUN_FULLSCREEN r8, flags=0x10"),
    (asm("FINISH_TILING"), "FINISH_TILING"),
    (asm("FINISH_FRAGMENT", increment_fragment_completed=1, wait_mask=0x3, last_heap_chunk=40,
         first_heap_chunk=42, signal_slot=1), "FINISH_FRAGMENT d40, d42, frag_end, wait=0x03, signal=1"),
    (asm("ADD_IMMEDIATE32", dst=1, src=2, imm=-5), "ADD_IMM32 r1, r2, #-5"),
    (asm("ADD_IMMEDIATE64", dst=4, src=4, imm=64), "ADD_IMM64 d4, d4, #64"),
    (asm("COMPARE_SELECT32", dst=1, src0=2, src1=3), "UMIN32 r1, r2, r3"),
    (asm("LOAD_MULTIPLE", base=4, mask=0x000F, addr=0, offset=-8), "LOAD_MULTIPLE r4..r7, [d0 - 0x8] (mask 0x000f)"),
    (asm("STORE_MULTIPLE", base=2, mask=1, addr=0, offset=0x10), "STORE_MULTIPLE [d0 + 0x10], r2..r2 (mask 0x0001)"),
    (asm("STORE_MULTIPLE", base=2, mask=0, addr=6), "STORE_MULTIPLE [d6], none (mask 0x0000)"),
    (asm("BRANCH", cond=LE, value=9, offset=4), "BRANCH.LE r9, +4"),
    (asm("SET_SB_ENTRY", endpoint_entry=1, other_entry=2), "SET_SB_ENTRY endpoint=sb1, other=sb2"),
    (asm("PROGRESS_WAIT", src=10, queue=3), "PROGRESS_WAIT d10, queue=3"),
    (asm("SET_EXCEPTION_HANDLER", exception_type=OOM, addr=60, length=62), "SET_EXCEPTION_HANDLER.TILER_OOM d60, r62"),
    (asm("CALL", addr=92, length=94), "CALL d92, r94"),
    (asm("JUMP", addr=0, length=2), "JUMP d0, r2"),
    (asm("REQ_RESOURCE", compute=1, tiler=1), "REQ_RESOURCE compute, tiler"),
    (asm("REQ_RESOURCE"), "REQ_RESOURCE none"),
    (asm("FLUSH_CACHE2", l2=FLUSH["clean"], flush_id=5, wait_mask=0x2, signal_slot=3),
     "FLUSH_CACHE2 l2=clean, lsc=none, other=none, flush_id=r5, wait=0x02, signal=3"),
    (asm("SYNC_ADD32", addr=0, data=2, scope=CSG, signal_slot=1), "SYNC_ADD32 [d0] += r2, scope=csg, wait=0x00, signal=1"),
    (asm("SYNC_SET32", addr=0, data=2, scope=SYSTEM), "SYNC_SET32 [d0] = r2, scope=system, wait=0x00, signal=0"),
    (asm("SYNC_WAIT32", cond=GT, addr=0, data=2, error_reject=1), "SYNC_WAIT32.GT [d0], r2, reject"),
    (asm("STORE_STATE", addr=92, offset=8, state=STATE["timestamp"], wait_mask=0xFF, signal_slot=2),
     "STORE_STATE [d92 + 0x8] = timestamp, wait=0xff, signal=2"),
    (asm("STORE_STATE", addr=92, state=STATE["cycle_count"]), "STORE_STATE [d92] = cycle_count, wait=0x00, signal=0"),
    (asm("PROT_REGION", size=0x100), "PROT_REGION size=0x100"),
    (asm("PROGRESS_STORE", src=12), "PROGRESS_STORE d12"),
    (asm("PROGRESS_LOAD", dst=14), "PROGRESS_LOAD d14"),
    (asm("RUN_COMPUTE_INDIRECT", workgroups_per_task=32, fau_select=1),
     "RUN_COMPUTE_INDIRECT wg_per_task=32, srt=0, spd=0, tsd=0, fau=1"),
    (asm("ERROR_BARRIER"), "ERROR_BARRIER"),
    (asm("HEAP_SET", addr=48), "HEAP_SET d48"),
    (asm("HEAP_OPERATION", operation=HEAP["fragment_completed"], wait_mask=1),
     "HEAP_OPERATION fragment_completed, wait=0x01, signal=0"),
    (asm("TRACE_POINT", base=0, count=4), "TRACE_POINT r0..r3, wait=0x00, signal=0"),
    (asm("SYNC_ADD64", addr=92, data=94, error_propagate=1), "SYNC_ADD64 [d92] += d94, scope=system, propagate, wait=0x00, signal=0"),
    (asm("SYNC_SET64", addr=2, data=4, scope=CSG, wait_mask=0x100), "SYNC_SET64 [d2] = d4, scope=csg, wait=0x100, signal=0"),
    (asm("SYNC_WAIT64", cond=LE, addr=2, data=4), "SYNC_WAIT64.LE [d2], d4"),
]


@pytest.mark.parametrize("raw,text", DISASM, ids=[t for _, t in DISASM])
def test_disassembly_of_genxml_words(raw, text):
    assert disassemble(raw) == text
    assert disassemble(decode(raw)) == text


def test_disassembly_table_covers_every_opcode():
    assert {raw >> 56 for raw, _ in DISASM} == {int(op) for op in Op}


# ---------------------------------------------------------------------------------------------
# Speed (no timed assertion; just make sure the cached path is a dict hit)
# ---------------------------------------------------------------------------------------------

def test_cached_decode_returns_same_object_in_a_loop():
    block = _ring_block()
    first = [decode(w) for w in block]
    for _ in range(1000):
        for w, i in zip(block, first):
            assert decode(w) is i
