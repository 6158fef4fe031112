"""Command streams run on the virtual Mali under the guest's stock panthor (issue 4).

One real boot (about 30 s) runs every job command of `panthor-client`
(qemu/guest_tools/panthor_client.c) through the panthor uAPI: GROUP_CREATE, GROUP_SUBMIT
with DRM sync objects, GROUP_GET_STATE, GROUP_DESTROY; the command buffers are real CS
instructions (the encodings of scheduler/isa.py), called from panthor's own job wrapper in
the kernel ring. In order:

- `job-store`: MOVE48/MOVE32/STORE_MULTIPLE/WAIT/FLUSH_CACHE2 stores 0xdeadbeef, the sync
  object signals;
- `job-loop 10000`: a counted loop (ADD_IMM32, BRANCH) stores 10000;
- `job-sync-chain`: SYNC_SET/SYNC_WAIT order two queues of one group, then two groups
  (the waiter submitted first);
- `groups 20`: 20 groups (8 CSG slots) wait for a release set by a 21st group; panthor
  rotates them through SUSPEND/RESUME and every result must be right;
- `jobs 10000` (8 in flight) and `jobs 300 --depth 1`: all signalled, counter right; the
  server's RSS, fds and threads, sampled from /proc during the 10,000, stay flat after
  warm-up (the short soak of issue 11; `make soak` runs 100,000, tests/integration/test_soak.py);
- `vm-bind --with-job --hold`: while the guest holds the binding, the test reads the VA
  through the server's control socket (`gpu_read as=any`): the GPU-side MMU translation
  sees the CPU's write (issue 3's last item);
- `job-fault` (store to an unmapped VA) and `job-hang` (SYNC_WAIT forever), each followed
  by a new group that works; dmesg is cut (`dmesg -c`) between the phases so that the
  driver's fault and timeout lines are expected in their phase and nowhere else.
"""

from __future__ import annotations

import re
import struct

import pytest

from mali_regs.profiles import get_profile
from qemu import boot
from tests.integration.test_panthor_probe import ALLOWED, BAD, RELEVANT, check_probe
from tests.soak import ServerSampling, assert_flat

pytestmark = pytest.mark.guest

BOOT_TIMEOUT_S = 170.0
GPU_POWER = "/sys/bus/platform/devices/10000000.gpu/power"
JOBS = 10_000
GROUPS = 20
HOLD_VA, HOLD_PATTERN, HOLD_S = 0x8000000, 0x11110000, 4
FAULT_VA = 0x14000000  # the client's session VA 0x10000000 + 64 MiB: nothing mapped there

SCRIPT = f"""
run() {{  # run NAME CMD...: CMD's output, live, with NAME. in front of each line; its status
    name=$1; shift
    {{ "$@"; echo "status=$?"; }} 2>&1 | while IFS= read -r l; do echo "$name.$l"; done
}}
cut_dmesg() {{ dmesg -c | sed "s/^/dmesg.$1| /"; }}
run store panthor-client job-store
run loop panthor-client job-loop 10000
run chain panthor-client job-sync-chain
run groups panthor-client groups {GROUPS}
run jobs panthor-client jobs {JOBS}
run lat panthor-client jobs 300 --depth 1
# The GPU stays powered while the binding is held, so its address space stays programmed.
echo on > {GPU_POWER}/control
run hold panthor-client vm-bind --size 0x10000 --va {HOLD_VA:#x} --pattern {HOLD_PATTERN:#x} \\
    --with-job --hold {HOLD_S}
echo auto > {GPU_POWER}/control
cut_dmesg normal
run fault panthor-client job-fault
cut_dmesg fault
run hang panthor-client job-hang
cut_dmesg hang
run after panthor-client job-store
cut_dmesg after
"""

# What the driver prints for the faulting job (panthor_mmu.c, panthor_sched.c), the
# continuation lines of those messages included.
FAULT_LINES = [
    re.compile(rf"\*ERROR\* Unhandled Page fault in AS\d+ at VA 0x0*{FAULT_VA:x}\b", re.I),
    re.compile(r"CS_FATAL: pid=\d+, comm=panthor-client"),
    re.compile(r"CS_FATAL\.EXCEPTION_TYPE: 0xc[0-7] \(TRANSLATION_FAULT_\d\)"),
]
FAULT_ALLOWED = [re.compile(p) for p in (
    r"Unhandled Page fault in AS\d+ at VA", r"raw fault status: 0x", r"decoded fault status:",
    r"exception type 0x[0-9A-F]+: TRANSLATION_FAULT", r"access type 0x", r"source id 0x",
    r"CS_FATAL: pid=\d+, comm=panthor-client", r"CSG slot \d+ CS slot: \d+",
    r"CS_FATAL\.EXCEPTION_(TYPE|DATA)", r"CS_FATAL_INFO\.EXCEPTION_DATA")]
