"""Register reads while every stream of a group runs an endless loop: the real server path
(the scenario of `make bench` and of the starvation test).

`mali-vdev serve` runs in its own process with its engine thread, as under QEMU. The driver
model drives it through the vfio-user socket with the project's client
(tests.driver_model.ServedGpu): probe and boot, one group of 8 streams, each an endless
loop. Then REGION_READs of GPU_ID, spaced out as a driver's are, each timed from send to
reply: what a register access waits for device.lock (and the GIL) behind a busy engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from scheduler.isa import Op, encode

from .driver_model import Group, ServedGpu, mov32, probe_and_boot

STREAMS = 8
READS = 2000
GAP_S = 0.0005


def endless_loop() -> list[int]:
    return [mov32(1, 0), encode(Op.ADD_IMM32, dst=1, src=1, imm=1), encode(Op.BRANCH, cond=6, value=1, offset=-2)]


def _spawn(path: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "mali_vdev", "--log-level", "WARNING", "serve", "--socket", path])
    deadline = time.monotonic() + 20
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not come up on {path}")
        time.sleep(0.01)
    return proc


def _latencies(gpu: ServedGpu, reads: int, gap_s: float) -> list[float]:
    read = gpu.client.read32
    out = []
    for _ in range(reads):
        t0 = time.perf_counter()
        read(0, 0)
        out.append(time.perf_counter() - t0)
        time.sleep(gap_s)
    return out


def measure(reads: int = READS, streams: int = STREAMS, gap_s: float = GAP_S) -> tuple[list[float], list[float]]:
    """(idle latencies, latencies with `streams` endless loops running), in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mali.sock")
        proc = _spawn(path)
        gpu = None
        try:
            gpu = ServedGpu(path)
            d = probe_and_boot(gpu)
            idle = _latencies(gpu, reads // 4, gap_s)
            g = Group(gpu, d, nstreams=streams)
            for j in range(streams):
                g.submit(endless_loop(), stream=j, ring_doorbell=False)
            d.doorbell(g.slot + 1)
            deadline = time.monotonic() + 10
            while not all(g.extract(j) for j in range(streams)):  # every loop has run a slice
                if time.monotonic() > deadline:
                    raise RuntimeError("the loops did not start")
                time.sleep(0.01)
            busy = _latencies(gpu, reads, gap_s)
            if proc.poll() is not None:
                raise RuntimeError("the server died")
            return idle, busy
        finally:
            proc.terminate()  # first: the loops would fault on guest RAM going away
            proc.wait()
            if gpu is not None:
                gpu.close()


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]
