"""The guest's stock panthor probes the virtual Mali, and its uAPI answers (issue 3).

Real boots of the Debian arm64 guest with `--load-panthor`; the guest side is driven by
`/usr/bin/panthor-client` (qemu/guest_tools/panthor_client.c), whose `key=value` output
is compared with the GPU profile the server ran (`mali_regs.profiles`).

- one boot per firmware choice (`generated`, our free image; `arm`, Debian's): probe
  messages, no error line, DEV_QUERY values = the profile's, VM_BIND + CPU write, the bad
  ioctls fail with panthor's errnos; with `generated` the same boot also goes through
  22 forced runtime suspend/resume cycles and then stays up 40 s with the firmware
  running (three of panthor's 12 s pings) while a VM binding is held; the server's
  control-socket status confirms the MCU boots and the pings.
- one boot per other profile: panthor names each GPU as the profile says.
"""

from __future__ import annotations

import re

import pytest

from mali_regs.profiles import PROFILES, get_profile
from qemu import boot

pytestmark = pytest.mark.guest

GPU_DEV = "/sys/bus/platform/devices/10000000.gpu"
PM_CYCLES = 22
STAY_UP_S = 40          # three firmware pings (every 12 s) with the device held active
PER_BOOT_TIMEOUT_S = 170.0

# dmesg lines worth checking: the GPU's drivers, plus kernel splats from anywhere.
RELEVANT = re.compile(r"panthor|\[drm\]|\bdrm\b|mali|WARNING:|BUG:|Oops|Call trace|"
                      r"Internal error|Kernel panic", re.I)
# What a problem looks like in them (from panthor.ko's own strings): DRM errors
# ("[drm] *ERROR* Invalid firmware magic"), timeouts ("FW ping timeout, scheduling a
# reset", "Timed out waiting for MCU to halt"), failures ("Failed to boot MCU ..."),
# resets, faults ("GPU Fault ...", "unhandled Page fault"), CS_FATAL, refused power
# requests ("... domain not allowed"), error returns and kernel warnings.
BAD = re.compile(r"\*ERROR\*|time(d)?[ -]?out|fail|\breset|fault|unhandled|fatal|"
                 r"not allowed|unusable|corrupt|\berror -?E[A-Z]+|"
                 r"WARNING:|BUG:|Oops|Call trace|Internal error|Kernel panic", re.I)
# Benign: the virt machine's DT gives the GPU no regulator (panthor goes on without one).
ALLOWED = [re.compile(r"error -ENODEV: _opp_set_regulators: no regulator \(mali\) found"),
           # mali-vdev's own small kernels have no thermal framework: panthor says so at
           # info level and goes on (panthor_devfreq.c)
           re.compile(r"\] Failed to register cooling device$")]

QUERY_SCRIPT = """
run() {  # run NAME CMD...: CMD's output with NAME. in front of each line, then its status
    name=$1; shift
    "$@" > /tmp/$name.out 2>&1
    st=$?
    sed "s/^/$name./" /tmp/$name.out
    echo "$name.status=$st"
}
echo "render=$(test -c /dev/dri/renderD128 && echo yes || echo no)"
run query panthor-client query
run vmbind panthor-client vm-bind --size 0x20000 --va 0x4000000 --pattern 0x5a5a0000
run bad panthor-client bad-ioctls
"""

PM_SCRIPT = f"""
d={GPU_DEV}/power
echo "pm.active_before=$(cat $d/runtime_active_time)"
echo "pm.suspended_before=$(cat $d/runtime_suspended_time)"
resumed=0; suspended=0; i=0
while [ $i -lt {PM_CYCLES} ]; do  # a cycle counts when the state really changed
    before=$(cat $d/runtime_status)
    echo on > $d/control; sleep 0.2
    [ $before = suspended ] && [ "$(cat $d/runtime_status)" = active ] && resumed=$((resumed + 1))
    echo auto > $d/control; sleep 0.3
    [ "$(cat $d/runtime_status)" = suspended ] && suspended=$((suspended + 1))
    i=$((i + 1))
done
echo "pm.resumed=$resumed"
echo "pm.suspended=$suspended"
# Stay up with the firmware running (panthor pings it every 12 s while the GPU is
# active) and a VM binding held by a client the whole time.
echo on > $d/control
echo "stay.start=$(cut -d' ' -f1 /proc/uptime)"
panthor-client vm-bind --size 0x10000 --va 0x8000000 --pattern 0x11110000 --hold {STAY_UP_S} \\
    > /tmp/hold.out 2>&1 &
holder=$!
sleep {STAY_UP_S + 1}
wait $holder
echo "hold.status=$?"
sed "s/^/hold./" /tmp/hold.out
echo "stay.end=$(cut -d' ' -f1 /proc/uptime)"
echo "pm.status_on=$(cat $d/runtime_status)"
echo auto > $d/control; sleep 0.3
echo "pm.status_auto=$(cat $d/runtime_status)"
run query2 panthor-client query
echo "pm.active_after=$(cat $d/runtime_active_time)"
echo "pm.suspended_after=$(cat $d/runtime_suspended_time)"
"""