HANG_LINES = [re.compile(r"\[drm\] job timeout: pid=\d+, comm=panthor-client, seqno=\d+")]
# Besides the driver's own problem words (test_panthor_probe.BAD), an interrupt storm.
STORM = re.compile(r"nobody cared|Disabling IRQ|irqpoll|soft lockup|rcu.*stall", re.I)


def values(output: str) -> dict[str, str]:
    """`key=value` lines (first `=`) of the guest output; later lines win."""
    return dict(re.findall(r"^([\w.]+)=(.*)$", output, re.M))


def dmesg(output: str, phase: str) -> list[str]:
    tag = f"dmesg.{phase}| "
    return [l[len(tag):] for l in output.splitlines() if l.startswith(tag)]


def problems(lines: list[str], allowed=()) -> list[str]:
    """Lines of the GPU drivers (or kernel splats) that report a problem, and any sign of an
    interrupt storm, minus `allowed`."""
    return [l for l in lines if (RELEVANT.search(l) and BAD.search(l) or STORM.search(l))
            and "Kernel command line" not in l
            and not any(a.search(l) for a in (*ALLOWED, *allowed))]


def read_held_buffer(live: boot.Live, line: str) -> dict:
    """While the guest holds its binding: the VA through every user address space."""
    return {"read": live.gpu_read(HOLD_VA, 64), "status": live.status()}


SOAK = ServerSampling(r"^jobs\.jobs=", r"^jobs\.status=", limit_s=BOOT_TIMEOUT_S)


@pytest.fixture(scope="module")
def run():
    r = boot.boot(SCRIPT, BOOT_TIMEOUT_S, load_panthor=True,
                  watch={r"^hold\.holding=": read_held_buffer, **SOAK.watch()})
    print(f"kernel {r.kernel_version}, timings {r.timings}")
    print("\n".join(l for l in r.output.splitlines() if not l.startswith("dmesg.")))
    assert r.timings["total"] < BOOT_TIMEOUT_S
    return r, values(r.output)


def check_ok(v: dict[str, str], name: str) -> None:
    mine = "\n".join(f"{k}={x}" for k, x in v.items() if k.startswith(name + "."))
    assert v.get(f"{name}.status") == "0" and v.get(f"{name}.result") == "ok", mine


def test_single_job_stores_deadbeef_and_signals(run):
    r, v = run
    check_ok(v, "store")
    assert v["store.store.value"] == "0xdeadbeef"
    assert v["store.store.signalled"] == "1" and v["store.store.fence_status"] == "1"
    assert v["store.store.group_state"] == "0x0"
    # MOVE48, MOVE32, STORE_MULTIPLE, WAIT, then MOVE32, FLUSH_CACHE2, WAIT
    assert v["store.store.stream_size"] == str(7 * 8)


def test_counted_loop(run):
    r, v = run
    check_ok(v, "loop")
    assert v["loop.loop.count"] == "10000" and v["loop.loop.fence_status"] == "1"


def test_sync_set_and_wait_order_queues_and_groups(run):
    r, v = run
    check_ok(v, "chain")
    for part, marker in (("queues", 0x1111), ("groups", 0x2222)):
        p = f"chain.{part}."
        assert v[p + "waiter_blocked"] == "1", part        # submitted first, it waited
        assert int(v[p + "marker"], 16) == marker
        assert int(v[p + "waiter_saw"], 16) == marker + 1  # and ran after the signaller
        assert v[p + "sync_value"] == "1" and v[p + "order"] == "ok"
        assert v[p + "waiter.fence_status"] == "1" and v[p + "signaller.fence_status"] == "1"


def test_more_groups_than_slots_rotate_and_all_complete(run):
    r, v = run
    check_ok(v, "groups")
    assert v["groups.groups"] == str(GROUPS) and int(v["groups.csg_slots"]) < GROUPS
    assert v["groups.finished_before_release"] == "0"
    assert v["groups.results_right"] == str(GROUPS)
    assert v["groups.fences_bad"] == "0" and v["groups.group_states_bad"] == "0"
    # The server saw panthor rotate them: groups suspended and resumed from their buffers.
    assert re.search(r"CSG\d+ \w+ -> SUSPEND", r.server_log)
    assert re.search(r"CSG\d+ SUSPEND -> RESUME", r.server_log)


def test_ten_thousand_jobs_all_signalled(run):
    r, v = run
    check_ok(v, "jobs")
    assert v["jobs.jobs"] == str(JOBS)
    assert v["jobs.signalled"] == str(JOBS) and v["jobs.counter"] == str(JOBS)
    assert v["jobs.fence_errors"] == "0" and v["jobs.group_state"] == "0x0"
    print(f"{JOBS} jobs: {v['jobs.jobs_per_s']} jobs/s, latency p50 {v['jobs.latency_p50_us']} us"
          f" p99 {v['jobs.latency_p99_us']} us (8 in flight); one at a time: p50 "
          f"{v['lat.latency_p50_us']} us p99 {v['lat.latency_p99_us']} us")
    check_ok(v, "lat")
    assert v["lat.signalled"] == "300" and v["lat.counter"] == "300"
    assert float(v["jobs.jobs_per_s"]) > 0 and int(v["lat.latency_p50_us"]) > 0


