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
    FIELDS,
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
# Enums
# ---------------------------------------------------------------------------------------------

def test_opcode_numbers_match_genxml():
    expected = dict(NOP=0, MOVE48=1, MOVE32=2, WAIT=3, RUN_COMPUTE=4, RUN_TILING=5, RUN_IDVS=6,
                    RUN_FRAGMENT=7, RUN_FULLSCREEN=8, FINISH_TILING=9, FINISH_FRAGMENT=11,
                    ADD_IMM32=16, ADD_IMM64=17, UMIN32=18, LOAD_MULTIPLE=20, STORE_MULTIPLE=21,
                    BRANCH=22, SET_SB_ENTRY=23, PROGRESS_WAIT=24, SET_EXCEPTION_HANDLER=25,
                    CALL=32, JUMP=33, REQ_RESOURCE=34, FLUSH_CACHE2=36, SYNC_ADD32=37,
                    SYNC_SET32=38, SYNC_WAIT32=39, STORE_STATE=40, PROT_REGION=41,
                    PROGRESS_STORE=42, PROGRESS_LOAD=43, RUN_COMPUTE_INDIRECT=44,
                    ERROR_BARRIER=47, HEAP_SET=48, HEAP_OPERATION=49, TRACE_POINT=50,
                    SYNC_ADD64=51, SYNC_SET64=52, SYNC_WAIT64=53)
    assert {op.name: op.value for op in Op} == expected


def test_condition_numbers_match_genxml():
    assert [(c.name, c.value) for c in Cond] == [
        ("LE", 0), ("GT", 1), ("EQ", 2), ("NE", 3), ("LT", 4), ("GE", 5), ("ALWAYS", 6)]
    assert SyncScope.SYSTEM == 0 and SyncScope.CSG == 2


def test_field_tables_cover_every_opcode_without_overlap():
    assert set(FIELDS) == set(Op)
    for op, specs in FIELDS.items():
        used = 0
        for s in specs:
            m = ((1 << s.width) - 1) << s.shift
            assert not used & m, (op, s)
            assert s.shift + s.width <= 56, (op, s)
            used |= m


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


# ---------------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------------

def _random_fields(rng: random.Random, op: Op) -> dict[str, int]:
    out = {}
    for s in FIELDS[op]:
        if s.signed:
            v = rng.randint(-(1 << (s.width - 1)), (1 << (s.width - 1)) - 1)
        else:
            v = rng.randint(0, (1 << s.width) - 1)
        out[s.name] = v << s.scale
    return out


@pytest.mark.parametrize("op", list(Op), ids=lambda o: o.name)
def test_encode_decode_round_trip_random_fields(op):
    rng = random.Random(0xC5_0000 + int(op))
    for _ in range(300):
        fields = _random_fields(rng, op)
        raw = encode(op, **fields)
        assert raw >> 56 == int(op)
        i = decode(raw)
        assert i.op is op and i.raw == raw
        assert dict(i.fields) == fields
        assert tuple(i.fields) == field_names(op)
        for name, v in fields.items():
            assert getattr(i, name) == v
        assert encode(i.op, **i.fields) == raw
        assert encode(op.name.lower(), **fields) == raw
        assert isinstance(disassemble(raw), str) and disassemble(raw) == disassemble(i)


@pytest.mark.parametrize("op", list(Op), ids=lambda o: o.name)
def test_random_words_with_only_field_bits_decode_and_reencode(op):
    rng = random.Random(0xD3_0000 + int(op))
    field_bits = 0
    for s in FIELDS[op]:
        field_bits |= ((1 << s.width) - 1) << s.shift
    for _ in range(300):
        raw = int(op) << 56 | (rng.getrandbits(56) & field_bits)
        i = decode(raw)
        assert encode(op, **i.fields) == raw


@pytest.mark.parametrize("op", [op for op in Op if op is not Op.NOP], ids=lambda o: o.name)
def test_every_reserved_bit_is_rejected(op):
    field_bits = 0
    for s in FIELDS[op]:
        field_bits |= ((1 << s.width) - 1) << s.shift
    reserved = [b for b in range(56) if not field_bits >> b & 1]
    for b in reserved:
        raw = int(op) << 56 | 1 << b
        with pytest.raises(InvalidInstruction) as ei:
            decode(raw)
        assert ei.value.raw == raw and ei.value.op is op
        assert "reserved" in ei.value.reason
        assert disassemble(raw).startswith(f".inst 0x{raw:016x}  ; invalid: {op.name}")


