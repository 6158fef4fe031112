"""Fault injection drives the guest's stock panthor (Debian 7.2) down its error and recovery
paths, and the device works afterwards (issue 5, item 4).

One boot (about 35 s) goes through every server-side fault kind in phases; a phase arms its
fault at run time through the control socket (a `watch` callback on the guest's
`arm=<phase>` line, the guest waits a second), triggers it, keeps the driver's dmesg of the
phase (`dmesg -c` into a file, printed at the end so the console stays quiet while the host
arms faults), then runs a new job that must succeed:

- `mcu`: `mcu_boot_fail` with skip=1 from an `--inject-file` TOML (the probe's MCU boot goes
  through, the next one, the first runtime resume's, does not): "Failed to boot MCU
  (status=disabled)", "FW fast reset failed", then panthor's resume fallback "Fast reset
  failed, trying a slow reset" boots the MCU and the job that woke the GPU completes;
- `ping` (GPU held active): `drop_ping_ack` leaves panthor's 12 s firmware ping unanswered:
  "FW ping timeout, scheduling a reset", a GPU reset;
- `stall`: `stall_csg` leaves the CSG START of the job's group unacknowledged: "CSG 0
  update request timedout", a GPU reset;
- `asstuck`: `as_active_stuck` on the job's address space (AS1): "AS_ACTIVE bit stuck", a
  GPU reset;
- `mmu`: `mmu_fault` at the page of the job's store (VA 0x10000040): "Unhandled Page fault
  in AS1 at VA 0x...10000040", CS_FATAL TRANSLATION_FAULT_3, the job's fence fails, the
  group is fatal, no reset; a new group works;
- `gpu`: `gpu_fault` (GPU_BUS_FAULT at 0xdead000): "GPU Fault 0x00000080 (GPU_BUS_FAULT) at
  0x000000000dead000", logged only;
- `csfatal`: `cs_fatal` 0x41: CS_FATAL CS_UNRECOVERABLE, the job's fence fails, a GPU reset.

Then one short boot per firmware corruption (`boot --corrupt-firmware MODE`): the probe
fails with the driver's firmware error, the guest copies the good image back from
/lib/firmware/mali-good/ and re-binds panthor, the probe succeeds and a job runs.

The GPU is held active (`power/control` = on) from the ping phase on: with runtime PM left
to itself, an injection can land in the autosuspend that follows the previous job (e.g. an
AS_ACTIVE stuck in the MCU's AS0 during panthor_mmu_suspend), which is a different path.
"""

from __future__ import annotations

import re
import time

import pytest

from mali_regs.profiles import get_profile
from qemu import boot
from tests.integration.test_jobs import dmesg, problems, values
from tests.integration.test_panthor_probe import check_probe

pytestmark = pytest.mark.guest

BOOT_TIMEOUT_S = 170.0
GPU_DEV = "/sys/bus/platform/devices/10000000.gpu"
PWR = f"{GPU_DEV}/power"
STORE_VA = 0x10000040   # where panthor-client job-store writes (its session VA + 0x40)
GPU_FAULT_ADDRESS = 0xDEAD000

# name -> spec armed through the control socket when the guest prints arm=<name>
RUNTIME_SPECS = {
    "ping": "drop_ping_ack",
    "stall": "stall_csg",
    "asstuck": "as_active_stuck:as=1",
    "mmu": f"mmu_fault:va={STORE_VA & ~0xFFF:#x},size=0x1000",
    "gpu": f"gpu_fault:exception=0x80,address={GPU_FAULT_ADDRESS:#x}",
    "csfatal": "cs_fatal:exception=0x41",
}
INJECT_FILE = """\
# the probe's MCU boot goes through; the next one (the first runtime resume) fails once
[[inject]]
kind = "mcu_boot_fail"
skip = 1
count = 1
"""