def test_server_rss_fds_and_threads_stay_flat_over_ten_thousand_jobs(run):
    r, v = run
    g = assert_flat(SOAK.samples(r))
    print(f"{JOBS} guest jobs over {g['seconds']} s: server RSS {g['rss_kb_base']} -> {g['rss_kb_end']} KiB "
          f"({g['rss_growth']:+.2%}), fds {g['fds_base']}..{g['fds_max']}, threads {g['threads_base']}..{g['threads_max']}")


def test_cpu_write_after_vm_bind_is_visible_to_the_gpu_mmu(run):
    """Issue 3: VM_BIND of a buffer, then a CPU write, is what a GPU-side MMU translation of
    that VA returns (the server's own page-table walk, asked while the guest holds it)."""
    r, v = run
    check_ok(v, "hold")
    assert v["hold.readback"] == "ok" and v["hold.job.gpu_read"] == "ok"
    assert v["hold.held"] == str(HOLD_S)
    w = r.watched.get(r"^hold\.holding=")
    assert w is not None, "the guest never printed holding="
    assert w.done and w.error is None, w.error
    read = w.value["read"]
    assert read["va"] == HOLD_VA and read["size"] == 64
    want = struct.pack("<16I", *(HOLD_PATTERN + i for i in range(16))).hex()
    hits = [x for x in read["results"] if x.get("data") == want]
    assert hits and all(x["as"] != 0 for x in hits), read
    assert w.at < r.timings["cmd_exit"]


def test_fault_is_reported_and_the_device_recovers(run):
    r, v = run
    check_ok(v, "fault")
    assert v["fault.fault.va"] == f"{FAULT_VA:#x}"
    assert v["fault.fault.signalled"] == "1"
    assert int(v["fault.fault.fence_status"]) < 0               # the process gets an error
    assert v["fault.fault.state_fatal"] == "1" and v["fault.fault.fatal_queues"] == "0x1"
    assert v["fault.fault.resubmit_errname"] != "0" or \
        int(v.get("fault.fault.resubmit_fence_status", "-1")) < 0
    assert v["fault.recover.ok"] == "1" and v["fault.recover.value"] == "0xdeadbeef"
    lines = dmesg(r.output, "fault")
    text = "\n".join(lines)
    for rx in FAULT_LINES:
        assert rx.search(text), f"{rx.pattern!r} not in\n{text}"
    assert problems(lines, FAULT_ALLOWED) == [], "\n".join(problems(lines, FAULT_ALLOWED))


def test_hang_is_timed_out_and_the_device_recovers(run):
    r, v = run
    check_ok(v, "hang")
    assert v["hang.hang.signalled"] == "1" and int(v["hang.hang.fence_status"]) < 0
    assert v["hang.hang.state_timedout"] == "1" and v["hang.hang.stored"] == "0x0"
    assert 4500 <= int(v["hang.hang.elapsed_ms"]) < 20000    # panthor's 5 s job timeout
    assert v["hang.recover.ok"] == "1"
    lines = dmesg(r.output, "hang")
    assert any(rx.search(l) for rx in HANG_LINES for l in lines), "\n".join(lines)
    assert problems(lines, HANG_LINES) == [], "\n".join(problems(lines, HANG_LINES))


def test_dmesg_clean_outside_the_fault_and_hang_and_server_log_clean(run):
    r, v = run
    check_ok(v, "after")
    assert v["after.store.value"] == "0xdeadbeef"
    normal = dmesg(r.output, "normal")
    check_probe(get_profile("g610"), normal, r.console_log)
    assert problems(normal) == [], "\n".join(problems(normal))
    after = dmesg(r.output, "after")
    assert problems(after) == [], "\n".join(problems(after))
    log = r.server_log
    assert "Traceback" not in log, log[-3000:]
    assert not [l for l in log.splitlines() if "driver misuse" in l]
    # The only warnings: the faulting store's MMU fault and CS fatal; no errors at all.
    unexpected = [l for l in log.splitlines() if re.search(r" (WARNING|ERROR|CRITICAL): ", l)
                  and not re.search(rf"MMU fault AS\d+: TRANSLATION_FAULT_\d WRITE at VA "
                                    rf"{FAULT_VA:#x}|CSG\d+ CS\d+ fatal: exception 0xc\w info "
                                    rf"{FAULT_VA:#x}", l)]
    assert unexpected == [], "\n".join(unexpected)
