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
    script = (f"panthor-client jobs {jobs} --depth {DEPTH} | sed 's/^/pipe./'\n"
              f"echo {MARK}; sleep 1\n"
              f"panthor-client jobs {serial_jobs} --depth 1 | sed 's/^/one./'\n")
    r = boot.boot(script, TIMEOUT_S, load_panthor=True, prepared=prepared,
                  watch={f"^{MARK}": lambda live, line: live.status()})
    pipe, one = _values(r.output, "pipe."), _values(r.output, "one.")
    for name, v, n in (("pipelined", pipe, jobs), ("one at a time", one, serial_jobs)):
        if v.get("result") != "ok" or v.get("signalled") != str(n) or v.get("counter") != str(n):
            why = " ".join(f"{k}={v[k]}" for k in ("error", "signalled", "fence_errors", "counter",
                                                    "group_state", "result") if k in v)
            raise RuntimeError(f"guest jobs ({name}) failed: {why or 'no output'}")
    mark = r.watched.get(f"^{MARK}")
    return {"pipe": pipe, "one": one, "boot_s": r.timings.get("total", 0.0), "kernel": r.kernel_version,
            "breakdown": breakdown(mark.value if mark and mark.done and not mark.error else None,
                                   r.server_status, serial_jobs)}


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
    print(f"  GROUP_SUBMIT ioctl p50          {int(res['pipe']['submit_p50_us']):8d} us")
    b, one = res["breakdown"], res["one"]
    if b:
        p50 = int(one["latency_p50_us"])
        irq_path = b["irqs"] * b["irq_delivery_p50_us"]
        rest = p50 - b["server_us"] - b["engine_us"] - irq_path
        print(f"  where one job's time goes (one at a time; per job, p50 latency {p50} us, target 500 us):")
        print(f"    {b['messages']:5.1f} vfio-user messages, the server handling them {b['server_us']:8.0f} us")
        print(f"    engine running the stream                       {b['engine_us']:8.0f} us")
        print(f"    {b['irqs']:5.1f} interrupts x {b['irq_delivery_p50_us']:6.0f} us eventfd -> next message {irq_path:8.0f} us")
        print(f"    the rest: QEMU round trips and the guest (TCG)  {rest:8.0f} us")
    else:
        print("  (no server counters: the breakdown is missing)")
    print(f"  boot + both runs                {res['boot_s']:8.1f} s   (kernel {res['kernel']})")


if __name__ == "__main__":
    main()
