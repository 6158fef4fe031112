"""Driver-scale load on the stock panthor (issue 10): long loops in more groups than CSG
slots, a real-time group overtaking low-priority ones, devfreq moving under load.

One boot runs, through the uAPI (`panthor-client loops`, qemu/guest_tools/panthor_client.c):
- 9 groups (8 CSG slots: panthor rotates them), each a 100,000-iteration counted loop
  (about 300,000 CS instructions): every count exact, no job timeout (panthor's fixed
  5 s), no CSG acknowledge timeout, no GPU reset in dmesg;
- 4 low-priority loops, then a REALTIME group 300 ms later: it finishes first (the firmware
  schedules strictly by CSG priority);
- devfreq's trans_stat after the busy period shows transitions (the device tree's OPP table
  is RK3588's, 300 MHz to 1 GHz);
- a group left resident and idle for 10 s (`vm-bind --with-job --hold 10` keeps its group)
  raises at most a few IDLE events: the server's `csg_events` counters at the start and the
  end of the hold (panthor's tick sends STATUS_UPDATE and a doorbell to it all the time).
"""

from __future__ import annotations

import re

import pytest

from qemu import boot
from tests.integration.test_jobs import problems
from tests.integration.test_panthor_probe import values

pytestmark = pytest.mark.guest

DEVFREQ = "/sys/class/devfreq/10000000.gpu"
ITER = 100_000
HOLD_S = 10

SCRIPT = f"""
run() {{  # run NAME CMD...: CMD's output with NAME. in front of each line, then its status
    name=$1; shift
    {{ "$@"; echo "status=$?"; }} 2>&1 | while IFS= read -r l; do echo "$name.$l"; done
}}
echo "freqs=$(cat {DEVFREQ}/available_frequencies)"
before=$(sed -n 's/^Total transition : //p' {DEVFREQ}/trans_stat)
echo "trans_before=$before"
run nine panthor-client loops 9 {ITER}
run rt panthor-client loops 4 {ITER} --priority 0 --rt-after-ms 300
echo "trans_after=$(sed -n 's/^Total transition : //p' {DEVFREQ}/trans_stat)"
echo on > /sys/bus/platform/devices/10000000.gpu/power/control
panthor-client vm-bind --size 0x10000 --va 0x8000000 --pattern 0x11110000 --with-job \
    --hold {HOLD_S + 5} > /tmp/hold.out 2>&1 &
sleep 2; echo hold_start=1
sleep {HOLD_S}; echo hold_end=1
wait; sed "s/^/hold./" /tmp/hold.out
dmesg | sed 's/^/dmesg| /'
"""

# what panthor prints when a load is too slow for it (panthor_sched.c, panthor_device.c)
TOO_SLOW = re.compile(r"job timeout|update request timedout|timed ?out|reset", re.I)


def status(live: boot.Live, line: str) -> dict:
    return live.status()


@pytest.fixture(scope="module")
def run():
    r = boot.boot(SCRIPT, 300, driver="panthor",
                  watch={"^hold_start=1$": status, "^hold_end=1$": status})
    print("\n".join(l for l in r.output.splitlines() if not l.startswith("dmesg|")))
    return r, values(r.output)


def test_nine_long_loops_complete_exactly_without_timeouts(run):
    r, v = run
    assert v["nine.status"] == "0", r.output[-3000:]
    assert v["nine.counts_right"] == "9" and v["nine.bad"] == "0"
    for i in range(9):
        assert v[f"nine.group.{i}.count"] == str(ITER)
    lines = [l[len("dmesg| "):] for l in r.output.splitlines() if l.startswith("dmesg| ")]
    slow = [l for l in lines if "panthor" in l and TOO_SLOW.search(l)]
    assert slow == [], "\n".join(slow)
    assert problems(lines) == [], "\n".join(problems(lines))
    assert r.server_status["resets"] == 0, r.server_status


def test_a_realtime_group_overtakes_low_priority_loops(run):
    r, v = run
    assert v["rt.status"] == "0", r.output[-3000:]
    assert v["rt.counts_right"] == "5"
    rt = int(v["rt.rt.4.done_ms"])
    others = [int(v[f"rt.group.{i}.done_ms"]) for i in range(4)]
    assert v["rt.rt_first"] == "1", (rt, others)


def test_devfreq_moves_under_load(run):
    r, v = run
    freqs = [int(f) for f in v["freqs"].split()]
    assert freqs == [f * 100_000_000 for f in range(3, 11)]
    assert int(v["trans_after"]) > int(v["trans_before"]), v


def test_an_idle_resident_group_raises_idle_a_few_times_not_a_storm(run):
    r, v = run
    assert v["hold.result"] == "ok", r.output[-3000:]
    start, end = (r.watched[p].value for p in ("^hold_start=1$", "^hold_end=1$"))
    resident = [s for s in end["csg_slots"] if s["state"] in ("START", "RESUME")]
    assert resident, end["csg_slots"]                             # the group is still resident
    idle = end["csg_events"].get("IDLE", 0) - start["csg_events"].get("IDLE", 0)
    print(f"IDLE events over {HOLD_S} s of an idle resident group: {idle}")
    assert idle <= 3, (start["csg_events"], end["csg_events"])
