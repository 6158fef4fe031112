"""`mali-vdev trace show|stats|diff|perfetto|convert` on traces of driver-model runs."""

from __future__ import annotations

import json

import pytest

from mali_base.events import Kind
from mali_trace import load
from mali_trace.analysis import accesses, diff
from mali_trace.perfetto import validate
from mali_vdev.cli import main

from .test_trace import traced_run


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    a = traced_run(d, "g610", name="a")
    a2 = traced_run(d, "g610", name="again")
    b = traced_run(d, "g710", name="b")
    return a, a2, b


def trace(capsys, *argv):
    rc = main(["trace", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_show_decodes_every_event(traces, capsys):
    (seen, paths, _), _, _ = traces
    rc, out, _ = trace(capsys, "show", paths["binary"])
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("# ") and "Mali-G610" in lines[0]
    assert len(lines) == len(seen) + 1
    assert "GPU_ID = 0xa8670005" in lines[1] and " R " in lines[1] and "GPU_CONTROL" in lines[1]
    assert any("CSG0 -> START (AS1)" in ln for ln in lines)
    assert any("SYNC_ADD64" in ln for ln in lines)


def test_show_filters(traces, capsys):
    (seen, paths, _), _, _ = traces
    rc, out, _ = trace(capsys, "show", paths["jsonl"], "-q", "--reg", "AS_COMMAND")
    assert rc == 0 and out and all("AS_COMMAND[" in ln for ln in out.splitlines())
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--reg", "GPU_CMD")      # panthor's alias
    assert [ln.split()[-5] for ln in out.splitlines()] == ["GPU_COMMAND"]
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--reg", "SHADER_PRESENT,TEXTURE_FEATURES[0]")
    assert len(out.splitlines()) == 2
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--block", "JOB")
    blocks = {ln.split()[3] for ln in out.splitlines()}
    assert blocks == {"JOB_CONTROL"}
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--block", "MMU")
    assert {ln.split()[3] for ln in out.splitlines()} == {"MMU_CONTROL", "MMU_AS"}
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--block", "doorbell")
    assert out and all("DOORBELL[" in ln for ln in out.splitlines())
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--csg", "0", "--kind", "CSG,CS_FATAL")
    kinds = [ln.split()[2] for ln in out.splitlines()]
    assert kinds.count("CSG") == 4 and kinds.count("CS_FATAL") == 1
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--csg", "1")
    assert out == ""
    _, out, _ = trace(capsys, "show", paths["mmiotrace"], "-q", "--kind", "REG")
    assert len(out.splitlines()) == sum(e.kind in (Kind.REG_READ, Kind.REG_WRITE) for e in seen)
    mid = seen[len(seen) // 2].t_ns
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--from", f"{mid}ns", "--to", f"{(mid + 300_000) / 1e6}ms")
    assert [int(ln.split()[0]) for ln in out.splitlines()] == [e.seq for e in seen if mid <= e.t_ns <= mid + 300_000]
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "--from", f"{mid / 1e9}")
    # the first event at that time (CS_INSTR events of one run share their timestamp)
    assert int(out.split()[0]) == next(e.seq for e in seen if e.t_ns == mid)
    _, out, _ = trace(capsys, "show", paths["binary"], "-q", "-n", "3")
    assert len(out.splitlines()) == 3


def test_show_rejects_bad_filters(traces, capsys):
    (_, paths, _), _, _ = traces
    rc, _, err = trace(capsys, "show", paths["binary"], "--block", "NOPE")
    assert rc == 2 and "unknown block" in err
    rc, _, err = trace(capsys, "show", paths["binary"], "--kind", "NOPE")
    assert rc == 2 and "unknown event kind" in err
    rc, _, err = trace(capsys, "show", paths["binary"], "--from", "soon")
    assert rc == 2 and "bad time" in err
    rc, _, err = trace(capsys, "show", "/nonexistent")
    assert rc == 2


def test_stats(traces, capsys):
    (seen, paths, _), _, _ = traces
    rc, out, _ = trace(capsys, "stats", paths["binary"], "--json")
    s = json.loads(out)
    assert rc == 0 and s["events"] == len(seen)
    assert s["registers"]["GPU_ID"] == {"reads": 1, "writes": 0}
    assert s["registers"]["DOORBELL[1]"]["writes"] == 7
    assert s["jobs"]["total"] == 7
    q = s["jobs"]["per_queue"]["CSG0/CS0"]
    assert q["ended_by"] == {"SYNC_ADD64": 6, "fatal": 1} and q["instructions"] > 7 * 10
    assert s["irq"]["line_raised"] == 5 and s["irq"]["raised_bits"]["JOB"] == {"GLOBAL_IF": 1, "CSG0": 5}
    assert s["irq"]["raised_bits"]["MMU"] == {"PAGE_FAULT_AS1": 1}
    assert len(s["faults"]["mmu"]) == 1 and s["faults"]["mmu"][0]["va"] == 0x7700_0000
    assert len(s["faults"]["cs_fatal"]) == 1
    assert s["resets"] == {"SOFT_RESET": 1}
    assert s["csg_states"] == {"START": 1, "SUSPEND": 1, "RESUME": 1, "TERMINATE": 1}
    assert s["cs_instructions"]["SYNC_ADD64"] == 6 and s["cs_instructions"]["CALL"] == 7  # the 7th faulted
    rc, out, _ = trace(capsys, "stats", paths["mmiotrace"])
    assert rc == 0 and "GPU_ID" in out and "faults: 1 MMU, 1 CS fatal" in out and "resets: SOFT_RESET 1" in out


def test_diff_of_a_trace_with_itself_and_a_rerun_is_empty(traces, capsys):
    (_, paths, _), (_, again, _), _ = traces
    assert trace(capsys, "diff", paths["binary"], paths["binary"]) == (0, "", "")
    assert trace(capsys, "diff", paths["binary"], paths["jsonl"]) == (0, "", "")
    assert trace(capsys, "diff", paths["binary"], again["mmiotrace"]) == (0, "", "")


def test_diff_against_another_profile_shows_gpu_id_first(traces, capsys):
    (_, paths, _), _, (_, other, _) = traces
    rc, out, _ = trace(capsys, "diff", paths["binary"], other["binary"])
    assert rc == 1
    lines = out.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith("first divergence"))
    assert "register access #1 " in lines[i]
    assert lines[i + 1] == "  - R GPU_ID = 0xa8670005"
    assert "+ R GPU_ID = 0xa8020000" in out
    assert "Mali-G710" in out and "registers in differing sequences: GPU_ID" in out
    a, b = load(paths["binary"]), load(other["binary"])
    ax, bx = accesses(a.events, a.header), accesses(b.events, b.header)
    res = diff(ax, bx)
    assert res.first == 0 and ax[0].reg == "GPU_ID"
    # only identity reads differ: the driver model does the same thing on both GPUs
    assert set(res.regs) <= {"GPU_ID", "CSF_ID", "L2_FEATURES", "CORE_FEATURES", "TILER_FEATURES", "MEM_FEATURES",
                             "MMU_FEATURES", "THREAD_MAX_THREADS", "AS_PRESENT", "SHADER_PRESENT", "TILER_PRESENT",
                             "L2_PRESENT", "TEXTURE_FEATURES[0]"}
    rc, out, _ = trace(capsys, "diff", paths["binary"], other["binary"], "--ignore", "*")
    assert rc == 0 and out == ""


def test_diff_ignores_page_table_addresses_unless_strict(traces, capsys, tmp_path):
    """Two boots of different kernels put their page tables at different physical addresses:
    AS_TRANSTAB values are not a divergence by default, every other value is."""
    (_, paths, header), _, _ = traces
    from dataclasses import replace

    from mali_trace import write
    events = load(paths["binary"]).events
    moved = [replace(e, value=e.value + 0x1000) if e.kind == Kind.REG_WRITE and e.addr == 0x2400 else e
             for e in events]  # AS_TRANSTAB_LO[0]
    assert moved != events
    write(str(tmp_path / "moved.mtrace"), "binary", header, moved)
    assert trace(capsys, "diff", paths["binary"], str(tmp_path / "moved.mtrace")) == (0, "", "")
    rc, out, _ = trace(capsys, "diff", paths["binary"], str(tmp_path / "moved.mtrace"), "--strict")
    assert rc == 1 and "W AS_TRANSTAB[0] = 0x" in out


def test_diff_reports_a_missing_write(traces, capsys, tmp_path):
    (seen, paths, header), _, _ = traces
    from mali_trace import write
    events = load(paths["binary"]).events
    k = next(i for i, e in enumerate(events) if e.kind == Kind.REG_WRITE and e.addr == 0x700)  # MCU_CONTROL
    write(str(tmp_path / "cut.mtrace"), "binary", header, events[:k] + events[k + 1:])
    rc, out, _ = trace(capsys, "diff", paths["binary"], str(tmp_path / "cut.mtrace"))
    assert rc == 1 and "  - W MCU_CONTROL = 0x00000002" in out
    k_acc = sum(e.kind in (Kind.REG_READ, Kind.REG_WRITE) for e in events[:k])
    assert f"@@ -{k_acc + 1},1 +{k_acc + 1},0 @@ delete" in out


def test_perfetto_and_convert_commands(traces, capsys, tmp_path):
    (seen, paths, _), _, _ = traces
    out_json = tmp_path / "timeline.json"
    rc, out, _ = trace(capsys, "perfetto", paths["binary"], "-o", str(out_json))
    assert rc == 0 and str(out_json) in out
    assert validate(json.load(open(out_json))) == []
    for fmt in ("jsonl", "mmiotrace", "binary"):
        dst = tmp_path / f"conv.{fmt}"
        rc, out, _ = trace(capsys, "convert", paths["binary"], "--to", fmt, "-o", str(dst))
        assert rc == 0
        t = load(str(dst))
        if fmt == "mmiotrace":
            assert [(e.kind, e.addr, e.value) for e in t.events if e.kind in (Kind.REG_READ, Kind.REG_WRITE)] == \
                [(e.kind, e.addr, e.value) for e in seen if e.kind in (Kind.REG_READ, Kind.REG_WRITE)]
        else:
            assert t.events == seen
    rc, out, _ = trace(capsys, "convert", str(tmp_path / "conv.jsonl"), "--to", "binary")
    assert rc == 0 and (tmp_path / "conv.mtrace").exists()
    rc, _, err = trace(capsys, "convert", paths["perfetto"], "--to", "jsonl")
    assert rc == 2 and "export" in err
