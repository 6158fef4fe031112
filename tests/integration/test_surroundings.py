"""Faults of the surroundings (issue 11, item 6).

- The server killed in the middle of a boot: `boot` must say so (the server's exit status,
  not a timeout), and leave no process and no socket behind: QEMU is stopped and the run
  directory removed.
- QEMU killed with SIGKILL in the middle of a job: the server (one `mali-vdev serve` the
  test starts, both boots attach to it with `server_socket`) keeps running and its state,
  accepts the next QEMU, whose DEVICE_RESET brings the device back: the second boot's
  panthor probes it and runs a job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mali_gpu.control import request
from qemu import boot
from tests.integration.test_jobs import values

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


def _serve(run_dir: Path, server_args: list[str]) -> tuple[subprocess.Popen, Path, Path]:
    sock, log = run_dir / "gpu.sock", run_dir / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "mali_vdev", "--log-file", str(log), "serve", "--socket", str(sock),
                             *server_args], cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 30
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text() if log.exists() else "no log"
        time.sleep(0.05)
    return proc, sock, log


def test_qemu_killed_mid_job_then_the_same_server_serves_the_next_qemu():
    p = boot.setup()
    plan = boot.plan_boot(boot.BootOptions(), p)
    run_dir = Path(tempfile.mkdtemp(prefix="mali-vdev-surroundings.", dir=p.qemu.scratch_parent()))
    proc, sock, log = _serve(run_dir, plan.server_args)
    try:
        def kill_qemu(live: boot.Live, line: str) -> dict:
            st = live.status()          # a job is in flight: a group resident, the engine busy
            os.kill(live.qemu_pid, signal.SIGKILL)
            return st

        # Jobs back to back (8 in flight) until QEMU is killed under them.
        with pytest.raises(boot.BootError) as e:
            boot.boot("panthor-client jobs 10000000 > /dev/null 2>&1 & sleep 3; echo mid=1; wait; echo never=1",
                      120, driver="panthor", server_socket=sock, watch={"^mid=1$": kill_qemu})
        assert "never=1" not in e.value.result.output
        w = e.value.result.watched["^mid=1$"]
        assert w.error is None, w.error
        busy = w.value
        assert [c for c in busy["csg_slots"] if c["state"] in ("START", "RESUME")], busy["csg_slots"]
        assert busy["engine"]["instructions"] > 0

        # The server is still there, with its state (the device keeps it after a disconnect).
        time.sleep(1)
        assert proc.poll() is None, log.read_text()[-3000:]
        after = request(str(sock) + ".ctl", {"cmd": "status"}, timeout=10)
        assert after["mcu_status"] == busy["mcu_status"] and after["boots"] == busy["boots"], (busy, after)
        assert after["engine"]["instructions"] >= busy["engine"]["instructions"]
        text = log.read_text()
        assert "client disconnected" in text, text[-3000:]
        resets_before = text.count("DEVICE_RESET")

        # The next QEMU: its DEVICE_RESET brings the device back, panthor probes it, a job runs.
        r = boot.boot("panthor-client job-store; echo status=$?", 120, driver="panthor", server_socket=sock)
        v = values(r.output)
        assert v.get("status") == "0" and v.get("result") == "ok", r.output[-3000:]
        assert proc.poll() is None
        text = log.read_text()
        assert text.count("DEVICE_RESET") > resets_before, text[-3000:]
        assert "internal error" not in text and "Traceback" not in text, text[-3000:]
    finally:
        proc.terminate()
        proc.wait(15)
        for f in run_dir.iterdir():
            f.unlink()
        run_dir.rmdir()
