"""Break on a register access pauses the guest through QMP; `mali-vdev continue` resumes it
(issue 5, item 5).

One boot (10-20 s, most of it paused) with `break_regs=["GPU_ID:r", "MCU_CONTROL:w=2"]`
(what `mali-vdev boot --break GPU_ID:r --break MCU_CONTROL:w=2` does): QEMU gets two QMP
sockets, the server `--qmp`. panthor's probe reads GPU_ID once, first, then boots the MCU
(MCU_CONTROL = 2, AUTO); every runtime resume boots it again (one more break each; how many
depends on when the autosuspend strikes), the suspends' MCU_CONTROL = 0 do not match. A console-watch callback, started by /init's first
marker, watches QEMU over the launcher's own QMP socket; at each pause it checks that
QEMU reports `paused` and that the serial console does not advance for 2 s, then runs
`mali-vdev continue --control SOCK.ctl` as a developer would and waits for QEMU's RESUME
event. The boot then completes: panthor probed, a job ran, and the time spent paused did
not count against the boot's timeout.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mali_regs.profiles import get_profile
from qemu import boot
from qemu.console import INIT
from tests.integration.test_jobs import values
from tests.integration.test_panthor_probe import check_probe, dmesg

pytestmark = pytest.mark.guest

ROOT = Path(__file__).resolve().parents[2]
HOLD_S = 2.0
CMD = """
panthor-client job-store | sed 's/^/store./'
dmesg | sed 's/^/dmesg| /'
"""


def pause_and_continue(live: boot.Live, line: str) -> list[dict]:
    """Every pause until the guest command ends: what QEMU and the console did, then a
    `mali-vdev continue`."""
    mon = live.monitor
    mon.wait_connected()
    resumes = lambda: sum(e["event"] == "RESUME" for e in mon.events)  # noqa: E731
    seen: list[dict] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and live.console.exit_status is None:
        if mon.status() != "paused":
            time.sleep(0.02)
            continue
        at = time.monotonic() - live.t0
        time.sleep(0.5)                    # console lines already in the pipe arrive
        lines0, guest0 = live.console_lines(), mon.execute("query-status")
        time.sleep(HOLD_S)
        lines1, still = live.console_lines(), mon.status()
        before = resumes()
        p = subprocess.run([sys.executable, "-m", "mali_vdev", "continue", "--control",
                            str(live.control)], cwd=ROOT, capture_output=True, text=True,
                           timeout=30)
        t = time.monotonic()
        while resumes() == before and time.monotonic() - t < 10:
            mon.status()
            time.sleep(0.02)
        seen.append({"at": round(at, 3), "lines": (lines0, lines1), "status": guest0["status"],
                     "still": still, "continue_rc": p.returncode, "continue_out": p.stdout,
                     "resumed_in": round(time.monotonic() - t, 3), "resumed": resumes() > before})
    return seen


@pytest.fixture(scope="module")
def run():
    # A timeout shorter than boot + pauses: paused time must not count.
    r = boot.boot(CMD, 60, load_panthor=True, break_regs=["GPU_ID:r", "MCU_CONTROL:w=2"],
                  console_watch={re.escape(INIT): pause_and_continue})
    print(f"timings {r.timings}, pauses {r.pauses}")
    w = r.watched[re.escape(INIT)]
    assert w.done and w.error is None, w.error
    for p in w.value:
        print(p)
    return r, w.value


def test_breaks_pause_the_guest_and_continue_resumes_it(run):
    r, pauses = run
    hits = re.findall(r"break #\d+: (read |write) (\w+)", r.server_log)
    assert len(pauses) == len(hits) >= 2, (pauses, hits)
    for p in pauses:
        assert p["status"] == "paused" and p["still"] == "paused", p
        assert p["lines"][0] == p["lines"][1], p          # the console stopped
        assert p["continue_rc"] == 0 and '"sent": "cont"' in p["continue_out"], p
        assert p["resumed"] and p["resumed_in"] < 5, p
    assert r.pauses == len(pauses)                         # QEMU's STOP events
    assert r.timings["paused"] >= len(pauses) * HOLD_S


def test_the_server_says_which_access_broke(run):
    r, pauses = run
    hits = re.findall(r"break #\d+: (read |write) (\w+) = (0x[0-9a-f]+)", r.server_log)
    assert hits[:2] == [("read ", "GPU_ID", f"{get_profile('g610').gpu_id:#010x}"),
                        ("write", "MCU_CONTROL", "0x00000002")], hits
    assert set(hits[2:]) <= {("write", "MCU_CONTROL", "0x00000002")}, hits  # resumes
    assert len(re.findall(r"QMP stop sent to ", r.server_log)) == len(hits) == len(pauses)
    assert len(re.findall(r"QMP cont sent to ", r.server_log)) == len(hits)


def test_the_boot_completes_after_continuing(run):
    r, pauses = run
    assert r.status == 0, r.output[-3000:]
    v = values(r.output)
    assert v["store.result"] == "ok" and v["store.store.value"] == "0xdeadbeef"
    check_probe(get_profile("g610"), dmesg(r.output), r.console_log)
    # the first two during the probe, before the guest command started
    assert pauses[1]["at"] < r.timings["cmd_start"]
    assert r.timings["total"] - r.timings["paused"] < 60