SCRIPT = f"""
run() {{  # run NAME CMD...: CMD's output with NAME. in front of each line, then its status
    name=$1; shift
    {{ "$@"; echo "status=$?"; }} 2>&1 | while IFS= read -r l; do echo "$name.$l"; done
}}
cut() {{ dmesg -c > /tmp/dmesg.$1; echo $1 >> /tmp/phases; }}
arm() {{ echo "arm=$1"; sleep 1; }}   # the host arms the fault meanwhile
suspended() {{
    i=0
    while [ "$(cat {PWR}/runtime_status)" != suspended ] && [ $i -lt 50 ]; do
        sleep 0.1; i=$((i + 1))
    done
    echo "$1.pm=$(cat {PWR}/runtime_status)"
}}
cut probe
suspended mcu
run mcu.job panthor-client job-store
run mcu.after panthor-client job-store
cut mcu
echo on > {PWR}/control
arm ping
sleep 14
run ping.after panthor-client job-store
cut ping
arm stall
run stall.job panthor-client job-store
sleep 1
run stall.after panthor-client job-store
cut stall
arm asstuck
run asstuck.job panthor-client job-store
sleep 1
run asstuck.after panthor-client job-store
cut asstuck
arm mmu
run mmu.job panthor-client job-store
run mmu.after panthor-client job-store
cut mmu
arm gpu
run gpu.after panthor-client job-store
cut gpu
arm csfatal
run csfatal.job panthor-client job-store
sleep 1
run csfatal.after panthor-client job-store
cut csfatal
echo auto > {PWR}/control
echo done=1
for p in $(cat /tmp/phases); do sed "s/^/dmesg.$p| /" /tmp/dmesg.$p; done
"""

ERR = r"panthor 10000000\.gpu: \[drm\] \*ERROR\* "
# The driver's lines for each phase (strings of panthor.ko in Debian's 7.2 kernel, as it
# prints them): all must appear in that phase.
EXPECTED = {
    "mcu": [ERR + r"Failed to boot MCU \(status=disabled\)", ERR + r"FW fast reset failed",
            ERR + r"Fast reset failed, trying a slow reset"],
    "ping": [ERR + r"FW ping timeout, scheduling a reset"],
    "stall": [ERR + r"CSG 0 update request timedout"],
    "asstuck": [ERR + r"AS_ACTIVE bit stuck"],
    "mmu": [ERR + rf"Unhandled Page fault in AS1 at VA 0x0*{STORE_VA:X}\b",
            r"exception type 0xC3: TRANSLATION_FAULT_3", r"access type 0x3: WRITE",
            r"\[drm\] CS_FATAL: pid=\d+, comm=panthor-client",
            r"CS_FATAL\.EXCEPTION_TYPE: 0xc3 \(TRANSLATION_FAULT_3\)",
            rf"CS_FATAL_INFO\.EXCEPTION_DATA: {STORE_VA:#x}"],
    "gpu": [rf"panthor 10000000\.gpu: \[drm\] GPU Fault 0x00000080 \(GPU_BUS_FAULT\) at "
            rf"0x0*{GPU_FAULT_ADDRESS:x}\b"],
    "csfatal": [r"\[drm\] CS_FATAL: pid=\d+, comm=panthor-client",
                r"CS_FATAL\.EXCEPTION_TYPE: 0x41 \(CS_UNRECOVERABLE\)"],
}
# The continuation lines of those messages, also fine in their phase.
CONTINUATION = [r"raw fault status: 0x", r"decoded fault status:", r"source id 0x",
                r"CSG slot \d+ CS slot: \d+", r"CS_FATAL\.EXCEPTION_DATA: 0x0",
                r"CS_FATAL_INFO\.EXCEPTION_DATA: 0x"]
# GPU resets the server saw in each phase (panthor_device_schedule_reset -> soft reset).
RESETS = {"mcu": 0, "ping": 1, "stall": 1, "asstuck": 1, "mmu": 0, "gpu": 0, "csfatal": 1}
PHASES = list(EXPECTED)


