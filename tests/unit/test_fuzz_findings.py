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
