"""Debian's Mesa on the virtual Mali, compared byte for byte with Mesa's CPU drivers (issue 13).

One boot with Debian sid's Mesa in the guest (`guest_packages.MESA_PACKAGES`, other GPUs'
Vulkan drivers left out) runs our program `mesa-cases` (qemu/guest_tools/mesa_cases.c) on:

- lavapipe ("llvmpipe" physical device) and panvk ("Mali-G610") — Vulkan: vkCmdFillBuffer,
  vkCmdUpdateBuffer, vkCmdCopyBuffer; compute dispatches (integer and float arithmetic, loops,
  per-lane divergent branches, shared memory with barriers, atomics, several workgroup sizes
  and counts); a render pass cleared on load with no draw, copied to a buffer;
- llvmpipe (LIBGL_ALWAYS_SOFTWARE=1) and panfrost — GLES 3.1 on surfaceless EGL:
  glClear + glReadPixels with PAN_MESA_DEBUG=noafbc, glDispatchCompute on an SSBO.
  GL clears to AFBC by default and glReadPixels reads AFBC back through a draw (RUN_IDVS,
  vertex and fragment shading, AFBC texturing: not emulated, beyond issue 13). The noafbc
  clears are written back linear or u-interleaved and read on the CPU. With the default
  options, last in the boot, the clear must fault loudly at RUN_IDVS, naming it, and nowhere
  else (a silent wrong result would be worse than the fault).

Each case prints the size and FNV-1a 64 digest of its result buffer. The CPU drivers are the
oracle for the GPU; they are checked themselves against every case's expected bytes, computed
here from the case's definition and the same inputs (numpy: uint32 wrap-around, int32 shifts,
float32 rounding per operation). On the GPU side each case must succeed (no CS fault, no
device lost), match, leave dmesg clean, and all Vulkan cases run on one VkDevice (the same
panthor group runs the next case).
"""

from __future__ import annotations

import re
import struct
from collections import Counter

import numpy as np
import pytest

from qemu import boot, guest_packages, tools
from tests.integration.test_jobs import dmesg, problems, values

pytestmark = pytest.mark.guest

BOOT_TIMEOUT_S = 600.0
VK_CASES = ["fill", "update", "copy", "arith", "loop", "branch", "shared", "atomics",
            "ids_1x1x1_1x1x1", "ids_64x1x1_3x1x1", "ids_8x8x1_2x3x4", "ids_4x4x4_1x2x3",
            "ids_7x3x1_3x2x2", "ids_256x1x1_5x1x1", "ids_1x1x1_37x1x1",
            "clear_64x48", "clear_61x37"]
GL_CASES = ["gl_clear_64x48", "gl_clear_61x37", "gl_compute"]
CLEARS = ["gl_clear_64x48", "gl_clear_61x37"]
# (driver run, what it runs on, output prefix)
VK_RUNS = {"lvp": "llvmpipe", "mali": "Mali"}

SCRIPT = """
run() {  # run NAME CMD...: CMD's output, live, with NAME. in front of each line; its status
    name=$1; shift
    { "$@"; echo "status=$?"; } 2>&1 | while IFS= read -r l; do echo "$name.$l"; done
}
cut_dmesg() { dmesg -c | sed "s/^/dmesg.$1| /"; }
export MESA_SHADER_CACHE_DISABLE=true
cut_dmesg boot
run vk.lvp mesa-cases vk llvmpipe
cut_dmesg lvp
run vk.mali mesa-cases vk Mali
cut_dmesg mali
run gl.llvm env LIBGL_ALWAYS_SOFTWARE=1 mesa-cases gl
cut_dmesg llvm
run gl.pan mesa-cases gl gl_compute
cut_dmesg pan
run gl.noafbc env PAN_MESA_DEBUG=noafbc mesa-cases gl gl_clear_64x48 gl_clear_61x37
cut_dmesg noafbc
free -m | sed 's/^/mem| /'
run gl.afbc mesa-cases gl gl_clear_64x48
cut_dmesg afbc
"""
# What a GPU job that went wrong leaves in dmesg, besides test_panthor_probe.BAD's words.
GPU_TROUBLE = re.compile(r"CS_FATAL|CS_FAULT|FATAL_FAULT|Unhandled Page fault|job timeout|"
                         r"device lost|GPU reset|group .* (faulted|killed)", re.I)


# --- the oracle for the oracle: expected bytes from the cases' definitions ----------------

