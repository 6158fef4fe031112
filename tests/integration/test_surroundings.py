"""Faults of the surroundings (issue 11, item 6): the server killed in the middle of a boot.

`boot` must say so (the server's exit status, not a timeout), and leave no process and no
socket behind: QEMU is stopped and the run directory removed.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from qemu import boot

pytestmark = pytest.mark.guest


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:   # a zombie of ours still answers kill(0): reap it if it is our child
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def test_server_killed_mid_boot_is_reported_and_nothing_is_left():
    seen = {}

    def kill_server(live: boot.Live, line: str) -> None:
        seen.update(server=live.server_pid, qemu=live.qemu_pid, control=live.control)
        os.kill(live.server_pid, signal.SIGKILL)

    with pytest.raises(boot.BootError) as e:
        boot.boot("echo up=1; sleep 30; echo never=1", 120, driver="panthor",
                  watch={"^up=1$": kill_server})
    assert "the server exited (status -9) during the boot" in str(e.value), str(e.value)[:500]
    assert "never=1" not in e.value.result.output
    assert gone(seen["server"]) and gone(seen["qemu"])
    run_dir = Path(seen["control"]).parent
    assert not run_dir.exists(), list(run_dir.iterdir())