def arm(spec: str):
    def callback(live: boot.Live, line: str) -> dict:
        before = live.status()          # the previous phase's end, as the server saw it
        answer = live.request({"cmd": "inject", "spec": spec})
        return {"before": before, "answer": answer, "t": time.monotonic() - live.t0}
    return callback


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    toml = tmp_path_factory.mktemp("inject") / "mcu.toml"
    toml.write_text(INJECT_FILE)
    t = time.monotonic()
    r = boot.boot(SCRIPT, BOOT_TIMEOUT_S, load_panthor=True, inject_file=toml,
                  watch={rf"^arm={name}$": arm(spec) for name, spec in RUNTIME_SPECS.items()})
    wall = time.monotonic() - t
    print(f"kernel {r.kernel_version}, timings {r.timings}, wall {wall:.1f} s")
    print("\n".join(l for l in r.output.splitlines() if not l.startswith("dmesg.probe|")))
    assert r.status == 0, r.output[-3000:]
    assert values(r.output).get("done") == "1", r.output[-3000:]
    for name in RUNTIME_SPECS:
        w = r.watched.get(rf"^arm={name}$")
        assert w is not None and w.done and w.error is None, (name, w)
        assert "error" not in w.value["answer"], (name, w.value["answer"])
    return r, values(r.output)


def phase_resets(r) -> dict[str, int]:
    """Server GPU resets per phase: the status at each arm (= the previous phase's end)."""
    marks = [0]  # before the mcu phase: the probe does none (checked below)
    for name in PHASES[1:]:
        marks.append(r.watched[rf"^arm={name}$"].value["before"]["resets"])
    marks.append(r.server_status["resets"])
    return {name: marks[i + 1] - marks[i] for i, name in enumerate(PHASES)}


def check_ok(v: dict[str, str], name: str) -> None:
    mine = "\n".join(f"{k}={x}" for k, x in v.items() if k.startswith(name + "."))
    assert v.get(f"{name}.status") == "0" and v.get(f"{name}.result") == "ok", mine
    assert v[f"{name}.store.value"] == "0xdeadbeef", mine


def test_probe_was_clean(run):
    r, v = run
    lines = dmesg(r.output, "probe")
    check_probe(get_profile("g610"), lines, r.console_log)
    assert problems(lines) == [], "\n".join(problems(lines))


@pytest.mark.parametrize("phase", PHASES)
def test_driver_reaction_and_recovery(run, phase):
    r, v = run
    lines = dmesg(r.output, phase)
    text = "\n".join(lines)
    for rx in EXPECTED[phase]:
        assert re.search(rx, text), f"{phase}: {rx!r} not in\n{text}"
    allowed = [re.compile(p) for p in EXPECTED[phase] + CONTINUATION]
    bad = problems(lines, allowed)
    assert bad == [], f"{phase}: unexpected\n" + "\n".join(bad)
    assert not re.search(r"WARNING:|Call trace|BUG:|Oops", text), text
    check_ok(v, f"{phase}.after")                          # the device works afterwards
    assert phase_resets(r)[phase] == RESETS[phase], (phase, phase_resets(r))


def test_mcu_boot_failure_recovered_by_the_resume_fallback(run):
    r, v = run
    assert v["mcu.pm"] == "suspended"                      # so job-store's resume boots the MCU
    check_ok(v, "mcu.job")                                 # the job that woke the GPU completes
    assert "fault injected: mcu_boot_fail (1/1)" in r.server_log


def test_jobs_caught_in_a_fault(run):
    r, v = run
    # Faults that kill the group: the submitting process sees its fence fail.
    for name in ("mmu", "csfatal"):
        assert v[f"{name}.job.status"] != "0", name
        assert int(v[f"{name}.job.store.fence_status"]) < 0, name
        assert v[f"{name}.job.store.value"] == "0x00000000", name
    # A stalled request or a stuck AS costs a reset; the job is not lost.
    for name in ("stall", "asstuck"):
        check_ok(v, f"{name}.job")


