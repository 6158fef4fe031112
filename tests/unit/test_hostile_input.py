"""Hostile clients and bad input (issue 11): each reproducer of the fuzzer's findings, which
crashed, hung or flooded the server, now gets an error reply and the server keeps serving."""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import struct
import threading
import time

import pytest

from mali_gpu import control as control_mod
from mali_gpu.control import ControlServer, request
from mali_gpu.device import MaliDevice
from mali_regs.mmio import MALI_MMIO
from tests.driver_model import SUSPEND_VA, Gpu, Group
from vdev import protocol as P
from vdev import server as server_mod
from vdev.client import VfioUserError
from vdev.dma import sealed_memfd
from vdev.ratelimit import RateLimitedLog

from .conftest import ID, ID_VALUE, IRQ_LEVEL, RegFileDevice, ServerThread

MCU_STATUS = MALI_MMIO["MCU_STATUS"].offset


@pytest.fixture
def mali(tmp_path):
    st = ServerThread(MaliDevice("g610"), tmp_path / "mali.sock")
    yield st
    st.stop()


# -- item 1: DMA maps that can shrink (SIGBUS) ---------------------------------------------

def test_unsealed_memfd_is_refused_at_map_time_and_the_mcu_boot_survives(mali, caplog):
    """The reproducer: map a 1 MiB memfd, shrink it, make the MCU boot write into it."""
    c = mali.client()
    fd = os.memfd_create("hostile")
    os.ftruncate(fd, 1 << 20)
    with caplog.at_level(logging.ERROR, logger="vdev.dma"), pytest.raises(VfioUserError) as e:
        c.dma_map(0x4000000, 1 << 20, fd=fd)
    assert e.value.errno in (errno.EPERM, errno.EINVAL)
    assert any("not sealed against shrinking (F_SEAL_SHRINK)" in r.getMessage() for r in caplog.records)
    os.ftruncate(fd, 0)
    os.close(fd)
    c.write32(0, MALI_MMIO["AS_TRANSCFG[0]"].offset, 2)  # identity translation
    c.write32(0, MALI_MMIO["AS_COMMAND[0]"].offset, 1)   # UPDATE
    c.write32(0, MALI_MMIO["MCU_CONTROL"].offset, 2)     # boot: the shared section is nowhere
    assert c.read32(0, MALI_MMIO["GPU_ID"].offset) == 0xA8670005  # still serving
    assert len(mali.server.dma) == 0


def test_regular_file_is_refused(served, tmp_path):
    path = tmp_path / "ram"
    path.write_bytes(bytes(0x2000))
    fd = os.open(path, os.O_RDWR)
    c = served.client()
    with pytest.raises(VfioUserError) as e:
        c.dma_map(0x1000, 0x2000, fd=fd)
    os.close(fd)
    assert e.value.errno in (errno.EPERM, errno.EINVAL)
    assert c.read32(0, ID) == ID_VALUE


def test_memfd_sealed_against_shrinking_is_accepted(served):
    fd = sealed_memfd("ram", 0x4000)
    c = served.client()
    c.dma_map(0x1000, 0x4000, fd=fd)
    with pytest.raises(OSError):
        os.ftruncate(fd, 0)  # the seal: what makes the map safe
    os.close(fd)
    assert len(served.server.dma) == 1


# -- item 5: sizes and offsets that overflow ---------------------------------------------

@pytest.mark.parametrize("offset,size,addr", [
    (0, 1 << 63, 0x1000),
    (1 << 63, 0x1000, 0x1000),
    ((1 << 64) - 0x1000, 0x2000, 0x1000),
    (0, 0x2000, (1 << 64) - 0x1000),
])
def test_dma_map_sizes_that_overflow_are_einval(served, offset, size, addr):
    fd = sealed_memfd("ram", 0x4000)
    c = served.client()
    with pytest.raises(VfioUserError) as e:
        c.dma_map(addr, size, fd=fd, offset=offset)
    os.close(fd)
    assert e.value.errno == errno.EINVAL
    assert c.read32(0, ID) == ID_VALUE


def test_dma_unmap_log_says_whether_the_map_had_an_fd(served, caplog):
    fd = sealed_memfd("ram", 0x4000)
    c = served.client()
    c.dma_map(0x10000, 0x4000, fd=fd)
    os.close(fd)
    c.dma_map(0x0, 0x1000)
    with caplog.at_level(logging.INFO, logger="vdev.server"):
        c.dma_unmap(0x10000, 0x4000)
        c.dma_unmap(0x0, 0x1000)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("DMA_UNMAP")]
    assert "no fd" not in lines[0] and "no fd" in lines[1]


