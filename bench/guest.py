"""End-to-end jobs from the guest: the stock panthor driver submitting to the virtual GPU.

One boot of the arm64 guest (QEMU TCG, `--load-panthor`, our firmware) runs
`panthor-client jobs N` twice: N jobs in a row on one queue with 8 in flight (throughput),
then jobs one at a time (latency without queueing). Each job is a real command buffer
(LOAD_MULTIPLE, ADD_IMM32, STORE_MULTIPLE on a counter) called from panthor's job wrapper;
the client measures in the guest, with CLOCK_MONOTONIC: jobs per second, and the
submission-to-signal latency of every job (the DRM sync object's fence timestamp, from its
sync file, minus the time just before GROUP_SUBMIT).

`python -m bench.guest [JOBS]`; part of `make bench`. The guest assets are fetched on first
use (cached); if they cannot be had, the benchmark says why and is skipped.
"""

from __future__ import annotations

import re
import sys

JOBS = 10_000
SERIAL_JOBS = 300
DEPTH = 8
TIMEOUT_S = 170.0


def _values(output: str, prefix: str) -> dict[str, str]:
    return {k[len(prefix):]: v for k, v in re.findall(r"^([\w.]+)=(.*)$", output, re.M)
            if k.startswith(prefix)}


MARK = "timing-mark"


def run(jobs: int = JOBS, serial_jobs: int = SERIAL_JOBS, prepared=None) -> dict:
    from qemu import boot
    # The server's counters are read at the mark (the guest idles for a second there) and at
    # the end: their difference is the one-at-a-time run's.
    # The guest's /proc/stat around each run: how busy its one vCPU was.
    script = (f"echo {MARK}0; sleep 1\n"
              f"echo pipe.stat0=$(head -1 /proc/stat)\n"
              f"panthor-client jobs {jobs} --depth {DEPTH} | sed 's/^/pipe./'\n"
              f"echo pipe.stat1=$(head -1 /proc/stat)\n"
              f"echo {MARK}1; sleep 1\n"
              f"echo one.stat0=$(head -1 /proc/stat)\n"
              f"panthor-client jobs {serial_jobs} --depth 1 | sed 's/^/one./'\n"
              f"echo one.stat1=$(head -1 /proc/stat)\n")
    snap = lambda live, line: live.status()  # noqa: E731
    r = boot.boot(script, TIMEOUT_S, load_panthor=True, prepared=prepared,
                  watch={f"^{MARK}0": snap, f"^{MARK}1": snap})
    pipe, one = _values(r.output, "pipe."), _values(r.output, "one.")
    for name, v, n in (("pipelined", pipe, jobs), ("one at a time", one, serial_jobs)):
        if v.get("result") != "ok" or v.get("signalled") != str(n) or v.get("counter") != str(n):
            why = " ".join(f"{k}={v[k]}" for k in ("error", "signalled", "fence_errors", "counter",
                                                    "group_state", "result") if k in v)
            raise RuntimeError(f"guest jobs ({name}) failed: {why or 'no output'}")
    marks = [(w.value if w and w.done and not w.error else None) for w in
             (r.watched.get(f"^{MARK}0"), r.watched.get(f"^{MARK}1"))]
    pipe["breakdown"] = breakdown(marks[0], marks[1], jobs)
    one["breakdown"] = breakdown(marks[1], r.server_status, serial_jobs)
    return {"pipe": pipe, "one": one, "boot_s": r.timings.get("total", 0.0), "kernel": r.kernel_version}


def vcpu_busy(v: dict) -> float | None:
    """The fraction of the run the guest's vCPU was not idle (/proc/stat's cpu line: idle and
    iowait are the 4th and 5th numbers)."""
    try:
        a, b = ([int(x) for x in v[k].split()[1:]] for k in ("stat0", "stat1"))
    except (KeyError, ValueError):
        return None
    total = sum(b) - sum(a)
    idle = (b[3] + b[4]) - (a[3] + a[4])
    return 1 - idle / total if total > 0 else None


def breakdown(before: dict | None, after: dict | None, jobs: int) -> dict | None:
    """Per job of the one-at-a-time run: vfio-user messages, the server's time handling them,
    interrupts and how long each took to come back as the guest's first access, the
    engine's time running the stream."""
    if not before or not after or "server" not in after:
        return None
    s0, s1 = before["server"], after["server"]
    return {"messages": (s1["messages"] - s0["messages"]) / jobs,
            "server_us": (s1["busy_us"] - s0["busy_us"]) / jobs,
            "irqs": (s1["irq_signals"] - s0["irq_signals"]) / jobs,
            "irq_delivery_p50_us": s1["irq_delivery_us"]["p50"],
            "engine_us": (after["engine"]["busy_us"] - before["engine"]["busy_us"]) / jobs}


def _print_breakdown(v: dict) -> None:
    """Per job, the means: the vCPU's occupied time (its own work, and the register accesses
    that stall it), what the server and the engine spent, the interrupts' way back in."""
    b, busy = v.get("breakdown"), vcpu_busy(v)
    if not b or busy is None:
        print("    (no server counters or /proc/stat: no breakdown)")
        return
    per_job = 1e6 / float(v["jobs_per_s"])
    occupied = busy * per_job
    irq = b["irqs"] * b["irq_delivery_p50_us"]
    print(f"    per job: {per_job:6.0f} us; the guest's vCPU not idle for {occupied:6.0f} us ({busy:.0%})")
    print(f"      {b['messages']:5.1f} vfio-user messages, the server handling them {b['server_us']:6.0f} us")
    print(f"      engine running the stream                      {b['engine_us']:6.0f} us")
    print(f"      {b['irqs']:5.1f} interrupts x {b['irq_delivery_p50_us']:5.0f} us from eventfd to next message "
          f"{irq:6.0f} us")
    print(f"      the rest: QEMU and the guest's own work (TCG)  {max(per_job - b['server_us'] - b['engine_us'] - irq, 0):6.0f} us")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    jobs = int(argv[0]) if argv else JOBS
    print("guest: panthor-client in the arm64 guest (QEMU TCG, stock panthor), one boot")
    try:
        from qemu import boot
        prepared = boot.setup()
    except Exception as e:  # noqa: BLE001 - no guest assets here: say why, go on
        print(f"  skipped: {_first_line(e)}")
        return
    try:
        res = run(jobs, prepared=prepared)
    except Exception as e:  # noqa: BLE001 - the numbers are missing: say why, go on
        print(f"  FAILED: {_first_line(e)}")
        return
    for label, v, target in ((f"{jobs} jobs, {DEPTH} in flight", res["pipe"], "target >= 3000 jobs/s"),
                             (f"{SERIAL_JOBS} jobs, one at a time", res["one"], "target p50 <= 500 us")):
        print(f"  {label:32s}{float(v['jobs_per_s']):8.0f} jobs/s   submit->signal "
              f"p50 {int(v['latency_p50_us']):6d} us  p99 {int(v['latency_p99_us']):6d} us   {target}")
        _print_breakdown(v)
    print(f"  GROUP_SUBMIT ioctl p50 (8 in flight) {int(res['pipe']['submit_p50_us']):6d} us")
    print(f"  boot + both runs                {res['boot_s']:8.1f} s   (kernel {res['kernel']})")


if __name__ == "__main__":
    main()