def test_every_injection_fired_once_and_the_server_log_is_clean(run):
    r, v = run
    armed = {a["kind"]: a for a in r.server_status["faults_armed"]}
    for kind in ("mcu_boot_fail", "drop_ping_ack", "stall_csg", "as_active_stuck[as=1]",
                 f"mmu_fault[va={STORE_VA & ~0xFFF:#x},size=0x1000]", "cs_fatal[exception=0x41]"):
        assert armed[kind]["fired"] == 1, (kind, armed)
    assert f"fault injected: GPU fault 0x80 at {GPU_FAULT_ADDRESS:#x}" in r.server_log
    log = r.server_log
    assert "Traceback" not in log, log[-3000:]
    assert not [l for l in log.splitlines() if "driver misuse" in l]
    assert not [l for l in log.splitlines() if re.search(r" (ERROR|CRITICAL): ", l)]
    timings = {name: round(r.watched[rf"^arm={name}$"].at, 1) for name in RUNTIME_SPECS}
    print(f"phases armed at (s since QEMU start): {timings}; guest command done at "
          f"{r.timings['cmd_exit']} s, boot total {r.timings['total']} s")


# --- firmware corruption: one short boot per mode ------------------------------------------

CORRUPT_SCRIPT = """
echo "before.render=$(test -e /dev/dri/renderD128 && echo yes || echo no)"
dmesg -c | sed 's/^/dmesg.bad| /'
cp -r /lib/firmware/mali-good/* /lib/firmware/
echo 10000000.gpu > /sys/bus/platform/drivers/panthor/bind
echo "bind.status=$?"
echo "after.render=$(test -e /dev/dri/renderD128 && echo yes || echo no)"
panthor-client job-store 2>&1 | sed 's/^/after./'
dmesg -c | sed 's/^/dmesg.good| /'
"""
CORRUPT_ERRORS = {
    "magic": ERR + r"Invalid firmware magic$",
    "version": ERR + r"Unsupported firmware binary header version 1\.\d+ \(expected 0\.x\)$",
    "truncate": ERR + r"Firmware image is truncated$",
    "flags": ERR + r"Firmware contains interface with unsupported flags \(0x[0-9a-f]*1[0-9a-f]{5}\)$",
}
PROBE_FAILED = r"panthor 10000000\.gpu: probe with driver panthor failed with error -22$"


@pytest.fixture(scope="module")
def prepared():
    return boot.setup()


@pytest.mark.parametrize("mode", list(CORRUPT_ERRORS))
def test_corrupt_firmware_fails_the_probe_and_the_guest_recovers(prepared, mode):
    t = time.monotonic()
    r = boot.boot(CORRUPT_SCRIPT, 90, load_panthor=True, prepared=prepared,
                  corrupt_firmware=mode)
    print(f"{mode}: timings {r.timings}, wall {time.monotonic() - t:.1f} s")
    assert r.status == 0, r.output[-3000:]
    v = values(r.output)
    bad = [l.split("| ", 1)[1] for l in r.output.splitlines() if l.startswith("dmesg.bad| ")]
    good = [l.split("| ", 1)[1] for l in r.output.splitlines() if l.startswith("dmesg.good| ")]
    text = "\n".join(bad)
    assert v["before.render"] == "no"
    assert re.search(CORRUPT_ERRORS[mode], text, re.M), text
    assert re.search(PROBE_FAILED, text, re.M), text
    assert not re.search(r"\[drm\] Initialized panthor", text)
    # recovery: the good image back, a re-bind, a clean probe, a job
    assert v["bind.status"] == "0" and v["after.render"] == "yes", r.output
    check_probe(get_profile("g610"), good, r.console_log)
    assert v["after.result"] == "ok" and v["after.store.value"] == "0xdeadbeef", r.output
    assert "Traceback" not in r.server_log