# -- item 9: a suspend buffer outside guest RAM ------------------------------------------

def test_suspend_buffer_outside_guest_ram_is_a_bus_fault_not_an_mcu_fatal(booted):
    gpu, d = booted
    g = Group(gpu, d)
    g.submit([])
    g.run()
    d.pt.map(SUSPEND_VA, 0x9_0000_0000, 0x4000)  # a PA no DMA map covers
    gpu.write("AS_COMMAND[0]", 2)
    g.request(state=2)                           # SUSPEND: the save goes nowhere
    assert gpu.dev.mcu.status == 1               # MCU_STATUS ENABLED: the firmware carries on
    assert gpu.read("GPU_FAULTSTATUS") == 0x80 and gpu.read("GPU_FAULTADDRESS") == 0x9_0000_0000
    g.request(state=3)                           # RESUME: the restore reads nowhere
    assert gpu.dev.mcu.status == 1


def test_fdless_map_of_any_size_is_still_accepted(served):
    """DMA_MAP without an fd is still accepted (QEMU's ROMs), whatever its size."""
    c = served.client()
    c.dma_map(0x0, 1 << 40, flags=P.DMA_FLAG_READ)
    assert len(served.server.dma) == 1


# -- item 3: interrupt fds never block ---------------------------------------------------

INTX_TRIGGER = P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER


def test_a_pipe_as_the_intx_eventfd_is_refused(served):
    """The reproducer: a blocking pipe as the "eventfd" blocked the server after 64 KiB."""
    c = served.client()
    r, w = os.pipe()
    with pytest.raises(VfioUserError) as e:
        c.set_irqs(P.IrqIndex.INTX, INTX_TRIGGER, 0, 1, [w])
    assert e.value.errno == errno.EINVAL
    for _ in range(3):  # what filled the pipe: triggers; nothing is installed to write to
        c.write32(0, IRQ_LEVEL, 1)
        c.write32(0, IRQ_LEVEL, 0)
        c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_UNMASK, 0, 1)
    assert c.read32(0, ID) == ID_VALUE
    os.close(r)
    os.close(w)


def test_a_full_eventfd_is_a_log_line_not_a_hang(served, caplog):
    c = served.client()
    efd = os.eventfd(0)  # blocking, as a hostile client would pass it
    os.eventfd_write(efd, (1 << 64) - 2)  # the counter's maximum: one more write would block
    c.set_irqs(P.IrqIndex.INTX, INTX_TRIGGER, 0, 1, [efd])
    with caplog.at_level(logging.WARNING, logger="vdev.irq"):
        for _ in range(50):
            c.write32(0, IRQ_LEVEL, 1)
            c.write32(0, IRQ_LEVEL, 0)
            served.server.interrupts.set_irqs(P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_UNMASK,
                                              P.IrqIndex.INTX, 0, 1, [], b"")
            served.server.interrupts.recheck()
    assert c.read32(0, ID) == ID_VALUE
    full = [r for r in caplog.records if "is full" in r.getMessage()]
    assert 1 <= len(full) <= 10  # rate-limited
    os.close(efd)


# -- item 4: floods ----------------------------------------------------------------------

def test_a_huge_bar_read_is_einval_and_costs_no_log_flood(mali, caplog):
    """The reproducer: one REGION_READ of BAR0 with count 1 MiB cost 131,072 log lines."""
    c = mali.client()
    with caplog.at_level(logging.WARNING), pytest.raises(VfioUserError) as e:
        c.region_read(0, 0, 1 << 20)
    assert e.value.errno == errno.EINVAL
    assert len(caplog.records) <= 1
    with pytest.raises(VfioUserError):
        c.region_write(0, 0, bytes(16))
    assert c.read32(0, MALI_MMIO["GPU_ID"].offset) == 0xA8670005


def test_misuse_floods_are_rate_limited_and_counted(mali, caplog):
    c = mali.client()
    regs = mali.device.regs
    before = regs.misuse
    with caplog.at_level(logging.WARNING, logger="mali.regs"):
        for _ in range(300):
            c.read32(0, 0x1FFFC)  # unmapped
    assert regs.misuse - before == 300          # every one counted ...
    assert len(caplog.records) <= 25            # ... a bounded number logged


