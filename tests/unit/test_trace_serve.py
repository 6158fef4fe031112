"""`mali-vdev serve --trace FILE`: the trace is complete when the server gets SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from mali_base.events import Kind
from mali_regs.mmio import MALI_MMIO
from mali_trace import load
from mali_trace.perfetto import validate
from vdev.client import Client

from .conftest import spawn_server

ROOT = Path(__file__).resolve().parents[2]
GPU_ID = MALI_MMIO["GPU_ID"].offset
GPU_IRQ_MASK = MALI_MMIO["GPU_IRQ_MASK"].offset
WRITES = 300


def serve_and_kill(tmp_path, fmt: str, close_client_first: bool):
    sock = tmp_path / f"{fmt}.sock"
    out = tmp_path / f"serve.{fmt}"
    proc = spawn_server(sock, "--trace", str(out), "--trace-format", fmt, cwd=ROOT)
    try:
        c = Client(str(sock))
        c.negotiate()
        assert c.read32(0, GPU_ID) == 0xA8670005
        for i in range(WRITES):
            c.write32(0, GPU_IRQ_MASK, i)
        assert c.read32(0, GPU_IRQ_MASK) == WRITES - 1
        if close_client_first:
            c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        err = proc.stderr.read()
        assert "Traceback" not in err and f"tracing every event to {out}" in err
        if not close_client_first:
            c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out


@pytest.mark.parametrize("close_client_first", [True, False], ids=["client-gone", "client-connected"])
def test_binary_trace_is_complete_after_sigterm(tmp_path, close_client_first):
    out = serve_and_kill(tmp_path, "binary", close_client_first)
    t = load(str(out))
    assert not t.warnings                                   # no partial record
    assert t.header.profile == "g610" and t.header.source == "mali-vdev serve"
    regs = [(e.kind, e.addr, e.value) for e in t.events if e.kind in (Kind.REG_READ, Kind.REG_WRITE)]
    assert regs == ([(Kind.REG_READ, GPU_ID, 0xA8670005)] + [(Kind.REG_WRITE, GPU_IRQ_MASK, i) for i in range(WRITES)]
                    + [(Kind.REG_READ, GPU_IRQ_MASK, WRITES - 1)])
    assert [e.seq for e in t.events] == list(range(1, len(t.events) + 1))


@pytest.mark.parametrize("fmt", ["jsonl", "mmiotrace", "perfetto"])
def test_text_traces_are_closed_properly_after_sigterm(tmp_path, fmt):
    out = serve_and_kill(tmp_path, fmt, close_client_first=False)
    text = out.read_text()
    if fmt == "perfetto":
        assert validate(json.loads(text)) == []
        return
    if fmt == "mmiotrace":
        assert text.splitlines()[-1].startswith("UNMAP ")
    t = load(str(out))
    assert not t.warnings
    writes = [e.value for e in t.events if e.kind == Kind.REG_WRITE and e.addr == GPU_IRQ_MASK]
    assert writes == list(range(WRITES))