def xorshift32(n: int, seed: int) -> np.ndarray:
    """mesa_cases.c fill_random()."""
    out = np.empty(n, np.uint32)
    x = seed or 1
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x
    return out


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def fill_expected() -> bytes:
    b = bytearray(xorshift32(65536 // 4, 11).tobytes())
    b[256:256 + 16384] = struct.pack("<I", 0xA5C3F00D) * (16384 // 4)
    b[40000:] = struct.pack("<I", 0x01020304) * ((65536 - 40000) // 4)
    return bytes(b)


def update_expected() -> bytes:
    b = bytearray(xorshift32(16384 // 4, 13).tobytes())
    data = xorshift32(1024, 12)
    b[64:64 + 4096] = data.tobytes()
    b[8192:8192 + 12] = data[7:10].tobytes()
    return bytes(b)


def copy_expected() -> bytes:
    src, dst = xorshift32(8192, 14).tobytes(), bytearray(xorshift32(8192, 15).tobytes())
    for s, d, n in ((0, 128, 16000), (16387, 20003, 1001), (30000, 24000, 12)):
        dst[d:d + n] = src[s:s + n]
    return bytes(dst)


def ids_expected(local: tuple[int, int, int], groups: tuple[int, int, int]) -> bytes:
    """ids.comp: at the linear global index, (workgroup ID, local ID, local index, count)."""
    pack = lambda v: v[0] | v[1] << 10 | v[2] << 20  # noqa: E731
    n = [local[i] * groups[i] for i in range(3)]
    out = np.zeros((n[0] * n[1] * n[2], 4), np.uint32)
    for gz in range(n[2]):
        for gy in range(n[1]):
            for gx in range(n[0]):
                wg = (gx // local[0], gy // local[1], gz // local[2])
                lo = (gx % local[0], gy % local[1], gz % local[2])
                index = lo[0] + local[0] * (lo[1] + local[1] * lo[2])
                out[gx + n[0] * (gy + n[1] * gz)] = (pack(wg), pack(lo), index, pack(groups))
    return out.tobytes()


U32 = np.uint32


def arith_expected(n: int = 1000, k: int = 0x9E3779B9, scale: float = 1.5) -> bytes:
    """arith.comp in numpy: uint32 wrap-around, int32 shifts and division, float32 rounding
    per operation (the shader's `precise`)."""
    a = xorshift32(n, 21)
    i = np.arange(n)
    x, y = a, a[(i * 7 + 3) % n]
    sx, sy = x.view(np.int32), y.view(np.int32)
    o = np.zeros((n, 8), U32)
    with np.errstate(over="ignore"):
        o[:, 0] = x * y + U32(k)
        o[:, 1] = (x >> (y & 31)) ^ (y << U32(3)) ^ ~x
        o[:, 2] = (sx >> (y & 31).astype(np.int32)).view(U32)
        o[:, 3] = np.minimum(sx, sy).view(U32) + np.maximum(sx, sy).view(U32) * U32(3)
        o[:, 4] = np.where(y != 0, x // np.maximum(y, 1), x % U32(17))
        d = (sy & 0xFFFF) | 1
        o[:, 5] = (np.trunc(sx.astype(np.int64) / d).astype(np.int64)
                   .astype(np.uint64) & 0xFFFFFFFF).astype(U32) ^ (x % d.view(U32))
    f32 = np.float32
    fx = (sx & 0xFFFFF).astype(f32) * f32(scale)
    fy = (y >> 12).astype(f32) - f32(1234.5)
    o[:, 6] = (fx * fy + fx).view(U32)
    o[:, 7] = np.floor(fy * f32(0.125)).astype(np.int32).view(U32) ^ (
        np.maximum(fx, fy) - np.abs(fy)).view(U32)
    return o.tobytes()


def loop_expected(n: int = 512) -> bytes:
    a = [int(v) for v in xorshift32(n, 22)]
    out = []
    for i in range(n):
        x, steps = a[i] % 1000 + 1, 0
        while x != 1 and steps < 500:
            x = 3 * x + 1 if x & 1 else x >> 1
            steps += 1
        acc = 0
        for j in range(i & 15):
            acc = ((acc * 31 + j) & 0xFFFFFFFF) ^ a[(i + j) % n]
        out += [steps, acc]
    return struct.pack(f"<{2 * n}I", *out)


def branch_expected(n: int = 640, local: int = 64) -> bytes:
    out = []
    for i, x in enumerate(int(v) for v in xorshift32(n, 23)):
        lane = i % local
        if lane % 3 == 0:
            r = (x * 3) & 0xFFFFFFFF
            r = r ^ 0x55 if x & 1 else (r + 7) & 0xFFFFFFFF
        elif lane & 4:
            r = (x >> 1) + sum(j * lane for j in range(x & 7))
        else:
            r = ~x & 0xFFFFFFFF
            if lane > 40 and x & 2:
                r = 0xEEEEEEEE          # returned early: the host's pattern stays
        out.append(r)
    return struct.pack(f"<{n}I", *out)


def shared_expected(n: int = 768, local: int = 128) -> bytes:
    a = xorshift32(n, 24).reshape(-1, local)
    total = (a >> 4).astype(np.uint64).sum(axis=1) & 0xFFFFFFFF
    o = np.zeros((a.shape[0], local, 2), U32)
    o[:, :, 0] = a[:, ::-1]
    o[:, :, 1] = total.astype(U32)[:, None] ^ np.arange(local, dtype=U32)
    return o.tobytes()


def atomics_expected(n: int = 512, local: int = 64) -> bytes:
    x = xorshift32(n, 25)
    i = np.arange(n, dtype=U32)
    hist = np.bincount(x & 63, minlength=64).astype(U32)
    wg = ((x >> 8).astype(np.uint64).reshape(-1, local).sum(axis=1) & 0xFFFFFFFF).astype(U32)
    head = [int(x.astype(np.uint64).sum()) & 0xFFFFFFFF, int(x.max()), int(x.min()),
            int(np.bitwise_or.reduce(((x & U32(0x0F0F0F0F)) << (i & 3)).astype(U32))),
            int(np.bitwise_and.reduce(x | U32(0x00FF00FF))), int(np.bitwise_xor.reduce(x)), n,
            int(x.view(np.int32).min()) & 0xFFFFFFFF]
    return struct.pack("<8I", *head) + hist.tobytes() + wg.tobytes()


def clear_expected(w: int, h: int, rgba: tuple[int, int, int, int]) -> bytes:
    return bytes(rgba) * (w * h)


def gl_compute_expected() -> bytes:
    m = 0xFFFFFFFF
    out = []
    for i, x in enumerate(int(v) for v in xorshift32(256, 31)):
        r = ((x * 2654435761 + (x >> 7)) & m) ^ (i // 64)
        for j in range(x & 7):
            r = (r * 33 + j) & m
        out.append(~r & m if i % 64 & 1 else r)
    return struct.pack("<256I", *out)


def expected() -> dict[str, bytes]:
    out = {"fill": fill_expected(), "update": update_expected(), "copy": copy_expected(),
           "arith": arith_expected(), "loop": loop_expected(), "branch": branch_expected(),
           "shared": shared_expected(), "atomics": atomics_expected(),
           "clear_64x48": clear_expected(64, 48, (255, 0, 51, 153)),
           "clear_61x37": clear_expected(61, 37, (102, 204, 255, 0)),
           "gl_clear_64x48": clear_expected(64, 48, (255, 0, 51, 153)),
           "gl_clear_61x37": clear_expected(61, 37, (102, 204, 255, 0)),
           "gl_compute": gl_compute_expected()}
    for name in VK_CASES:
        m = re.fullmatch(r"ids_(\d+)x(\d+)x(\d+)_(\d+)x(\d+)x(\d+)", name)
        if m:
            v = [int(x) for x in m.groups()]
            out[name] = ids_expected(tuple(v[:3]), tuple(v[3:]))
    return out


# --- the boot ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run():
    tools.build_mesa_cases()     # a build failure says why here, not as "mesa-cases: not found"
    r = boot.boot(SCRIPT, BOOT_TIMEOUT_S, load_panthor=True,
                  guest_packages=list(guest_packages.MESA_PACKAGES))
    layer = guest_packages.packages_archive(list(guest_packages.MESA_PACKAGES))
    print(f"kernel {r.kernel_version}, timings {r.timings}, Mesa layer "
          f"{layer.stat().st_size / 2**20:.0f} MiB")
    print("\n".join(l for l in r.output.splitlines()
                    if not l.startswith("dmesg.") and not l.endswith((".start=1", ".head="))))
    return r, values(r.output)


def case(v: dict, prefix: str, name: str) -> dict[str, str]:
    p = f"{prefix}.{name}."
    return {k[len(p):]: x for k, x in v.items() if k.startswith(p)}


def describe(v: dict, prefix: str, name: str) -> str:
    return f"{prefix}.{name}: " + ", ".join(f"{k}={x}" for k, x in case(v, prefix, name).items())


def check_oracle(v: dict, prefix: str, names: list[str]) -> None:
    want = expected()
    for name in names:
        c = case(v, prefix, name)
        assert c.get("result") == "ok", describe(v, prefix, name)
        if name in want:
            assert (c["size"], c["fnv1a64"]) == (str(len(want[name])), fnv1a64(want[name])), (
                f"{describe(v, prefix, name)}; expected head {want[name][:32].hex()}")


# --- the CPU drivers -----------------------------------------------------------------------

def test_lavapipe_runs_every_case_and_gives_the_defined_bytes(run):
    r, v = run
    assert "llvmpipe" in v.get("vk.lvp.device", ""), r.output[-3000:]
    assert v["vk.lvp.status"] == "0" and v["vk.lvp.failed"] == "0"
    assert v["vk.lvp.cases"] == str(len(VK_CASES))
    listed = re.findall(r"^vk\.lvp\.(\w+)\.result=", r.output, re.M)
    assert listed == VK_CASES
    check_oracle(v, "vk.lvp", VK_CASES)


def test_llvmpipe_runs_the_gl_cases_and_gives_the_defined_bytes(run):
    r, v = run
    assert "llvmpipe" in v.get("gl.llvm.gl.renderer", ""), r.output[-3000:]
    assert v["gl.llvm.status"] == "0" and v["gl.llvm.failed"] == "0"
    check_oracle(v, "gl.llvm", GL_CASES)


# --- the virtual Mali against them ----------------------------------------------------------

@pytest.mark.parametrize("name", VK_CASES)
def test_panvk_matches_lavapipe(run, name):
    r, v = run
    assert "Mali-G610" in v.get("vk.mali.device", ""), r.output[-3000:]
    gpu, cpu = case(v, "vk.mali", name), case(v, "vk.lvp", name)
    assert gpu.get("result") == "ok", describe(v, "vk.mali", name)
    assert (gpu["size"], gpu["fnv1a64"]) == (cpu["size"], cpu["fnv1a64"]), (
        f"{describe(v, 'vk.mali', name)}\n{describe(v, 'vk.lvp', name)}")


@pytest.mark.parametrize("prefix,name", [("gl.pan", "gl_compute")] + [("gl.noafbc", n) for n in CLEARS])
def test_panfrost_matches_llvmpipe(run, prefix, name):
    r, v = run
    assert "Mali-G610" in v.get(f"{prefix}.gl.renderer", ""), r.output[-3000:]
    gpu, cpu = case(v, prefix, name), case(v, "gl.llvm", name)
    assert gpu.get("result") == "ok", describe(v, prefix, name)
    assert (gpu["size"], gpu["fnv1a64"]) == (cpu["size"], cpu["fnv1a64"]), (
        f"{describe(v, prefix, name)}\n{describe(v, 'gl.llvm', name)}")


def test_one_device_runs_every_case_without_fault_or_device_lost(run):
    """All Vulkan cases on one VkDevice (its panthor group ran each next case), none lost."""
    r, v = run
    assert v["vk.mali.device_lost"] == "0" and v["vk.mali.devices_created"] == "1", (
        "\n".join(l for l in r.output.splitlines() if l.startswith("vk.mali.")
                  and re.search(r"result=(?!ok)|error=|at=|device", l)))
    assert v["vk.mali.failed"] == "0" and v["vk.mali.status"] == "0"
    for prefix in ("gl.pan", "gl.noafbc"):
        assert v[f"{prefix}.failed"] == "0" and v[f"{prefix}.status"] == "0"


def test_the_server_saw_no_cs_fault(run):
    """The device's own view: no command stream of any of those jobs ended in a CS fatal."""
    r, v = run
    faults = [f for f in re.findall(r"CSG\d+ CS\d+ fatal: (.*)", r.server_log) if not _draw(f)]
    # one line per distinct reason (addresses vary per job)
    seen = Counter(re.sub(r"0x[0-9a-f]{6,}", "0x…", f)[:240] for f in faults)
    assert not faults, f"{len(faults)} CS fatals:\n" + "\n".join(
        f"{n}x {why}" for why, n in seen.most_common())


@pytest.mark.parametrize("phase", ["lvp", "mali", "llvm", "pan", "noafbc"])  # not "afbc": it faults
def test_dmesg_is_clean(run, phase):
    r, v = run
    lines = dmesg(r.output, phase)
    bad = problems(lines) + [l for l in lines if GPU_TROUBLE.search(l)]
    assert not bad, "\n".join(bad)


def _draw(why: str) -> bool:
    """The fault a draw gets (`... info 0x6: RUN_IDVS at 0x...: ... shader cores ...`)."""
    return "RUN_IDVS at 0x" in why


def test_gl_default_afbc_readback_faults_at_the_draw_it_needs(run):
    """Reading the default AFBC clear back is a draw: the queue faults at RUN_IDVS, named,
    Mesa reports the group unusable, and no other instruction faulted."""
    r, v = run
    c = case(v, "gl.afbc", "gl_clear_64x48")
    assert c.get("result") != "ok", describe(v, "gl.afbc", "gl_clear_64x48")
    fatals = re.findall(r"CSG\d+ CS\d+ fatal: (.*)", r.server_log)
    assert any(_draw(f) for f in fatals), fatals[-5:]
    assert "CS_INSTR_INVALID" in "\n".join(dmesg(r.output, "afbc"))
