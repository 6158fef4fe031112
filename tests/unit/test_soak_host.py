"""Soak of the real server process with driver-model jobs (issue 11): `mali-vdev serve` in its
own process, driven through its vfio-user socket by tests.driver_model.ServedGpu — sessions
of probe, firmware boot, one group and a few hundred jobs, then a disconnect and a new
connection with new guest RAM — while the server's RSS, open fds and threads are sampled
from /proc and must stay flat after warm-up.

`make test` runs it for SOAK_HOST_S (default 30) seconds; `make soak` for an hour."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.driver_model import DriverError, Group, ServedGpu, probe_and_boot
from tests.soak import Sampler, assert_flat

SECONDS = float(os.environ.get("SOAK_HOST_S", 30))
JOBS_PER_SESSION = 500


def _session(path: str, sampler: Sampler, deadline: float) -> int:
    gpu = ServedGpu(path)
    try:
        d = probe_and_boot(gpu)
        g = Group(gpu, d, slot=sampler.work % 8)
        for n in range(1, JOBS_PER_SESSION + 1):
            g.submit(g.store_job(0x50AC0000 | n & 0xFFFF))
            wait_until = time.monotonic() + 10
            while g.sync() != n:   # the server's engine signals the job's sync object
                if time.monotonic() > wait_until:
                    raise DriverError(f"job {n} of a session did not signal (sync {g.sync()})")
                time.sleep(0)
            if g.buf(0) != 0x50AC0000 | n & 0xFFFF:
                raise DriverError(f"job {n} stored 0x{g.buf(0):x}")
            sampler.work += 1
            if time.monotonic() > deadline:
                break
        return n
    finally:
        gpu.close()


def _spawn(sock, log) -> subprocess.Popen:
    """The server with its log in a file (an hour of sessions would fill a pipe nobody reads)."""
    proc = subprocess.Popen([sys.executable, "-m", "mali_vdev", "--log-level", "WARNING", "serve", "--socket", str(sock)],
                            stderr=log)
    deadline = time.monotonic() + 20
    while not sock.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.02)
    return proc


def test_server_rss_fds_and_threads_stay_flat_over_sessions_of_jobs(tmp_path):
    sock = tmp_path / "soak.sock"
    log = open(tmp_path / "server.log", "w")
    proc = _spawn(sock, log)
    try:
        sampler = Sampler(proc.pid, interval=max(0.2, SECONDS / 150)).start()
        deadline = time.monotonic() + SECONDS
        sessions = 0
        while time.monotonic() < deadline:
            _session(str(sock), sampler, deadline)
            sessions += 1
        samples = sampler.stop()
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        g = assert_flat(samples)
        print(f"host soak: {sampler.work} jobs in {sessions} sessions over {g['seconds']} s; server RSS "
              f"{g['rss_kb_base']} -> {g['rss_kb_end']} KiB ({g['rss_growth']:+.2%}), fds {g['fds_base']}..{g['fds_max']}, "
              f"threads {g['threads_base']}..{g['threads_max']}")
        assert sessions >= 2 and sampler.work >= 2 * JOBS_PER_SESSION, "a soak of more than one session"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_the_flatness_check_catches_a_leak():
    from tests.soak import Sample
    flat = [Sample(t, 50_000 + (t % 3) * 10, 10, 4) for t in range(40)]
    assert_flat(flat)
    rss_leak = [Sample(t, 50_000 + 200 * t, 10, 4) for t in range(40)]       # 200 KiB per sample
    fd_leak = [Sample(t, 50_000, 10 + t // 4, 4) for t in range(40)]          # one fd per 4 samples
    thread_leak = [Sample(t, 50_000, 10, 4 + t // 5) for t in range(40)]
    for leak, what in ((rss_leak, "RSS grew"), (fd_leak, "open fds grew"), (thread_leak, "threads grew")):
        try:
            assert_flat(leak)
        except AssertionError as e:
            assert what in str(e)
        else:
            raise AssertionError(f"{what}: not caught")
