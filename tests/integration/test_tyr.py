"""The Rust Tyr driver on the virtual Mali (issue 8): kernels of `mali-vdev kernel build`.

Debian's kernels build DRM as a module, which Tyr cannot use, so these tests boot kernels the
project builds from Debian's `linux-source-7.2` and `linux-source-7.3` (built on first use,
then cached; qemu/kernel_build.py). What each boot checks, against Tyr's own code in those
trees (drivers/gpu/drm/tyr):

- Tyr 7.2 and 7.3, with our firmware and with Arm's: "mali-g610 GPU_ID 0xa8670005 ..." and
  the Features line (gpu.rs), "[drm] Initialized panthor 1.5.0" (Tyr keeps panthor's name),
  renderD128; the guest client's GPU_INFO equals the profile (Tyr reads COHERENCY_FEATURES
  raw, selects no coherency and reports GPU_FEATURES 0 on arch 10); CSIF_INFO and
  VM_CREATE get EINVAL (Tyr's only ioctl is DEV_QUERY, answering only GPU_INFO).
- 7.3 in one boot: the server's status shows the MCU booted by Tyr and AS0 programmed;
  unbind leaves the MCU disabled and AS0 unmapped; rebind works; `mcu_boot_fail` armed
  through the control socket gives Tyr's "MCU failed to boot" and probe error -110, and a
  rebind without the fault recovers; then `mali-driver switch panthor` runs a job on the
  same device and `switch tyr` takes it back.
- panthor on the built kernel probes and runs a job; `trace diff` of a Tyr probe against a
  panthor probe shows the first divergence at the drivers' first register access: Tyr's
  probe starts with a soft reset (driver.rs: issue_soft_reset), panthor's with a read of
  GPU_ID (panthor_hw.c: panthor_hw_gpu_id_init).
- A copy of the 7.2 source whose Tyr prints one more line builds with `--source`, starting
  from the Debian build, and its boot prints the line.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mali_regs.profiles import get_profile
from qemu import boot, cache
from qemu import kernel_build as kb
from tests.integration.test_jobs import problems
from tests.integration.test_panthor_probe import check_probe, expected_gpu_info, values

pytestmark = pytest.mark.guest

TIMEOUT_S = 120.0
GPU = "/sys/bus/platform/devices/10000000.gpu"
G610 = get_profile("g610")
COHERENCY_NONE = 31            # DRM_PANTHOR_GPU_COHERENCY_NONE (include/uapi/drm/panthor_drm.h)
EINVAL = 22
EXTRA_LINE = "mali-vdev test: this Tyr was built from a user tree"

RUN = """
run() {  # run NAME CMD...: CMD's output with NAME. in front of each line, then its status
    name=$1; shift
    { "$@"; echo "status=$?"; } 2>&1 | while IFS= read -r l; do echo "$name.$l"; done
}
cut() { dmesg -c | sed "s/^/dmesg.$1| /"; }
"""

PROBE_SCRIPT = RUN + """
echo "render=$(test -c /dev/dri/renderD128 && echo yes || echo no)"
echo "driver=$(mali-driver current)"
run query panthor-client query
run vmbind panthor-client vm-bind --size 0x20000 --va 0x4000000 --pattern 0x5a5a0000
cut probe
"""


@functools.cache
def prepared(version: str) -> boot.Prepared:
    k = kb.build(version)
    return boot.setup(kernel=k.image, modules=k.modules)


def tagged(output: str, phase: str) -> list[str]:
    tag = f"dmesg.{phase}| "
    return [l[len(tag):] for l in output.splitlines() if l.startswith(tag)]


def check_tyr_probe(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert f"tyr 10000000.gpu: mali-g610 GPU_ID {G610.gpu_id:#x} major 0x" in text, text
    assert re.search(r"tyr 10000000\.gpu: Features: L2:0x[0-9a-f]+ Tiler:0x[0-9a-f]+ "
                     r"Mem:0x[0-9a-f]+ MMU:0x[0-9a-f]+ AS:0xff", text), text
    assert re.search(r"\[drm\] Initialized panthor 1\.5\.0 for 10000000\.gpu on minor 0",
                     text), text


def expected_tyr_gpu_info() -> dict[str, int]:
    want = {k: v for k, v in expected_gpu_info(G610).items()
            if k not in ("csg_slot_count", "cs_slot_count", "cs_reg_count",
                         "scoreboard_slot_count")}
    want["selected_coherency"] = COHERENCY_NONE
    want["gpu_features"] = 0   # gpu.rs: "GPU_FEATURES ... was introduced in arch 11.x"
    return want


@pytest.mark.parametrize("firmware", ["generated", "arm"])
@pytest.mark.parametrize("version", ["7.2", "7.3"])
def test_tyr_probes_and_answers_gpu_info(version, firmware):
    r = boot.boot(PROBE_SCRIPT, TIMEOUT_S, driver="tyr", prepared=prepared(version),
                  firmware=firmware)
    print(f"Tyr {version} {firmware}: kernel {r.kernel_version}, timings {r.timings}")
    assert r.status == 0, r.output[-3000:]
    v = values(r.output)
    lines = tagged(r.output, "probe")
    check_tyr_probe(lines)
    assert problems(lines) == [], "\n".join(problems(lines))
    assert v["render"] == "yes" and v["driver"] == "tyr", r.output
    q = {k[len("query."):]: x for k, x in v.items() if k.startswith("query.")}
    assert q["driver"] == "panthor"   # the DRM name Tyr registers
    got = {k: int(q[k], 0) for k in expected_tyr_gpu_info()}
    assert got == expected_tyr_gpu_info()
    assert re.search(rf"^query\.error=DEV_QUERY_CSIF_INFO errno={EINVAL} ", r.output, re.M)
    assert re.search(rf"^vmbind\.error=VM_CREATE errno={EINVAL} ", r.output, re.M)
    assert "Traceback" not in r.server_log
    if version == "7.3":
        st = r.server_status
        assert st["mcu_status"] == "ENABLED" and st["boots"] == 1, st
    else:   # 7.2's Tyr has no firmware, MMU or MCU code
        assert r.server_status["boots"] == 0, r.server_status


LIFECYCLE_SCRIPT = RUN + """
echo "driver=$(mali-driver current)"
echo probed=1; sleep 1
cut probe
mali-driver unbind; echo "unbind=$?"
echo unbound=1; sleep 1
mali-driver bind tyr; echo "rebind=$?"
echo rebound=1; sleep 1
cut rebind
echo arm=mcu; sleep 1
mali-driver unbind
mali-driver bind tyr; echo "failbind=$?"
echo "render_after_fail=$(test -c /dev/dri/renderD128 && echo yes || echo no)"
cut fail
mali-driver bind tyr; echo "recover=$?"
run query panthor-client query
cut recover
mali-driver switch panthor; echo "to_panthor=$?"
echo "driver_now=$(mali-driver current)"
run job panthor-client job-store
cut panthor
mali-driver switch tyr; echo "to_tyr=$?"
echo "driver_end=$(mali-driver current)"
cut back
"""


def snapshot(live: boot.Live, line: str) -> dict:
    return live.status()


def arm_mcu_boot_fail(live: boot.Live, line: str) -> dict:
    return live.request({"cmd": "inject", "spec": "mcu_boot_fail"})


def as0(status: dict) -> dict | None:
    return next((a for a in status["address_spaces"] if a["as"] == 0), None)


def test_tyr_73_mcu_lifecycle_fault_and_driver_switch():
    r = boot.boot(LIFECYCLE_SCRIPT, TIMEOUT_S, driver="tyr", prepared=prepared("7.3"),
                  watch={"^probed=1$": snapshot, "^unbound=1$": snapshot,
                         "^rebound=1$": snapshot, "^arm=mcu$": arm_mcu_boot_fail})
    print(r.output)
    assert r.status == 0, r.output[-3000:]
    v = values(r.output)
    for pattern in ("^probed=1$", "^unbound=1$", "^rebound=1$", "^arm=mcu$"):
        w = r.watched[pattern]
        assert w.done and w.error is None, (pattern, w)
    probed, unbound, rebound = (r.watched[p].value for p in
                                ("^probed=1$", "^unbound=1$", "^rebound=1$"))
    # Tyr 7.3 booted the MCU through the VM it built on AS0
    check_tyr_probe(tagged(r.output, "probe"))
    assert probed["mcu_status"] == "ENABLED" and probed["boots"] == 1, probed
    a = as0(probed)
    assert a is not None and a["transtab"] != 0 and a["faults"] == 0, probed
    # unbind: the MCU disabled and AS0 unmapped
    assert v["unbind"] == "0"
    assert unbound["mcu_status"] == "DISABLED", unbound
    assert as0(unbound) is None, unbound["address_spaces"]
    # rebind boots it again
    assert v["rebind"] == "0" and rebound["mcu_status"] == "ENABLED"
    assert rebound["boots"] == 2 and as0(rebound) is not None, rebound
    # the injected boot failure: Tyr's message and -ETIMEDOUT from its probe
    assert "error" not in r.watched["^arm=mcu$"].value, r.watched["^arm=mcu$"].value
    fail = "\n".join(tagged(r.output, "fail"))
    assert v["failbind"] != "0" and v["render_after_fail"] == "no", r.output
    assert re.search(r"tyr 10000000\.gpu: MCU failed to boot", fail), fail
    assert re.search(r"tyr 10000000\.gpu: probe with driver tyr failed with error -110", fail), fail
    # the fault fired once: the next bind recovers
    assert v["recover"] == "0" and v["query.driver"] == "panthor", r.output
    check_tyr_probe(tagged(r.output, "recover"))
    # the same device under panthor, then back to Tyr
    assert v["to_panthor"] == "0" and v["driver_now"] == "panthor", r.output
    check_probe(G610, tagged(r.output, "panthor"), r.console_log)
    assert v["job.status"] == "0" and v["job.store.value"] == "0xdeadbeef", r.output
    assert v["to_tyr"] == "0" and v["driver_end"] == "tyr", r.output
    check_tyr_probe(tagged(r.output, "back"))
    assert "Traceback" not in r.server_log


PANTHOR_SCRIPT = RUN + """
echo "driver=$(mali-driver current)"
run query panthor-client query
run job panthor-client job-store
cut probe
"""


def trace_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mali_vdev", "trace", *args],
                          capture_output=True, text=True, timeout=120)


def test_panthor_on_the_built_kernel_and_trace_diff_against_tyr(tmp_path):
    traces = {}
    for driver, script in (("panthor", PANTHOR_SCRIPT), ("tyr", PROBE_SCRIPT)):
        traces[driver] = tmp_path / f"{driver}.trace"
        r = boot.boot(script, TIMEOUT_S, driver=driver, prepared=prepared("7.3"),
                      trace=traces[driver])
        assert r.status == 0, r.output[-3000:]
        v = values(r.output)
        assert v["driver"] == driver
        if driver == "panthor":  # a subset of the stock-kernel tests, on our kernel
            check_probe(G610, tagged(r.output, "probe"), r.console_log)
            assert v["query.status"] == "0" and int(v["query.gpu_id"], 0) == G610.gpu_id
            assert v["job.status"] == "0" and v["job.store.value"] == "0xdeadbeef", r.output
    d = trace_cli("diff", str(traces["tyr"]), str(traces["panthor"]))
    print(d.stdout)
    assert d.returncode == 1, d.stderr
    # both traces start with the drivers' first access: Tyr's soft reset, panthor's GPU_ID read
    m = re.search(r"first divergence at register access #1 .*\n((?:  - .*\n)+)((?:  \+ .*\n)+)",
                  d.stdout)
    assert m, d.stdout
    # GPU_COMMAND 0x101: RESET (0x01) with the soft-reset mode in bits 8+ (Tyr's
    # GPU_COMMAND::reset(ResetMode::SoftReset); panthor's GPU_SOFT_RESET, panthor_gpu_regs.h)
    assert m.group(1).splitlines()[0] == ("  - W GPU_COMMAND = 0x00000101 (COMMAND=RESET, "
                                          "RESET_MODE=SOFT_RESET)"), m.group(1)
    assert m.group(2).splitlines()[0].startswith("  + R GPU_ID = 0x"), m.group(2)
    # the summary: what panthor does that Tyr 7.3 does not (no IRQ handler: no IRQ masks;
    # no scheduler: no doorbells) and the other way round (Tyr's probe resets the GPU,
    # panthor 1.9's does not; Tyr's MCU VM uses other memory attributes)
    only_tyr, only_panthor = d.stdout.split("only in ")[1:3]
    assert re.search(r"^\s+\d+x W GPU_IRQ_MASK = ", only_panthor, re.M), only_panthor
    assert re.search(r"^\s+\d+x W DOORBELL\[0\] = 0x00000001 \(RING\)", only_panthor, re.M)
    assert re.search(r"^\s+1x W GPU_COMMAND = 0x00000101 \(COMMAND=RESET, "
                     r"RESET_MODE=SOFT_RESET\)", only_tyr, re.M), only_tyr
    assert "GPU_IRQ_MASK" not in only_tyr


def user_tree() -> Path:
    """A copy of Debian's 7.2 source (hard links: cheap) whose Tyr prints one more line
    after its probe; kept in the cache so later runs rebuild nothing."""
    src = kb.debian_source("7.2")
    dest = cache.cache_root() / "test-trees" / f"tyr-extra-line-{src.kernelversion}"
    driver = dest / "drivers/gpu/drm/tyr/driver.rs"
    if not (dest / ".complete").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(src.tree), str(dest)], check=True)
        text = driver.read_text()
        anchor = 'dev_info!(pdev, "Tyr initialized correctly.\\n");'
        assert anchor in text, "Tyr 7.2's probe line moved; update the test"
        new = text.replace(anchor, anchor + f'\n        dev_info!(pdev, "{EXTRA_LINE}\\n");')
        driver.unlink()             # a hard link: never write through to Debian's tree
        driver.write_text(new)
        (dest / ".complete").write_text("")
    return dest


def test_user_source_tree_builds_incrementally_and_boots():
    tree = user_tree()
    t = time.monotonic()
    k = kb.build(source=tree)
    print(f"user tree built in {time.monotonic() - t:.0f} s: {kb.describe(k)}")
    assert k.source == str(tree) and k.has_tyr
    base = kb.build("7.2")
    assert k.seeded_from == base.name      # started from the Debian build, not from nothing
    r = boot.boot(PROBE_SCRIPT, TIMEOUT_S, driver="tyr", kernel=k.image, modules=k.modules)
    assert r.status == 0, r.output[-3000:]
    text = "\n".join(tagged(r.output, "probe"))
    assert f"tyr 10000000.gpu: {EXTRA_LINE}" in text, text
    check_tyr_probe(tagged(r.output, "probe"))


def test_debian_kernel_refuses_tyr_with_the_way_out():
    with pytest.raises(RuntimeError, match=r"no tyr\.ko.*mali-vdev kernel build"):
        boot.boot("true", 30, driver="tyr")



def test_a_fragment_that_breaks_the_guest_fails_at_the_config_step(tmp_path):
    bad = tmp_path / "no-rust.config"
    bad.write_text("# CONFIG_RUST is not set\n")
    with pytest.raises(kb.KernelBuildError) as e:
        kb.build("7.2", fragments=[bad])
    assert e.value.step == "config"
    assert "CONFIG_RUST=n (needs y)" in str(e.value) and "CONFIG_DRM_TYR=n" in str(e.value)
    assert e.value.log is not None and e.value.log.is_file()
    assert f"the full log: {e.value.log}" in str(e.value)
