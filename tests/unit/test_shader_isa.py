"""The Valhall decoder, disassembler and assembler against Mesa's own test vectors.

tests/unit/data/valhall-assembler-cases.txt holds Mesa's assembler-cases.txt (source named in
its header): the hex is authoritative. Each word must decode and disassemble to Mesa's text,
and Mesa's text must assemble back to the word. The one exception, listed here: that Mesa tree
still calls LD_BUFFER/LEA_BUFFER by their older names LD_PKA/LEA_PKA (same encodings).
"""

from pathlib import Path

import pytest

from shader import isa

CASES = Path(__file__).parent / "data" / "valhall-assembler-cases.txt"
RENAMED = {"LD_PKA": "LD_BUFFER", "LEA_PKA": "LEA_BUFFER"}


def _cases():
    for line in CASES.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        hexbytes, text = line[:23], line[23:].strip()
        old = text.split(".")[0]
        if old in RENAMED:
            text = RENAMED[old] + text[len(old):]
        yield int.from_bytes(bytes.fromhex(hexbytes), "little"), text


ALL = list(_cases())


def test_the_vectors_are_all_there():
    assert len(ALL) == 244  # every line of the stored file


@pytest.mark.parametrize("raw,text", ALL, ids=[t for _, t in ALL])
def test_decode_and_disassemble_as_mesa(raw, text):
    assert isa.disassemble(isa.decode(raw)).strip() == text


@pytest.mark.parametrize("raw,text", ALL, ids=[t for _, t in ALL])
def test_assemble_back_to_the_word(raw, text):
    assert isa.assemble(text) == raw


def test_decoded_fields_of_a_load():
    # LOAD.i32.unsigned.slot0.wait0 @r0, ^r0, offset:0 (the digest's worked example, by hand)
    ins = isa.decode(0x0860808218000040)
    assert ins.name == "LOAD.i32" and ins.form.message
    assert ins.staging == ((0, 1, False, True),)
    assert ins.srcs[0].kind == "r" and ins.srcs[0].value == 0 and ins.srcs[0].discard
    assert ins.mod("unsigned") is True and ins.mod("slot") == "slot0"
    assert isa.FLOW.values[ins.flow] == "wait0" and ins.imm("offset") == 0


def test_source_kinds_and_fau_page():
    ins = isa.decode(isa.assemble("MOV.i32 r1, u65"))
    assert ins.page == 1 and ins.srcs[0].kind == "u" and ins.srcs[0].value == 65
    ins = isa.decode(isa.assemble("MOV.i32 r1, lane_id.w0"))
    assert (ins.srcs[0].kind, ins.srcs[0].page, ins.srcs[0].value) == ("s", 3, 1)
    ins = isa.decode(isa.assemble("FADD.f32 r0, r1, 0x3F800000.neg"))
    assert ins.srcs[1].kind == "i" and isa.IMMEDIATES[ins.srcs[1].value] == 0x3F800000
    assert ins.srcs[1].mod("neg") and not ins.srcs[1].mod("abs")


@pytest.mark.parametrize("raw,why", [
    (1 << 63 | 0x0091C10000000002, "reserved bit 63"),
    (0x03 << 48, "opcode 0x3 is not"),
    (0x00A4C00000050201, "secondary opcode 0x5"),                   # FADD bucket, opcode2 5
    (0x0091C100000000E0, "reserved special FAU value 0 of page 0"),
    (0x0091C10000000002 | 11 << 59, "reserved flow 11"),
    (0x0060808218000040 | 3 << 30, "reserved slot value 3"),
    (0x0091C100000000E0 | 2 << 57, "page 2"),
])
def test_reserved_encodings_are_errors_naming_the_field(raw, why):
    with pytest.raises(isa.InvalidEncoding, match=why):
        isa.decode(raw)


def test_every_table_entry_round_trips_its_canonical_word():
    # opcode (+ opcode2) alone, with flow none: each entry decodes back to itself
    for name, form in isa.FORMS.items():
        raw = form.spec.opcode << 48 | (form.spec.opcode2 or 0) << form.shift
        for m in form.mods:  # enums without a default value 0 may be reserved: pick a valid one
            if m.enum is not None and not m.implied and m.start < 64:
                vals = isa.ENUMS[m.enum].values
                raw |= next(i for i, v in enumerate(vals) if v is not None) << m.start
        for sf in form.srcs:
            for key, start, bits, enum in sf.mods:
                if enum is not None:
                    vals = isa.ENUMS[enum].values
                    raw |= next(i for i, v in enumerate(vals) if v is not None) << start
        assert isa.decode(raw).name == name
