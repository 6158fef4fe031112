"""`mali-vdev shell` through a pseudo-terminal, as a user's terminal would drive it (issue 12).

The command runs on the slave side of a pty (its stdin, stdout and stderr, as in a terminal
emulator); the test types on the master side: it waits for the guest's prompt, asks for the
GPU's uevent (the driver bound to the device-tree node), interrupts a `sleep` with Ctrl-C
(the byte must reach the guest's line discipline, which signals the foreground job), then
quits with Ctrl-]. The terminal's attributes afterwards must equal those before.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.guest

PROMPT = re.compile(rb"mali-vdev:[^\r\n]*# (\x1b\[6n)?$")
DSR = b"\x1b[6n"        # busybox's line editor asks the terminal where the cursor is
UEVENT = "/sys/bus/platform/devices/10000000.gpu/uevent"


class Terminal:
    def __init__(self, argv: list[str]):
        self.master, slave = pty.openpty()
        termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(slave))
        self.slave = slave
        self.before = termios.tcgetattr(slave)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        self.seen = b""

    def read_until(self, pattern: re.Pattern, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while time.monotonic() < deadline:
            if pattern.search(self.seen, start):
                return self.seen[start:]
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    break
                self.seen += data
                if DSR in data:     # answer like a terminal would
                    self.type(b"\x1b[1;%dR" % (len(self.seen) - self.seen.rfind(b"\n")))
            elif self.proc.poll() is not None:
                break
        raise AssertionError(f"no {pattern.pattern!r} within {timeout} s; the terminal showed:\n"
                             + self.seen[-3000:].decode(errors="replace"))

    def type(self, text: bytes) -> None:
        os.write(self.master, text)


def test_shell_runs_commands_takes_ctrl_c_and_restores_the_terminal():
    t = Terminal([sys.executable, "-m", "mali_vdev", "shell", "--driver", "panthor"])
    try:
        t.read_until(PROMPT, 240)
        t.type(f"cat {UEVENT}\r".encode())
        out = t.read_until(PROMPT, 30)
        assert b"DRIVER=panthor" in out and b"OF_COMPATIBLE_0=rockchip,rk3588-mali" in out, out
        # Ctrl-C goes to the guest: the sleep ends at once and the shell survives
        t.type(b"sleep 100; echo after-sleep=$?\r")
        time.sleep(1.0)
        t0 = time.monotonic()
        t.type(b"\x03")
        out = t.read_until(PROMPT, 15)
        assert time.monotonic() - t0 < 10
        assert b"^C" in out and not re.search(rb"after-sleep=\d", out), out  # the line was cut
        t.type(b"echo still=$((6 * 7))\r")
        assert b"still=42" in t.read_until(PROMPT, 15)
        t.type(b"\x1d")                      # Ctrl-]: leave
        assert t.proc.wait(60) == 0, t.seen[-2000:]
        assert termios.tcgetattr(t.slave) == t.before   # raw mode undone
    finally:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait()
        os.close(t.master)
        os.close(t.slave)
