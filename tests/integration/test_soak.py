"""The long soak of issue 11 (`make soak`, outside `make test`): 100,000 guest jobs through
the stock panthor (`panthor-client jobs`, 8 in flight) in rounds of 10,000, with the server's
RSS, open fds and threads sampled from /proc and asserted flat after warm-up. (The hour of
host-side driver-model jobs is tests/unit/test_soak_host.py with SOAK_HOST_S=3600; the
short guest version is the 10,000 jobs of test_jobs.py.)"""

from __future__ import annotations

import os

import pytest

from qemu import boot
from tests.integration.test_jobs import problems, values
from tests.soak import ServerSampling, assert_flat

pytestmark = [pytest.mark.guest, pytest.mark.skipif(
    not os.environ.get("MALI_VDEV_SOAK"), reason="the long soak runs in `make soak` (MALI_VDEV_SOAK=1), not in `make test`")]

JOBS = int(os.environ.get("SOAK_GUEST_JOBS", 100_000))
ROUND = 10_000
TIMEOUT_S = 120 + JOBS / 50   # far more than the jobs take (~1,000/s): a hang still ends

SCRIPT = f"""
echo soak_start=1
i=0; total=0
while [ $total -lt {JOBS} ]; do
    n=$(( {JOBS} - total < {ROUND} ? {JOBS} - total : {ROUND} ))
    panthor-client jobs $n > /tmp/round.out 2>&1; st=$?
    sed "s/^/round.$i./" /tmp/round.out | grep -E "\\.(signalled|counter|fence_errors|jobs_per_s|error)="
    echo "round.$i.status=$st"
    [ $st -eq 0 ] || break
    total=$(( total + n )); i=$(( i + 1 ))
done
echo soak_jobs=$total
echo soak_end=1
dmesg | sed 's/^/dmesg| /'
"""


def test_hundred_thousand_guest_jobs_with_flat_server_rss_fds_threads():
    sampling = ServerSampling("^soak_start=1$", "^soak_end=1$", interval=0.5, limit_s=TIMEOUT_S)
    r = boot.boot(SCRIPT, TIMEOUT_S, driver="panthor", watch=sampling.watch())
    v = values(r.output)
    assert v.get("soak_jobs") == str(JOBS), r.output[-3000:]
    rounds = [k for k in v if k.endswith(".status") and k.startswith("round.")]
    assert all(v[k] == "0" for k in rounds), {k: v[k] for k in rounds}
    assert all(v[f"round.{i}.fence_errors"] == "0" for i in range(len(rounds)))
    lines = [l[len("dmesg| "):] for l in r.output.splitlines() if l.startswith("dmesg| ")]
    assert problems(lines) == [], "\n".join(problems(lines))
    g = assert_flat(sampling.samples(r))
    rates = [float(v[f"round.{i}.jobs_per_s"]) for i in range(len(rounds))]
    print(f"guest soak: {JOBS} jobs in {len(rounds)} rounds over {g['seconds']} s ({min(rates):.0f}..{max(rates):.0f} jobs/s); "
          f"server RSS {g['rss_kb_start']} / {g['rss_kb_base']} -> {g['rss_kb_end']} KiB ({g['rss_growth']:+.2%}), "
          f"fds {g['fds_base']}..{g['fds_max']}, threads {g['threads_base']}..{g['threads_max']}")
