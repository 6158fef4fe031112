"""The Mali device behind the real server: GPU_ID and a RW register through vfio-user, and the
`mali-vdev serve` process lifecycle (socket appears when ready, SIGTERM removes it)."""

import logging
import os
import signal
import subprocess
import sys

import pytest

from mali_gpu.device import MaliDevice
from mali_regs.mmio import MALI_MMIO

from .conftest import ServerThread, spawn_server

GPU_ID = MALI_MMIO["GPU_ID"].offset
GPU_IRQ_MASK = MALI_MMIO["GPU_IRQ_MASK"].offset


@pytest.fixture
def mali(tmp_path):
    st = ServerThread(MaliDevice("g610"), tmp_path / "mali.sock")
    yield st
    st.stop()


def test_gpu_id_of_the_default_profile(mali):
    c = mali.client()
    assert c.read32(0, GPU_ID) == 0xA8670005
    cfg = c.region_read(7, 0, 4)
    assert cfg == bytes.fromhex("b5130100")  # Arm vendor ID, our device ID
    assert c.region_info(0).size == 2 << 20


def test_rw_register_and_read_only_misuse(mali, caplog):
    c = mali.client()
    c.write32(0, GPU_IRQ_MASK, 0x00070301)
    assert c.read32(0, GPU_IRQ_MASK) == 0x00070301
    with caplog.at_level(logging.WARNING, logger="mali.regs"):
        c.write32(0, GPU_ID, 0)
    assert c.read32(0, GPU_ID) == 0xA8670005
    assert any("read-only GPU_ID" in r.getMessage() for r in caplog.records)


def test_device_reset_restores_power_on_values(mali):
    c = mali.client()
    c.write32(0, GPU_IRQ_MASK, 0xFFFF)
    c.reset()
    assert c.read32(0, GPU_IRQ_MASK) == MALI_MMIO["GPU_IRQ_MASK"].reset


def test_other_profile_gpu_id(tmp_path):
    st = ServerThread(MaliDevice("g710"), tmp_path / "g710.sock")
    try:
        gpu_id = st.client().read32(0, GPU_ID)
        assert gpu_id >> 28 == 10 and gpu_id != 0xA8670005
    finally:
        st.stop()


def test_serve_process_lifecycle(tmp_path):
    sock = tmp_path / "serve.sock"
    proc = spawn_server(sock)
    try:
        from vdev.client import Client
        with Client(str(sock)) as c:
            c.negotiate()
            assert c.read32(0, GPU_ID) == 0xA8670005
        st = subprocess.run([sys.executable, "-m", "mali_vdev", "status", "--control", f"{sock}.ctl"],
                            capture_output=True, text=True, timeout=30)
        assert st.returncode == 0 and "Mali-G610 (GPU_ID 0xa8670005)  MCU DISABLED" in st.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not sock.exists()
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_refuses_a_live_socket(tmp_path, mali):
    r = subprocess.run([sys.executable, "-m", "mali_vdev", "serve", "--socket", mali.path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "another server is listening" in r.stderr
    assert os.path.exists(mali.path)
