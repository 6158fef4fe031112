"""Shared fixtures: for the vfio-user library tests a tiny register-file device served in a
thread; for the GPU tests the driver model's `Gpu` (no QEMU), fresh or with the MCU booted."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tests.driver_model import Driver, Gpu
from vdev.client import Client
from vdev.device import Device
from vdev.dma import DmaError
from vdev.pci import Bar, PciIdentity
from vdev.server import Server

ID = 0x0000
SCRATCH = 0x0004
IRQ_LEVEL = 0x0008
DMA_ADDR = 0x0010
DMA_DATA = 0x0018
DMA_CMD = 0x001C     # 1: load u32 at DMA_ADDR into DMA_DATA; 2: store DMA_DATA to DMA_ADDR
DMA_STATUS = 0x0020  # 0 ok, 1 fault
ID_VALUE = 0x1234ABCD


class RegFileDevice(Device):
    """A device model small enough to check every path of the server against."""

    identity = PciIdentity(vendor_id=0x1B36, device_id=0x00FF, class_code=0xFF0000, revision=3)
    bars = [Bar(0, 0x1000), Bar(2, 0x100000, is_64bit=True, prefetchable=True)]

    def __init__(self):
        super().__init__()
        self.regs = {}
        self.resets = 0

    def bar_read(self, bar, offset, width):
        if bar == 0 and offset == ID:
            return ID_VALUE & ((1 << (8 * width)) - 1)
        return self.regs.get((bar, offset), 0) & ((1 << (8 * width)) - 1)

    def bar_write(self, bar, offset, width, value):
        if bar == 0 and offset == ID:
            return
        self.regs[(bar, offset)] = value
        if bar == 0 and offset == IRQ_LEVEL:
            self.host.set_intx(bool(value))
        elif bar == 0 and offset == DMA_CMD:
            addr = self.regs.get((0, DMA_ADDR), 0)
            try:
                if value == 1:
                    self.regs[(0, DMA_DATA)] = self.host.dma.read_u32(addr)
                elif value == 2:
                    self.host.dma.write_u32(addr, self.regs.get((0, DMA_DATA), 0))
                self.regs[(0, DMA_STATUS)] = 0
            except DmaError:
                self.regs[(0, DMA_STATUS)] = 1

    def reset(self):
        self.regs.clear()
        self.resets += 1
        self.host.set_intx(False)


class ServerThread:
    def __init__(self, device, path):
        self.device = device
        self.server = Server(device, str(path))
        self.server.listen()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.path = str(path)

    def client(self, negotiate=True) -> Client:
        c = Client(self.path, timeout=5)
        if negotiate:
            c.negotiate()
        return c

    def stop(self):
        self.server.stop()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def served(tmp_path):
    st = ServerThread(RegFileDevice(), tmp_path / "dev.sock")
    yield st
    st.stop()
    assert not st.thread.is_alive()


def spawn_server(sock, *extra, cwd=None) -> subprocess.Popen:
    """`python -m mali_vdev serve --socket SOCK ...` in its own process, once its socket exists
    (the server renames it into place only when it accepts connections)."""
    proc = subprocess.Popen([sys.executable, "-m", "mali_vdev", "serve", "--socket", str(sock), *extra],
                            cwd=cwd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not sock.exists():
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no socket {sock} after 20 s")
        time.sleep(0.02)
    return proc


@pytest.fixture
def gpu():
    g = Gpu()
    yield g
    g.close()


@pytest.fixture
def booted(gpu):
    """The firmware booted as panthor does it: shared section through AS0, MCU_CONTROL = AUTO,
    the global JOB IRQ acknowledged."""
    d = Driver(gpu)
    gpu.write("MCU_CONTROL", 2)
    d.ack_job_irq()
    return gpu, d
