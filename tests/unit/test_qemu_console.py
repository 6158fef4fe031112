"""Console marker parsing: command output vs kernel messages, exit status, panic."""

import io
import time

from qemu.console import ConsoleMonitor

CONSOLE = b"""[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd083]\r
[    1.40] Run /init as init process\r
@@MALI-VDEV-INIT@@ 1.79
@@MALI-VDEV-CMD-START@@
@@MALI-VDEV-OUT@@ 0xA8670005
[    1.95] panthor 10000000.gpu: [drm] Mali-G610 id 0xa867
@@MALI-VDEV-OUT@@   indented @@ text
@@MALI-VDEV-OUT@@ 
@@MALI-VDEV-CMD-EXIT 3@@
[    2.01] reboot: Power down
"""


def run(data: bytes) -> tuple[ConsoleMonitor, str]:
    log = io.StringIO()
    mon = ConsoleMonitor(io.BytesIO(data), log, time.monotonic()).start()
    mon.join(5)
    return mon, log.getvalue()


def test_output_status_and_events():
    mon, log = run(CONSOLE)
    assert mon.output == ["0xA8670005", "  indented @@ text", ""]
    assert mon.exit_status == 3 and mon.panic is None and mon.eof
    assert {"first_console_line", "init", "cmd_start", "cmd_exit"} <= set(mon.times)
    assert "\r" not in log and "panthor 10000000.gpu" in log


def test_panic_and_init_error_are_detected():
    mon, _ = run(b"[ 1.0] Kernel panic - not syncing: Attempted to kill init!\n")
    assert mon.panic and mon.exit_status is None
    mon, _ = run(b"@@MALI-VDEV-ERROR no PCI function@@\n@@MALI-VDEV-CMD-EXIT 125@@\n")
    assert mon.error == "no PCI function" and mon.exit_status == 125


def test_init_output_on_its_own_uart_socket(tmp_path):
    """ttyAMA1: markers and output come over a socket QEMU connects to; the console keeps
    the kernel's lines, and both land in the one log."""
    import socket
    import threading

    path = str(tmp_path / "out.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    r, w = socket.socketpair()
    log = io.StringIO()
    mon = ConsoleMonitor(r.makefile("rb"), log, time.monotonic()).start()
    mon.add_listener(listener)

    def qemu():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as uart1:
            uart1.connect(path)
            w.sendall(b"[    1.95] panthor 10000000.gpu: [drm] Mali-G610 id 0xa867\r\n")
            uart1.sendall(b"@@MALI-VDEV-CMD-START@@\r\n@@MALI-VDEV-OUT@@ dmesg.bad| [ 0.0] x\r\n"
                          b"@@MALI-VDEV-CMD-EXIT 0@@\r\n")
        w.close()

    t = threading.Thread(target=qemu)
    t.start()
    t.join(5)
    mon.join(5)
    assert mon.output == ["dmesg.bad| [ 0.0] x"] and mon.exit_status == 0
    assert "Mali-G610" in log.getvalue() and "CMD-START" in log.getvalue()
    assert listener.fileno() == -1  # closed once its one connection ended


def test_a_qemu_that_never_connects_does_not_keep_the_reader():
    import socket
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0mali-vdev-test-%d" % time.monotonic_ns())
    listener.listen(1)
    mon, _ = run(b"@@MALI-VDEV-CMD-EXIT 0@@\n")
    mon.add_listener(listener)
    mon.join(5)
    assert all(not t.is_alive() for t in mon._extra) and listener.fileno() == -1
