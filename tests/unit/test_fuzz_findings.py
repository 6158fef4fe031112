"""What the coverage-guided fuzzer (fuzz/, `make fuzz`) found, each as a regression test
through the public path: a trace file handed to `open_trace`/`load` (what `mali-vdev trace
show` does) answers with its format's error naming the problem, never another exception."""

from __future__ import annotations

import io

import pytest

from mali_trace import jsonl, load
from mali_trace.jsonl import JsonlFormatError
from mali_trace.mmiotrace import MmiotraceFormatError


def _load(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return load(str(p))


@pytest.mark.parametrize("first", ["1", "[1, 2]", '"header"', "null"])
def test_jsonl_reader_whose_first_line_is_not_an_object(first):
    # found: "1" raised AttributeError ('int' object has no attribute 'get'). open_trace's
    # detection sends only "{" files here; the reader itself is the API the fuzzer calls.
    with pytest.raises(JsonlFormatError, match="line 1 is a JSON .*, not an object"):
        jsonl.read(io.StringIO(first + "\n"))


@pytest.mark.parametrize("field, value", [("gpu_id", "2.5e9"), ("gpu_id", '"0xa8670005"'), ("gpu_id", "-1"),
                                          ("gpu_id", str(1 << 40)), ("timestamp_hz", "true"), ("profile", "7")])
def test_jsonl_header_with_a_field_of_the_wrong_type(tmp_path, field, value):
    # found: a float gpu_id passed the reader and raised TypeError in the decoder (>> on a float)
    with pytest.raises(JsonlFormatError, match=f"header field {field} is"):
        _load(tmp_path, "t.jsonl", '{"type":"header","format":"mali-vdev-trace","%s":%s}\n' % (field, value))


def test_jsonl_event_line_that_is_not_an_object(tmp_path):
    text = '{"type":"header","format":"mali-vdev-trace"}\n{"seq":1,"t_ns":0,"kind":"REG_READ"}\n[1]\n'
    with pytest.raises(JsonlFormatError, match="line 3 is a JSON list, not an event object"):
        _load(tmp_path, "t.jsonl", text)


@pytest.mark.parametrize("mark", ["[]", '{"gpu_id": 1.5}'])
def test_mmiotrace_header_mark_that_is_not_a_header(tmp_path, mark):
    with pytest.raises(MmiotraceFormatError, match="bad header MARK"):
        _load(tmp_path, "t.mmiotrace", f"VERSION 20070824\nMARK 0.000000 mali-vdev-trace {mark}\n")


def test_a_good_header_still_reads(tmp_path):
    t = _load(tmp_path, "t.jsonl", '{"type":"header","format":"mali-vdev-trace","gpu_id":2825322501,'
                                   '"profile":"g610"}\n{"seq":1,"t_ns":5,"kind":"REG_READ","addr":0,"value":7,"width":4}\n')
    assert t.header.gpu_id == 0xA8670005 and [(e.seq, e.value) for e in t.events] == [(1, 7)]


def test_firmware_sections_sharing_one_data_range_do_not_copy_it_each(tmp_path):
    """found: every IFACE entry copied its data range out of the file, so N entries naming
    the same range held N times the file (a 1 MiB image of 30,000 entries: 30 GB)."""
    import tracemalloc

    from firmware_loader.image import EHDR, EHDR_SIZE, FW_BINARY_MAGIC, HEADER, HEADER_SIZE, IFACE_ENTRY, EntryType, parse

    n, blob = 1000, bytes(range(256)) * 256                     # 64 KiB of section data
    entry = IFACE_ENTRY.build(dict(flags=0x1, va_start=0x100000, va_end=0x110000, data_start=0, data_end=0, name=b""))
    entries_end = HEADER_SIZE + n * (EHDR_SIZE + len(entry))
    entry = IFACE_ENTRY.build(dict(flags=0x1, va_start=0x100000, va_end=0x110000, data_start=entries_end,
                                   data_end=entries_end + len(blob), name=b""))
    ehdr = EHDR.build(dict(optional=False, update=False, reserved=0, size=EHDR_SIZE + len(entry), type=EntryType.IFACE))
    image = HEADER.build(dict(magic=FW_BINARY_MAGIC, minor=3, major=0, padding1=0, version_hash=0, padding2=0,
                              size=entries_end)) + (ehdr + entry) * n + blob
    tracemalloc.start()
    try:
        img = parse(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(img.sections) == n and all(s.data == blob for s in img.sections[:3] + img.sections[-3:])
    assert peak < 8 * len(image) + (4 << 20), f"parsing a {len(image)}-byte image peaked at {peak} bytes"  # copies: 64 MiB
    errors, _ = img.check("tyr")
    assert any("overlaps IFACE entry 0" in e for e in errors)


@pytest.mark.parametrize("field, value", [("t_ns", "Infinity"), ("t_ns", "1e30"), ("seq", "2.5"), ("value", str(1 << 70)),
                                          ("slot", "300"), ("addr", "-1"), ("width", "true")])
def test_jsonl_event_fields_out_of_their_range(tmp_path, field, value):
    # found: "t_ns": Infinity raised OverflowError (int() of an infinite float)
    fields = {"seq": "1", "t_ns": "0", "kind": '"REG_READ"', "addr": "0", "value": "1", "width": "4", field: value}
    line = "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}"
    with pytest.raises(JsonlFormatError, match=f"field {field} is"):
        _load(tmp_path, "t.jsonl", '{"type":"header","format":"mali-vdev-trace"}\n' + line + "\n")


@pytest.mark.parametrize("value, shown", [(0xFFFF000E00000000, "not a job instruction: 0xffff000e00000000: unknown opcode 255"),
                                          (0x0100000000000000 | 5, "not a job instruction: MOVE48")])
def test_job_event_whose_instruction_is_not_a_job(tmp_path, value, shown):
    """found: a JOB event (kind 17) carrying a word that is no CS instruction raised
    InvalidInstruction out of `trace show`'s decoder; one carrying another instruction was
    named as if it were a job."""
    from mali_trace.analysis import show
    t = _load(tmp_path, "t.jsonl", '{"type":"header","format":"mali-vdev-trace","gpu_id":2825322501,"profile":"g610"}\n'
                                   '{"seq":1,"t_ns":5,"kind":"JOB","addr":4096,"value":%d,"slot":0,"stream":0}\n' % value)
    lines = [str(x) for x in show(t.events, t.header)]
    assert any(shown in line for line in lines), lines


@pytest.mark.parametrize("fields, bad", [("addr=0x1 value=-0x11 slot=0 aux=0x11", "value"),
                                         ("addr=0x1 value=0x%x slot=0 aux=0x11" % (1 << 64), "value"),
                                         ("addr=0x1 value=0x11 slot=300 aux=0x11", "slot")])
def test_mmiotrace_event_mark_with_a_field_out_of_range(tmp_path, fields, bad):
    """found: an IFACE event of value -0x11 in an mmiotrace MARK reached the interface decoder,
    whose walk over the changed bits never ends for a negative word (`trace show` hung)."""
    from mali_trace.analysis import show
    t = _load(tmp_path, "t.mmiotrace", "VERSION 20070824\n"
              f"MARK 0.007005 mali-vdev IFACE {fields} : CSG0 CSG_ACK = 0x00000011\n"
              "MARK 0.007006 mali-vdev IFACE addr=0x1 value=0x11 slot=0 aux=0x11 : CSG0 CSG_ACK = 0x00000011\n")
    assert [e.value for e in t.events] == [0x11]
    assert any(f"field {bad} is" in w for w in t.warnings), t.warnings
    assert len(list(show(t.events, t.header))) == 1
