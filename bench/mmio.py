"""MMIO round trips through the real vfio-user socket, against a bare unix-socket ping-pong.

The server runs in its own process (`python -m mali_vdev serve`), exactly as QEMU talks to it;
the client sends REGION_READ of GPU_ID and waits for each reply. The floor is a ping-pong
of messages of the same sizes between two processes over a unix stream socket, measured in
the same run, so the ratio shows what the server costs over the transport itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

from vdev.client import Client

N = 20000
REQUEST_SIZE = 32   # header + REGION_READ payload
REPLY_SIZE = 36     # header + payload + 4 data bytes


def _echo_server(path: str) -> None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    conn, _ = s.accept()
    reply = bytes(REPLY_SIZE)
    buf = bytearray(REQUEST_SIZE)
    view = memoryview(buf)
    while True:
        got = 0
        while got < REQUEST_SIZE:
            n = conn.recv_into(view[got:])
            if n == 0:
                return
            got += n
        conn.sendall(reply)


def _wait_for(path: str, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not come up on {path}")
        time.sleep(0.01)


def ping_pong_rate(tmp: str) -> float:
    path = os.path.join(tmp, "echo.sock")
    proc = subprocess.Popen([sys.executable, "-c", f"from bench.mmio import _echo_server; _echo_server({path!r})"])
    try:
        _wait_for(path, proc)
        time.sleep(0.05)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)
        req = bytes(REQUEST_SIZE)
        buf = bytearray(REPLY_SIZE)
        t0 = time.perf_counter()
        for _ in range(N):
            c.sendall(req)
            got = 0
            while got < REPLY_SIZE:
                got += c.recv_into(memoryview(buf)[got:])
        dt = time.perf_counter() - t0
        c.close()
        return N / dt
    finally:
        proc.terminate()
        proc.wait()


def mmio_rate(tmp: str) -> tuple[float, float]:
    path = os.path.join(tmp, "mali.sock")
    proc = subprocess.Popen([sys.executable, "-m", "mali_vdev", "--log-level", "WARNING", "serve", "--socket", path])
    try:
        _wait_for(path, proc)
        with Client(path) as c:
            c.negotiate()
            assert c.read32(0, 0) != 0
            t0 = time.perf_counter()
            for _ in range(N):
                c.read32(0, 0)
            reads = N / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for i in range(N):
                c.write32(0, 0x28, i & 0xFF, posted=True)
            c.read32(0, 0x28)  # ordered after every posted write
            posted = N / (time.perf_counter() - t0)
        return reads, posted
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        floor = ping_pong_rate(tmp)
        reads, posted = mmio_rate(tmp)
    print(f"mmio: {N} round trips each, server in its own process, over a unix socket")
    print(f"  bare unix-socket ping-pong      {floor:10.0f} round trips/s  ({1e6 / floor:6.1f} us)")
    print(f"  REGION_READ GPU_ID (vfio-user)  {reads:10.0f} round trips/s  ({1e6 / reads:6.1f} us)")
    print(f"  ratio vfio-user / ping-pong     {reads / floor:10.2f}")
    print(f"  posted REGION_WRITE GPU_IRQ_MASK {posted:9.0f} writes/s       ({1e6 / posted:6.1f} us)")
