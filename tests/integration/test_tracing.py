"""Traced boots of the guest's stock panthor running jobs (issue 5, items 1-3 acceptance).

Three short boots (about 4 s each), the same guest command (`panthor-client job-store`,
then `jobs 50`):

- g610, `boot(trace=..., trace_format="binary")` (what `mali-vdev boot --trace` does); the
  file is converted to JSON Lines, mmiotrace and Perfetto with `mali-vdev trace convert`;
- g710, recorded as JSON Lines directly, for `trace diff` against another GPU profile;
- g610, recorded as Perfetto JSON directly.

Checks: every event kind a job boot produces is in the trace, sequence numbers and times
are in order; the JSON Lines and mmiotrace files parse back (mali_trace's readers) into the
binary trace's events (mmiotrace: microsecond timestamps, CS instructions left out by
design); both Perfetto files validate (mali_trace.perfetto.validate: phases, pids/tids,
timestamps monotonic per track, balanced slices) and hold the CSG slot, job and IRQ tracks;
`trace stats` counts the 51 jobs and the interrupts; `trace diff` of the trace against itself
(and against its own mmiotrace) is empty with exit 0, and against the g710 boot exits 1 with
the GPU_ID read as the first divergence.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mali_base.events import Kind
from mali_regs.profiles import get_profile
from mali_trace import load
from mali_trace.perfetto import validate
from qemu import boot
from tests.integration.test_jobs import values

pytestmark = pytest.mark.guest

ROOT = Path(__file__).resolve().parents[2]
JOBS = 50
CMD = f"""
panthor-client job-store | sed 's/^/store./'
panthor-client jobs {JOBS} | sed 's/^/jobs./'
"""
REG = (Kind.REG_READ, Kind.REG_WRITE)


def mali_vdev(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mali_vdev", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def traced_boot(prepared, path: Path, fmt: str, gpu: str) -> boot.BootResult:
    r = boot.boot(CMD, 90, gpu=gpu, load_panthor=True, prepared=prepared, trace=path,
                  trace_format=fmt)
    print(f"{gpu} {fmt}: timings {r.timings}, trace {path.stat().st_size} bytes")
    assert r.status == 0, r.output[-3000:]
    v = values(r.output)
    assert v["store.result"] == "ok" and v["store.store.value"] == "0xdeadbeef", r.output
    assert v["jobs.result"] == "ok" and v["jobs.signalled"] == str(JOBS), r.output
    assert r.trace == path and "Traceback" not in r.server_log
    assert f"tracing every event to {path} ({fmt})" in r.server_log
    return r


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("traces")
    prepared = boot.setup()
    out = {"dir": d, "binary": d / "g610.mtrace", "g710": d / "g710.jsonl",
           "perfetto_direct": d / "g610-direct.perfetto.json"}
    traced_boot(prepared, out["binary"], "binary", "g610")
    traced_boot(prepared, out["g710"], "jsonl", "g710")
    traced_boot(prepared, out["perfetto_direct"], "perfetto", "g610")
    for fmt, ext in (("jsonl", "jsonl"), ("mmiotrace", "mmiotrace"), ("perfetto", "perfetto.json")):
        out[fmt] = d / f"g610.{ext}"
        p = mali_vdev("trace", "convert", str(out["binary"]), "--to", fmt, "-o", str(out[fmt]))
        assert p.returncode == 0, p.stderr
        assert re.search(rf"\d+ events \(binary -> {fmt}\)", p.stdout), p.stdout
    return out


@pytest.fixture(scope="module")
def binary(traces):
    t = load(str(traces["binary"]))
    assert t.format == "binary" and not t.warnings, t.warnings
    return t


def test_traced_boot_records_every_kind_in_order(binary):
    t = binary
    assert t.header.profile == "g610" and t.header.gpu_id == get_profile("g610").gpu_id
    kinds = {e.kind for e in t.events}
    for k in (Kind.REG_READ, Kind.REG_WRITE, Kind.IRQ_LINE, Kind.IRQ_RAWSTAT, Kind.DOORBELL,
              Kind.IFACE, Kind.MMU_COMMAND, Kind.GPU_COMMAND, Kind.CSG_STATE, Kind.CS_STATE,
              Kind.CS_INSTR, Kind.DMA_MAP, Kind.RESET, Kind.MCU_STATUS):
        assert k in kinds, k
    assert [e.seq for e in t.events] == list(range(1, len(t.events) + 1))
    assert all(a.t_ns <= b.t_ns for a, b in zip(t.events, t.events[1:]))
    first_reg = next(e for e in t.events if e.kind in REG)
    assert (first_reg.kind, first_reg.addr, first_reg.value) == (Kind.REG_READ, 0, t.header.gpu_id)


def test_all_four_formats_exist(traces):
    for key in ("binary", "jsonl", "mmiotrace", "perfetto", "perfetto_direct", "g710"):
        assert traces[key].stat().st_size > 0, key
    assert traces["binary"].read_bytes().startswith(b"MALITRC\0")
    assert json.loads(traces["jsonl"].open().readline())["type"] == "header"
    assert traces["mmiotrace"].open().readline().startswith("VERSION 20070824")


def _fields(e):
    return (e.seq, e.t_ns, e.kind, e.width, e.addr, e.value, e.slot, e.stream, e.aux)


def test_jsonl_parses_back_into_the_same_events(traces, binary):
    j = load(str(traces["jsonl"]))
    assert j.format == "jsonl" and not j.warnings, j.warnings
    assert j.header.to_dict() == binary.header.to_dict()
    assert [_fields(e) for e in j.events] == [_fields(e) for e in binary.events]


def test_mmiotrace_parses_back_into_the_same_events(traces, binary):
    m = load(str(traces["mmiotrace"]))
    assert m.format == "mmiotrace" and not m.warnings, m.warnings
    assert m.header.gpu_id == binary.header.gpu_id

    def comparable(events):  # mmiotrace: µs timestamps, no seq, CS instructions left out
        return [(e.t_ns // 1000, e.kind, e.width, e.addr, e.value, e.slot, e.stream, e.aux)
                for e in events if e.kind != Kind.CS_INSTR]

    want = comparable(binary.events)
    got = comparable(m.events)
    assert len(got) == len(want)
    assert got == want
    regs = [e for e in m.events if e.kind in REG]
    # a probe plus 51 jobs (doorbells, IRQ status reads and clears) is some hundreds of
    # accesses; how many exactly depends on how firmware-like interrupts coalesce
    assert len(regs) == sum(e.kind in REG for e in binary.events) > 300
    # and the file is what the kernel's mmiotrace prints
    text = traces["mmiotrace"].read_text()
    assert re.search(r"^MAP 0\.000000 1 0x10000000 0x[0-9a-f]+ 0x[0-9a-f]+ 0x0 0$", text, re.M)
    assert re.search(r"^R 4 \d+\.\d{6} 1 0x10000000 0xa8670005 0x0 0$", text, re.M)
    assert re.search(r"^W 4 \d+\.\d{6} 1 0x1[0-9a-f]{7} 0x[0-9a-f]+ 0x0 0$", text, re.M)
    assert text.splitlines()[-1].startswith("UNMAP ")


@pytest.mark.parametrize("key", ["perfetto", "perfetto_direct"])
def test_perfetto_timeline_validates(traces, key):
    doc = json.loads(traces[key].read_text())
    assert validate(doc) == [], validate(doc)[:10]
    events = doc["traceEvents"]
    names = {(e.get("pid"), e.get("args", {}).get("name")) for e in events if e.get("ph") == "M"}
    assert any(pid == 2 and n and "CSG" in n for pid, n in names), names   # CSG slot tracks
    assert any(pid == 3 and n and "CS" in n for pid, n in names), names    # queue tracks
    jobs = [e for e in events if e.get("pid") == 3 and e.get("ph") == "B"]
    assert len(jobs) == JOBS + 1, len(jobs)
    assert any(e.get("pid") == 1 and "IRQ" in str(e.get("name")) for e in events)


def test_stats_reports_jobs_and_irqs(traces):
    p = mali_vdev("trace", "stats", str(traces["binary"]), "--json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["jobs"]["total"] == JOBS + 1
    assert s["irq"]["line_raised"] > JOBS
    job_bits = s["irq"]["raised_bits"]["JOB"]
    # CSG events coalesce as on firmware (a new one only once the host acknowledged the last),
    # so pipelined jobs raise fewer CSG interrupts than there are jobs, but never none
    assert job_bits.get("GLOBAL_IF", 0) >= 1 and job_bits.get("CSG0", 0) >= 1, job_bits
    assert s["doorbells"] and s["faults"] == {"mmu": [], "cs_fatal": [], "gpu": 0}
    assert s["registers"]["GPU_ID"]["reads"] >= 1
    text = mali_vdev("trace", "stats", str(traces["binary"]))
    assert text.returncode == 0
    assert re.search(rf"^jobs: {JOBS + 1}$", text.stdout, re.M), text.stdout
    assert re.search(r"^IRQ line raised: \d+$", text.stdout, re.M)
    assert re.search(r"JOB_IRQ bits raised: .*CSG0 \d+", text.stdout)


def test_diff_against_itself_is_empty(traces):
    for other in ("binary", "jsonl", "mmiotrace"):
        p = mali_vdev("trace", "diff", str(traces["binary"]), str(traces[other]))
        assert (p.returncode, p.stdout) == (0, ""), (other, p.stdout[:2000], p.stderr)


def test_diff_against_another_gpu_shows_gpu_id_first(traces):
    p = mali_vdev("trace", "diff", str(traces["binary"]), str(traces["g710"]))
    assert p.returncode == 1, (p.stdout[:2000], p.stderr)
    out = p.stdout
    assert "profile g610, GPU_ID 0xa8670005" in out and "profile g710, GPU_ID 0xa8020000" in out
    first = out.split("first divergence at register access #1", 1)
    assert len(first) == 2, out[:2000]
    diverging = [l for l in first[1].splitlines() if re.match(r"\s+[-+] ", l)]
    assert diverging[0].split() == ["-", "R", "GPU_ID", "=", "0xa8670005"], diverging[:3]
    assert ["+", "R", "GPU_ID", "=", "0xa8020000"] in [l.split() for l in diverging[:6]]
    assert re.search(r"^@@ -1,1 \+1,1 @@ replace$", out, re.M), out[:2000]