DMESG_SCRIPT = """
dmesg | sed 's/^/dmesg| /'
"""


def values(output: str) -> dict[str, str]:
    """`key=value` lines (first `=`) of the guest output; later lines win."""
    return dict(re.findall(r"^([\w.]+)=(.*)$", output, re.M))


def dmesg(output: str) -> list[str]:
    return [l[len("dmesg| "):] for l in output.splitlines() if l.startswith("dmesg| ")]


def bad_lines(lines: list[str]) -> list[str]:
    return [l for l in lines if RELEVANT.search(l) and BAD.search(l)
            and not any(a.search(l) for a in ALLOWED) and "Kernel command line" not in l]


def check_probe(profile, lines: list[str], console: str) -> None:
    text = "\n".join(lines)
    assert f"{profile.name} id 0x{profile.product_id:x} " in text, text
    assert re.search(r"CSF FW using interface v\d+\.\d+\.\d+", text), text
    assert re.search(r"\[drm\] Initialized panthor \d+\.\d+\.\d+ for 10000000\.gpu", text), text
    assert bad_lines(lines) == [], "\n".join(bad_lines(lines))
    assert not re.search(r"mali-vdev: insmod \S+ failed", console), console[-3000:]


def check_server_log(log: str) -> None:
    assert "Traceback" not in log, log[-3000:]
    misuse = [l for l in log.splitlines() if "driver misuse" in l]
    assert misuse == [], "\n".join(misuse)


def expected_gpu_info(profile) -> dict[str, int]:
    """GPU_INFO fields as the profile's registers (the names panthor-client prints)."""
    v = profile.value
    out = {
        "gpu_id": v("GPU_ID"), "gpu_rev": v("GPU_REVID"), "csf_id": v("CSF_ID"),
        "l2_features": v("L2_FEATURES"), "tiler_features": v("TILER_FEATURES"),
        "mem_features": v("MEM_FEATURES"), "mmu_features": v("MMU_FEATURES"),
        "thread_features": v("THREAD_FEATURES"), "max_threads": v("THREAD_MAX_THREADS"),
        "thread_max_workgroup_size": v("THREAD_MAX_WORKGROUP_SIZE"),
        "thread_max_barrier_size": v("THREAD_MAX_BARRIER_SIZE"),
        "as_present": v("AS_PRESENT"), "shader_present": v("SHADER_PRESENT"),
        "l2_present": v("L2_PRESENT"), "tiler_present": v("TILER_PRESENT"),
        "core_features": v("CORE_FEATURES"), "gpu_features": v("GPU_FEATURES"),
        # The server runs coherent (the DT node is dma-coherent): ACE-Lite on top.
        "coherency_features": v("COHERENCY_FEATURES") | 1,
        "selected_coherency": 0,  # DRM_PANTHOR_GPU_COHERENCY_ACE_LITE
        "csg_slot_count": profile.csg_slots, "cs_slot_count": profile.cs_per_csg,
        "cs_reg_count": profile.cs_reg_count, "scoreboard_slot_count": profile.scoreboards,
    }
    for i in range(4):
        out[f"texture_features{i}"] = v(f"TEXTURE_FEATURES[{i}]")
    return out


