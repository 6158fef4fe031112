"""`status`'s timing of the message path (vdev/timing.py), through the real processes: a
`mali-vdev serve`, our vfio-user client with an INTx eventfd installed, the control socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from mali_gpu.control import format_status, request
from tests.driver_model import Group, ServedGpu, probe_and_boot
from vdev import protocol as P


def test_status_counts_messages_handling_time_and_interrupt_delivery(tmp_path):
    sock = tmp_path / "gpu.sock"
    proc = subprocess.Popen([sys.executable, "-m", "mali_vdev", "--log-level", "WARNING", "serve", "--socket", str(sock)])
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(str(sock) + ".ctl"):
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.02)
        gpu = ServedGpu(str(sock))
        efd = os.eventfd(0, os.EFD_NONBLOCK)
        try:
            gpu.client.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, 0, 1, [efd])
            before = request(str(sock) + ".ctl", {"cmd": "status"})["server"]
            d = probe_and_boot(gpu)    # the reset and the firmware boot raise interrupts
            g = Group(gpu, d, slot=0)
            g.submit(g.store_job(0x7E57))
            while g.sync() != 1:
                time.sleep(0.001)
            st = request(str(sock) + ".ctl", {"cmd": "status"})
        finally:
            gpu.close()
            os.close(efd)
    finally:
        proc.terminate()
        proc.wait(10)
    s = st["server"]
    assert s["messages"] - before["messages"] > 20        # the probe, the boot, the job: register accesses
    assert 0 < s["busy_us"] < s["messages"] * 10_000      # time was counted, and per message, not per wait
    assert s["irq_signals"] > before["irq_signals"]
    assert s["irq_delivery_us"]["samples"] >= 1 and s["irq_delivery_us"]["p50"] > 0
    assert st["engine"]["busy_us"] > 0 and st["engine"]["instructions"] > 0
    text = format_status(st)
    assert f"server: {s['messages']} messages" in text and "interrupt signals" in text