def test_nop_ignores_its_payload():
    for raw in (0x00FF_FFFF_FFFF_FFFF, 0x0012_3456_789A_BCDE, 1):
        i = decode(raw)
        assert i.op is Op.NOP
    assert disassemble(0x0001_0000_0000_0002) == "NOP type=1, payload=0x2"


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

UNDEFINED_OPCODES = [n for n in range(256) if n not in {int(op) for op in Op}]


def test_undefined_opcodes_list():
    assert UNDEFINED_OPCODES[:8] == [10, 12, 13, 14, 15, 19, 26, 27]
    assert {35, 45, 46, 54, 255} <= set(UNDEFINED_OPCODES)


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

DISASM = [
    (dict(op=Op.NOP), "NOP"),
    (dict(op=Op.MOVE48, dst=0, imm=0xDEADBEEF0), "MOVE48 d0, #0xdeadbeef0"),
    (dict(op=Op.MOVE32, dst=2, imm=0x2A), "MOVE32 r2, #0x2a"),
    (dict(op=Op.WAIT, wait_mask=0b1110_0101, progress_inc=1),
     "WAIT sb0,sb2,sb5..sb7, progress_inc"),
    (dict(op=Op.WAIT), "WAIT none"),
    (dict(op=Op.RUN_COMPUTE, task_increment=16, task_axis=1, srt_select=1, spd_select=2,
          tsd_select=3, fau_select=0),
     "RUN_COMPUTE.Y task_inc=16, srt=1, spd=2, tsd=3, fau=0"),
    (dict(op=Op.RUN_TILING, flags_override=0x100),
     "RUN_TILING flags=0x100, srt=0, spd=0, tsd=0, fau=0"),
    (dict(op=Op.RUN_IDVS, draw_id=7, flags_override=0x3, malloc_enable=1, fragment_tsd_select=1),
     "RUN_IDVS r7, flags=0x3, malloc, frag_tsd"),
    (dict(op=Op.RUN_FRAGMENT, enable_tem=1, tile_order=2), "RUN_FRAGMENT tile_order=vertical, tem"),
    (dict(op=Op.RUN_FULLSCREEN, dcd=8, flags_override=0x10), "RUN_FULLSCREEN r8, flags=0x10"),
    (dict(op=Op.FINISH_TILING), "FINISH_TILING"),
    (dict(op=Op.FINISH_FRAGMENT, increment_fragment_completed=1, wait_mask=0x3, last_heap_chunk=40,
          first_heap_chunk=42, signal_slot=1),
     "FINISH_FRAGMENT d40, d42, frag_end, wait=0x03, signal=1"),
    (dict(op=Op.ADD_IMM32, dst=1, src=2, imm=-5), "ADD_IMM32 r1, r2, #-5"),
    (dict(op=Op.ADD_IMM64, dst=4, src=4, imm=0x40), "ADD_IMM64 d4, d4, #64"),
    (dict(op=Op.UMIN32, dst=1, src0=2, src1=3), "UMIN32 r1, r2, r3"),
    (dict(op=Op.LOAD_MULTIPLE, base=4, mask=0x000F, addr=0, offset=-8),
     "LOAD_MULTIPLE r4..r7, [d0 - 0x8] (mask 0x000f)"),
    (dict(op=Op.STORE_MULTIPLE, base=2, mask=1, addr=0, offset=0x10),
     "STORE_MULTIPLE [d0 + 0x10], r2..r2 (mask 0x0001)"),
    (dict(op=Op.STORE_MULTIPLE, base=2, mask=0, addr=6), "STORE_MULTIPLE [d6], none (mask 0x0000)"),
    (dict(op=Op.BRANCH, cond=Cond.LE, value=9, offset=4), "BRANCH.LE r9, +4"),
    (dict(op=Op.SET_SB_ENTRY, endpoint_entry=1, other_entry=2),
     "SET_SB_ENTRY endpoint=sb1, other=sb2"),
    (dict(op=Op.PROGRESS_WAIT, src=10, queue=3), "PROGRESS_WAIT d10, queue=3"),
    (dict(op=Op.SET_EXCEPTION_HANDLER, exception_type=2, addr=60, length=62),
     "SET_EXCEPTION_HANDLER.TILER_OOM d60, r62"),
    (dict(op=Op.CALL, addr=92, length=94), "CALL d92, r94"),
    (dict(op=Op.JUMP, addr=0, length=2), "JUMP d0, r2"),
    (dict(op=Op.REQ_RESOURCE, compute=1, tiler=1), "REQ_RESOURCE compute, tiler"),
    (dict(op=Op.REQ_RESOURCE), "REQ_RESOURCE none"),
    (dict(op=Op.FLUSH_CACHE2, l2=1, lsc=0, other=0, flush_id=5, wait_mask=0x2, signal_slot=3),
     "FLUSH_CACHE2 l2=clean, lsc=none, other=none, flush_id=r5, wait=0x02, signal=3"),
    (dict(op=Op.SYNC_ADD32, addr=0, data=2, scope=SyncScope.CSG, signal_slot=1),
     "SYNC_ADD32 [d0] += r2, scope=csg, wait=0x00, signal=1"),
    (dict(op=Op.SYNC_SET32, addr=0, data=2),
     "SYNC_SET32 [d0] = r2, scope=system, wait=0x00, signal=0"),
    (dict(op=Op.SYNC_WAIT32, cond=Cond.GT, addr=0, data=2, error_reject=1),
     "SYNC_WAIT32.GT [d0], r2, reject"),
    (dict(op=Op.STORE_STATE, addr=92, offset=8, state=0, wait_mask=0xFF, signal_slot=2),
     "STORE_STATE [d92 + 0x8] = timestamp, wait=0xff, signal=2"),
    (dict(op=Op.PROT_REGION, size=0x100), "PROT_REGION size=0x100"),
    (dict(op=Op.PROGRESS_STORE, src=12), "PROGRESS_STORE d12"),
    (dict(op=Op.PROGRESS_LOAD, dst=14), "PROGRESS_LOAD d14"),
    (dict(op=Op.RUN_COMPUTE_INDIRECT, workgroups_per_task=32, fau_select=1),
     "RUN_COMPUTE_INDIRECT wg_per_task=32, srt=0, spd=0, tsd=0, fau=1"),
    (dict(op=Op.ERROR_BARRIER), "ERROR_BARRIER"),
    (dict(op=Op.HEAP_SET, addr=48), "HEAP_SET d48"),
    (dict(op=Op.HEAP_OPERATION, operation=3, wait_mask=1),
     "HEAP_OPERATION fragment_completed, wait=0x01, signal=0"),
    (dict(op=Op.TRACE_POINT, base=0, count=4, wait_mask=0, signal_slot=0),
     "TRACE_POINT r0..r3, wait=0x00, signal=0"),
    (dict(op=Op.SYNC_ADD64, addr=92, data=94, error_propagate=1),
     "SYNC_ADD64 [d92] += d94, scope=system, propagate, wait=0x00, signal=0"),
    (dict(op=Op.SYNC_SET64, addr=2, data=4, scope=SyncScope.CSG, wait_mask=0x100),
     "SYNC_SET64 [d2] = d4, scope=csg, wait=0x100, signal=0"),
    (dict(op=Op.SYNC_WAIT64, cond=Cond.LE, addr=2, data=4), "SYNC_WAIT64.LE [d2], d4"),
]


@pytest.mark.parametrize("spec,text", DISASM, ids=[t for _, t in DISASM])
def test_disassembly_is_stable(spec, text):
    spec = dict(spec)
    op = spec.pop("op")
    raw = encode(op, **spec)
    assert disassemble(raw) == text
    assert disassemble(decode(raw)) == text


def test_disassembly_table_covers_every_opcode():
    assert {spec["op"] for spec, _ in DISASM} == set(Op)


# ---------------------------------------------------------------------------------------------
# Speed (no timed assertion; just make sure the cached path is a dict hit)
# ---------------------------------------------------------------------------------------------

def test_cached_decode_returns_same_object_in_a_loop():
    block = _ring_block()
    first = [decode(w) for w in block]
    for _ in range(1000):
        for w, i in zip(block, first):
            assert decode(w) is i
