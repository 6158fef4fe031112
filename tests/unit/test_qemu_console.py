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
