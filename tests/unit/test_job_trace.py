"""Shader-core jobs in the trace: a RUN_COMPUTE and a RUN_FRAGMENT recorded with what they
read, then decoded from the trace file alone (`mali-vdev trace show --jobs`), after guest
memory has changed, in each readable format.

The oracle is what the test put in memory: the assembled shader's own source lines, the
workgroup sizes and counts it programmed, the framebuffer size and clear words it encoded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mali_base.events import Kind
from mali_trace import TraceWriter, load
from mali_trace.analysis import show
from mali_trace.decode import Decoder
from tests.compute_model import SHADER_VA, run_compute_cs, setup_compute
from tests.driver_model import BUF_VA, Driver, Gpu, Group
from tests.unit import test_fragment as F

ROOT = Path(__file__).resolve().parents[2]
FILL = """
    SHADDX.u64 r0, u0, r60.w0, shift:0x2
    MOV.i32 r2, u2
    STORE.i32.slot0 @r2, r0, offset:0
    NOP.end
"""
EXTS = {"binary": "mtrace", "jsonl": "jsonl", "mmiotrace": "mmiotrace"}


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobs")
    gpu = Gpu()
    paths = {fmt: tmp / f"jobs.{ext}" for fmt, ext in EXTS.items()}
    writers = [TraceWriter.for_device(gpu.dev, str(p), fmt, source="test") for fmt, p in paths.items()]
    try:
        d = Driver(gpu)
        gpu.write("MCU_CONTROL", 2)
        d.ack_job_irq()
        g = Group(gpu, d)
        nfau, wg = setup_compute(g, FILL, [BUF_VA, 0, 0x5EED, 4096], wg=(32, 2, 1))
        g.submit(run_compute_cs(nfau, wg, (3, 1, 1)))
        g.run(rounds=200)
        compute_fatal = g.out()["CS_FATAL"]
        fb_pa = gpu.ram.alloc(F.FB_SIZE)
        g.pt.map(F.FB_VA, fb_pa, F.FB_SIZE)
        desc, tag = F.fbd(40, 24, [F.color_rt(F.FB_VA, 192, [0xFF0000FF] * 4)])
        F.run_pass(gpu, g, desc, tag, 40, 24)
        fragment_fatal = g.out()["CS_FATAL"]
        # guest memory changes afterwards: the trace must not need it
        gpu.ram.write(g.pa[BUF_VA], bytes(0x2000))
        gpu.ram.write(g.pa[BUF_VA] + 0x8000, bytes(0x200))
    finally:
        for w in writers:
            w.close()
        gpu.close()
    assert compute_fatal == 0 and fragment_fatal == 0
    return paths


def job_lines(path) -> list[str]:
    t = load(str(path))
    assert not t.warnings, t.warnings
    dec = Decoder(t.header)
    out = []
    for ev in t.events:
        d = dec.decode(ev)
        if ev.kind == Kind.JOB:
            out.append([d["text"], *d["lines"]])
    return out


@pytest.mark.parametrize("fmt", list(EXTS))
def test_each_job_decodes_from_the_trace_alone(traced, fmt):
    jobs = job_lines(traced[fmt])
    assert len(jobs) == 2, jobs
    compute, fragment = jobs
    assert "RUN_COMPUTE" in compute[0]
    assert "workgroup 32x2x1, 3x1x1 workgroups (192 threads)" in compute[0]
    text = "\n".join(compute)
    assert f"0x{SHADER_VA:x}" in text
    # the shader's instructions, disassembled from the recorded words, are the source's
    shown = [ln.split(": ", 1)[1] for ln in compute if ln.strip().startswith(f"0x{SHADER_VA >> 12:x}")]
    want = [" ".join(s.split()) for s in FILL.strip().splitlines()]
    assert [" ".join(s.split()) for s in shown] == want, shown
    assert "RUN_FRAGMENT" in fragment[0] and "bbox (0,0)-(39,23)" in fragment[0]
    text = "\n".join(fragment)
    assert "Width=40, Height=24" in text and "Row Stride=192" in text and "Clear Color 0=0xff0000ff" in text


def test_show_prints_jobs_decoded_and_hides_their_raw_data(traced):
    t = load(str(traced["binary"]))
    lines = list(show(t.events, t.header))
    assert not any("JOB_DATA" in ln for ln in lines)
    assert sum(ln.split()[2:3] == ["JOB"] for ln in lines) == 2
    p = subprocess.run([sys.executable, "-m", "mali_vdev", "trace", "show", str(traced["binary"]), "--jobs", "-q"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "RUN_COMPUTE" in p.stdout and "RUN_FRAGMENT" in p.stdout and "SHADDX.u64" in p.stdout
    assert "INSTR" not in p.stdout and "DOORBELL" not in p.stdout
    raw = subprocess.run([sys.executable, "-m", "mali_vdev", "trace", "show", str(traced["binary"]),
                          "--kind", "JOB_DATA", "-q", "-n", "3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert raw.returncode == 0 and raw.stdout.count("job reads") == 3, raw.stdout + raw.stderr