def test_rate_limited_log_summarises_what_it_suppressed(caplog):
    now = [0.0]
    limited = RateLimitedLog(logging.getLogger("test.flood"), burst=1, interval=1.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.flood"):
        for i in range(131_072):
            limited.warning("read of unmapped offset 0x%05x", i)
        now[0] = 2.0
        limited.warning("later")
        limited.warning("suppressed again")
        limited.flush()
    assert [r.getMessage() for r in caplog.records] == [
        "read of unmapped offset 0x00000", "... and 131,071 more", "later", "... and 1 more"]


def _wait_for_line(path, text, timeout=5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines()
        if any(text in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_rate_limited_log_summarises_when_the_flood_stops(tmp_path):
    """No later line and no flush(): the summary still reaches the log file, once the window ends."""
    path = tmp_path / "flood.log"
    logger = logging.getLogger("test.flood.stops")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        limited = RateLimitedLog(logger, burst=2, interval=0.2)
        for i in range(1000):
            limited.warning("read of unmapped offset 0x%05x", i)
        lines = _wait_for_line(path, "more")
        time.sleep(0.3)   # and nothing after it: one summary, not one per window
        lines = path.read_text().splitlines()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert lines == ["WARNING read of unmapped offset 0x00000", "WARNING read of unmapped offset 0x00001",
                     "WARNING ... and 998 more"]
    assert limited.suppressed_total == 998


def test_register_misuse_flood_is_summarised_after_it_stops(mali, tmp_path):
    """Through the real path: unmapped BAR reads over vfio-user, then silence; the log file ends
    with the count of the lines the rate limit dropped, and logged + summarised = every misuse."""
    path = tmp_path / "mali.log"
    logger = logging.getLogger("mali.regs")
    handler = logging.FileHandler(path)
    old_level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        c = mali.client()
        regs = mali.device.regs
        before = regs.misuse
        for _ in range(300):
            c.read32(0, 0x1FFFC)  # unmapped
        deadline = time.monotonic() + 5
        while True:   # a slow host may split the flood over two windows: two summaries
            lines = path.read_text().splitlines()
            logged = [line for line in lines if "unmapped offset 0x1fffc" in line]
            summaries = [int(line.split()[2].replace(",", "")) for line in lines if line.startswith("... and ")]
            if len(logged) + sum(summaries) >= 300 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()
    assert regs.misuse - before == 300
    assert summaries and len(logged) <= 25 * len(summaries), lines
    assert len(logged) + sum(summaries) == 300, lines


def test_bad_message_floods_are_rate_limited(served, caplog):
    c = served.client()
    with caplog.at_level(logging.WARNING, logger="vdev.server"):
        for _ in range(500):
            with pytest.raises(VfioUserError):
                c.request(99)
    assert len(caplog.records) <= 60
    assert c.read32(0, ID) == ID_VALUE


# -- items 2 and 8: bounded fds and threads ----------------------------------------------

class _FlakyListener:
    """A listening socket whose accept() fails with EMFILE a few times first."""

    def __init__(self, sock, failures: int):
        self.sock, self.failures = sock, failures

    def accept(self):
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return self.sock.accept()

    def __getattr__(self, name):
        return getattr(self.sock, name)


@pytest.fixture
def control(tmp_path):
    g = Gpu()
    ctl = ControlServer(g.dev, str(tmp_path / "ctl"), max_clients=4, idle_timeout=0.5)
    ctl.start()
    yield ctl
    ctl.close()
    g.close()


def _connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def test_control_connections_are_capped_and_the_socket_keeps_serving(control):
    idle = [_connect(control.path) for _ in range(4)]
    time.sleep(0.05)
    extra = _connect(control.path)
    assert b"too many control connections" in extra.recv(4096)
    assert extra.recv(4096) == b""  # refused and closed
    extra.close()
    for s in idle:
        s.close()
    deadline = time.monotonic() + 5
    while True:  # the idle threads notice their EOF
        answer = request(control.path, {"cmd": "status"}, timeout=5)
        if "error" not in answer or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert answer["gpu_id"] == 0xA8670005


def test_silent_control_connections_give_their_place_back(control):
    idle = [_connect(control.path) for _ in range(4)]
    time.sleep(1.0)  # the idle timeout is 0.5 s
    assert request(control.path, {"cmd": "status"}, timeout=5)["gpu_id"] == 0xA8670005
    for s in idle:
        s.close()


def test_control_line_length_is_capped(control):
    s = _connect(control.path)
    try:
        s.sendall(b"x" * (control_mod.MAX_LINE + 100))
    except OSError:
        pass
    answer = s.recv(4096)
    assert b"longer than" in answer
    s.close()
    assert request(control.path, {"cmd": "status"}, timeout=5)["gpu_id"] == 0xA8670005


def test_control_accept_survives_emfile(control):
    assert "gpu_id" in request(control.path, {"cmd": "status"}, timeout=5)  # the loop is past its accept
    control._sock = _FlakyListener(control._sock, failures=3)
    assert "gpu_id" in request(control.path, {"cmd": "status"}, timeout=5)


def test_vfio_user_accept_survives_emfile(served):
    served.server._listener = _FlakyListener(served.server._listener, failures=3)
    assert served.client().read32(0, ID) == ID_VALUE
    assert served.server._listener.failures == 0


# -- item 7: private sockets -------------------------------------------------------------

def test_sockets_are_0600_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        st = ServerThread(RegFileDevice(), tmp_path / "dev.sock")
        g = Gpu()
        ctl = ControlServer(g.dev, str(tmp_path / "ctl"))
        ctl.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(os.stat(st.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(ctl.path).st_mode) == 0o600
        assert st.client().read32(0, ID) == ID_VALUE
    finally:
        ctl.close()
        g.close()
        st.stop()


# -- item 6: connection semantics --------------------------------------------------------

def _raw(served):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(served.path)
    return s


def test_a_second_client_gets_ebusy_and_the_first_is_undisturbed(served):
    c = served.client()
    other = served.client(negotiate=False)
    with pytest.raises(VfioUserError) as e:
        other.negotiate()
    assert e.value.errno == errno.EBUSY
    assert c.read32(0, ID) == ID_VALUE
    other.close()
    c.close()
    assert served.client().read32(0, ID) == ID_VALUE  # the next one is served


def test_a_second_client_is_refused_while_the_first_keeps_the_server_busy(served):
    """The server waits for a busy client's next message inside recvmsg; the listener is
    still served between them (within FAST_WAIT_S), and the busy client goes on."""
    c = served.client()
    stop, reads = threading.Event(), []

    def busy():
        while not stop.is_set():
            reads.append(c.read32(0, ID))

    t = threading.Thread(target=busy)
    t.start()
    try:
        time.sleep(0.1)
        t0 = time.monotonic()
        other = served.client(negotiate=False)
        with pytest.raises(VfioUserError) as e:
            other.negotiate()
        assert e.value.errno == errno.EBUSY and time.monotonic() - t0 < 2.0
        other.close()
        n = len(reads)
        time.sleep(0.1)
        assert len(reads) > n       # the first client was not disturbed
    finally:
        stop.set()
        t.join(5)
    assert set(reads) == {ID_VALUE}
    c.close()


def test_stop_ends_the_loop_while_a_client_is_connected_and_silent(tmp_path):
    st = ServerThread(RegFileDevice(), tmp_path / "dev.sock")
    c = st.client()
    assert c.read32(0, ID) == ID_VALUE   # the loop is now waiting for this client's next message
    t0 = time.monotonic()
    st.stop()
    assert not st.thread.is_alive() and time.monotonic() - t0 < 2.0
    c.close()


def test_concurrent_sessions_are_served_one_after_another(served):
    results = []

    def session():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            c = served.client(negotiate=False)
            try:
                c.negotiate()
            except VfioUserError as e:
                assert e.errno == errno.EBUSY
                c.close()
                time.sleep(0.01)
                continue
            results.append(c.read32(0, ID))
            c.close()
            return

    threads = [threading.Thread(target=session) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [ID_VALUE] * 16


def test_a_half_sent_message_stalls_nothing_but_its_connection(served, monkeypatch):
    monkeypatch.setattr(server_mod, "STALL_TIMEOUT_S", 0.5)
    c = served.client()
    c.conn.sock.sendall(struct.pack("<HHIII", 7, P.Command.REGION_READ, 200, 0, 0) + b"\0" * 20)
    time.sleep(0.05)
    t0 = time.monotonic()
    worker = threading.Thread(target=lambda: (served.device.lock.acquire_after_waiters(),
                                              served.device.lock.release()))
    worker.start()
    worker.join(0.3)
    assert not worker.is_alive()                     # device workers are not held out
    other = served.client(negotiate=False)           # the loop answers others at once
    with pytest.raises(VfioUserError) as e:
        other.negotiate()
    assert e.value.errno == errno.EBUSY and time.monotonic() - t0 < 0.4
    other.close()
    time.sleep(0.7)                                  # the half message's connection is dropped
    assert served.client().read32(0, ID) == ID_VALUE


def test_a_client_that_never_negotiates_is_dropped(served, monkeypatch):
    monkeypatch.setattr(server_mod, "VERSION_TIMEOUT_S", 0.3)
    silent = _raw(served)
    time.sleep(0.6)
    assert silent.recv(16) == b""
    assert served.client().read32(0, ID) == ID_VALUE
    silent.close()