def check_query(vals: dict[str, str], prefix: str, profile, timestamp_hz: int) -> None:
    q = {k[len(prefix):]: val for k, val in vals.items() if k.startswith(prefix)}
    assert q.get("status") == "0" and q.get("result") == "ok", q
    assert q["driver"] == "panthor"
    got = {k: int(q[k], 0) for k in expected_gpu_info(profile)}
    assert got == expected_gpu_info(profile)
    assert int(q["unpreserved_cs_reg_count"]) == 4
    # TIMESTAMP_INFO: the frequency the guest reports (its CNTFRQ) is what the launcher
    # gave the server, and the GPU timestamp advances at that rate against CPU time.
    assert int(q["timestamp_freq"]) == timestamp_hz
    t0, t1 = int(q["timestamp0"]), int(q["timestamp1"])
    assert t1 > t0 > 0
    cpu_ns = int(q["cpu_delta_ns"])
    assert cpu_ns > 0
    rate = (t1 - t0) * 1e9 / cpu_ns
    assert abs(rate - timestamp_hz) / timestamp_hz < 0.05, (rate, timestamp_hz)
    assert int(q["cycle_count1"]) > int(q["cycle_count0"])


@pytest.fixture(scope="module")
def prepared():
    return boot.setup()


def run(prepared, script: str, firmware: str = "generated", gpu: str | None = None,
        timeout: float = PER_BOOT_TIMEOUT_S) -> boot.BootResult:
    r = boot.boot(script, timeout, gpu=gpu, load_panthor=True, prepared=prepared,
                  firmware=firmware)
    print(f"{r.gpu} {r.firmware}: kernel {r.kernel_version}, timings {r.timings}")
    return r


@pytest.mark.parametrize("firmware", ["generated", "arm"])
def test_g610_probe_uapi_and_power_cycles(prepared, firmware):
    profile = get_profile("g610")
    long_run = firmware == "generated"
    r = run(prepared, QUERY_SCRIPT + (PM_SCRIPT if long_run else "") + DMESG_SCRIPT,
            firmware)
    assert r.status == 0, r.output[-4000:]
    vals = values(r.output)
    lines = dmesg(r.output)
    check_probe(profile, lines, r.console_log)
    check_server_log(r.server_log)
    assert r.timestamp_hz == 62_500_000  # cortex-a72 under QEMU

    assert vals["render"] == "yes"
    check_query(vals, "query.", profile, r.timestamp_hz)

    assert vals["vmbind.status"] == "0" and vals["vmbind.result"] == "ok", r.output
    assert re.search(r"^vmbind\.va=0x4000000 size=0x20000 pattern=0x5a5a0000$", r.output, re.M)
    assert vals["vmbind.readback"] == "ok" and vals["vmbind.vm_state"] == "0"
    assert vals["vmbind.unmapped"] == "0x4000000"

    assert vals["bad.status"] == "0", r.output
    assert vals["bad.bad_ioctls_failed"] == "0"
    assert int(vals["bad.bad_ioctls_cases"]) >= 20
    assert not re.search(r"^bad\.case=.* ok=0$", r.output, re.M)

    if not long_run:
        return
    assert int(vals["pm.resumed"]) >= 20 and int(vals["pm.suspended"]) >= 20, vals
    assert int(vals["pm.active_after"]) > int(vals["pm.active_before"])
    assert int(vals["pm.suspended_after"]) > int(vals["pm.suspended_before"])
    assert vals["pm.status_on"] == "active" and vals["pm.status_auto"] == "suspended"
    stayed = float(vals["stay.end"]) - float(vals["stay.start"])
    assert stayed >= 36.0, stayed  # three 12 s pings
    assert vals["hold.status"] == "0" and vals["hold.held"] == str(STAY_UP_S), r.output
    check_query(vals, "query2.", profile, r.timestamp_hz)
    # The server's side of it: the emulated MCU booted at probe and at every resume, and
    # answered panthor's 12 s firmware pings while the GPU stayed up.
    st = r.server_status
    assert st is not None, "no status from the server's control socket"
    print(f"server status: boots {st['boots']}, pings {st['pings']}, resets {st['resets']}")
    assert st["boots"] >= 1 + int(vals["pm.resumed"]) and st["pings"] >= 3, st


OTHER_PROFILES = [p for p in PROFILES if p.key != "g610"]


def test_every_other_profile_is_named_by_panthor(prepared):
    failures = []
    for profile in OTHER_PROFILES:
        r = run(prepared, "echo render=$(test -c /dev/dri/renderD128 && echo yes || echo no)\n"
                + DMESG_SCRIPT, gpu=profile.key, timeout=90)
        try:
            assert r.status == 0 and values(r.output)["render"] == "yes", r.output[-2000:]
            check_probe(profile, dmesg(r.output), r.console_log)
            check_server_log(r.server_log)
        except AssertionError as e:
            failures.append(f"{profile.key}: {e}")
    assert not failures, "\n\n".join(failures)
