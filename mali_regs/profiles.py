"""GPU profiles: the identification values a virtual Mali presents, as data.

A :class:`GpuProfile` is a frozen description of one GPU: its ``GPU_ID``, the
read-only feature/present registers panthor and Tyr read at probe, and the CSF
interface sizes the emulated firmware should report.  The device model takes
:meth:`GpuProfile.reset_values` as the power-on contents of the register file.

Provenance (``GpuProfile.verified`` lists, per profile, the register names whose
values come from real hardware; everything else is *derived* and says so):

* **Mali-G610 (RK3588)** — GPU_ID 0xA8670005 is in many RK3588 boot logs and in a
  register-read table captured from an RK3588 running kbase (a public QEMU
  "Fake Mali G610" platform device; the index does not name its repository);
  L2/TILER/MEM/MMU features, AS_PRESENT, CSF_ID, THREAD_*, TEXTURE_FEATURES[0],
  SHADER/TILER/L2_PRESENT and COHERENCY_FEATURES=0 match Mesa's panthor drm-shim
  ("Dumped from a G610", ``src/panfrost/drm-shim/panfrost_noop.c``) and that table;
  CORE_FEATURES=0, TEXTURE_FEATURES[1..3]=0, THREAD_TLS_ALLOC=0, STACK_PRESENT=0x55
  and GPU_STATUS=0 come from the captured table only.  CSIF sizes (8 CSG slots, 8 CS
  per group, 96 CS registers, 8 scoreboards) are from the same Mesa shim.
* **Other models** — product IDs (arch major + product major) are from panthor's
  model table (``panthor_hw.c``) and kbase's ``GPU_ID_PRODUCT_*``; the arch *minor*
  of G310 (10.12), G720 (12.8) and G725 (13.8), and the core variant 4 of G720/G725,
  are from Mesa's ``pan_model.c``.  Arch minors of G710 (10.8), G510 (10.10), G615/G715
  (11.8), G620 (12.8) and G625 (13.8) are **derived** from the firmware files panthor
  declares (``MODULE_FIRMWARE`` arch10.8/10.10/10.12/11.8/12.8/13.8).  Feature
  registers are copied from the G610 and core masks are illustrative (chosen so the
  driver's core-count rules pick the intended name) — **derived**, not measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

from .mmio import MALI_MMIO, regmap_for_arch

__all__ = [
    "GpuProfile", "PROFILES", "DEFAULT_PROFILE", "get_profile", "profile_names",
    "make_gpu_id", "split_gpu_id", "gpu_id_arch", "firmware_path_for",
]


def make_gpu_id(arch_major: int, arch_minor: int, arch_rev: int, prod_major: int,
                ver_major: int = 0, ver_minor: int = 0, ver_status: int = 0) -> int:
    """Pack GPU_ID fields (layout as panthor's ``GPU_ARCH_MAJOR()`` ... macros)."""
    for v, bits, n in ((arch_major, 4, "arch_major"), (arch_minor, 4, "arch_minor"),
                       (arch_rev, 4, "arch_rev"), (prod_major, 4, "prod_major"),
                       (ver_major, 4, "ver_major"), (ver_minor, 8, "ver_minor"),
                       (ver_status, 4, "ver_status")):
        if not 0 <= v < (1 << bits):
            raise ValueError(f"{n}={v} does not fit in {bits} bits")
    return (arch_major << 28 | arch_minor << 24 | arch_rev << 20 | prod_major << 16
            | ver_major << 12 | ver_minor << 4 | ver_status)


def split_gpu_id(gpu_id: int) -> dict[str, int]:
    """``{"ARCH_MAJOR": .., "ARCH_MINOR": .., ...}`` (the GPU_ID register's fields)."""
    return MALI_MMIO.GPU_CONTROL.GPU_ID.fields(gpu_id)


def gpu_id_arch(gpu_id: int) -> tuple[int, int, int]:
    """``(arch_major, arch_minor, arch_rev)`` of a GPU_ID value."""
    return (gpu_id >> 28, (gpu_id >> 24) & 0xF, (gpu_id >> 20) & 0xF)


def firmware_path_for(gpu_id: int) -> str:
    """The path panthor and Tyr pass to ``request_firmware``."""
    major, minor, _ = gpu_id_arch(gpu_id)
    return f"arm/mali/arch{major}.{minor}/mali_csffw.bin"


@dataclass(frozen=True)
class GpuProfile:
    """One GPU model as the virtual device presents it.

    ``regs`` maps register display names (``"GPU_ID"``, ``"TEXTURE_FEATURES[0]"``,
    ``"SHADER_PRESENT"`` — 64-bit registers as one value) to their fixed values;
    registers not listed keep the reset value of the register table.
    """

    key: str                                   # short id: "g610"
    name: str                                  # what panthor prints: "Mali-G610"
    gpu_id: int
    regs: Mapping[str, int] = field(hash=False, compare=False)
    soc: str = ""                              # where the values come from, if a real chip
    csg_slots: int = 8                         # CSF interface: CSG slots
    cs_per_csg: int = 8                        # streams per group
    cs_reg_count: int = 96                     # CS registers per stream (v12+: 128)
    scoreboards: int = 8                       # scoreboard slots per stream
    verified: frozenset[str] = frozenset()     # register names measured on real hardware
    notes: str = ""

    def __post_init__(self) -> None:
        regs = dict(self.regs)
        regs.setdefault("GPU_ID", self.gpu_id)
        if regs["GPU_ID"] != self.gpu_id:
            raise ValueError(f"{self.key}: regs GPU_ID {regs['GPU_ID']:#x} != gpu_id {self.gpu_id:#x}")
        for n, v in regs.items():
            if n not in MALI_MMIO:
                raise KeyError(f"{self.key}: unknown register {n!r}")
            r = MALI_MMIO[n]
            if r.full_name != n:
                raise KeyError(f"{self.key}: use the canonical name {r.full_name!r}, not {n!r}")
            if v < 0 or v >> r.width:
                raise ValueError(f"{self.key}: {n}={v:#x} does not fit {r.width} bits")
        unknown = self.verified - set(regs)
        if unknown:
            raise KeyError(f"{self.key}: verified names not in regs: {sorted(unknown)}")
        object.__setattr__(self, "regs", MappingProxyType(regs))

    # --- GPU_ID ----------------------------------------------------------------------------
    @property
    def arch(self) -> tuple[int, int, int]:
        """``(arch_major, arch_minor, arch_rev)``."""
        return gpu_id_arch(self.gpu_id)

    @property
    def arch_major(self) -> int:
        return self.arch[0]

    @property
    def prod_major(self) -> int:
        return (self.gpu_id >> 16) & 0xF

    @property
    def version(self) -> tuple[int, int, int]:
        """``(ver_major, ver_minor, ver_status)``: the "major/minor/status" panthor prints."""
        g = self.gpu_id
        return ((g >> 12) & 0xF, (g >> 4) & 0xFF, g & 0xF)

    @property
    def product_id(self) -> int:
        """``gpu_id >> 16``, what panthor prints as ``id 0x...``."""
        return self.gpu_id >> 16

    @property
    def firmware_path(self) -> str:
        """``arm/mali/arch<major>.<minor>/mali_csffw.bin``."""
        return firmware_path_for(self.gpu_id)

    # --- convenient register values -------------------------------------------------------
    def value(self, name: str) -> int:
        """Value of a register in this profile (profile value, else table reset value)."""
        r = MALI_MMIO[name]
        return self.regs.get(r.full_name, r.reset)

    @property
    def shader_present(self) -> int:
        return self.value("SHADER_PRESENT")

    @property
    def tiler_present(self) -> int:
        return self.value("TILER_PRESENT")

    @property
    def l2_present(self) -> int:
        return self.value("L2_PRESENT")

    @property
    def as_present(self) -> int:
        return self.value("AS_PRESENT")

    @property
    def gpu_features(self) -> int:
        return self.value("GPU_FEATURES")

    @property
    def core_count(self) -> int:
        return bin(self.shader_present).count("1")

    @property
    def as_count(self) -> int:
        return bin(self.as_present).count("1")

    @property
    def va_bits(self) -> int:
        return self.value("MMU_FEATURES") & 0xFF

    @property
    def pa_bits(self) -> int:
        return (self.value("MMU_FEATURES") >> 8) & 0xFF

    @property
    def regmap(self):
        """The register map for this profile's architecture."""
        return regmap_for_arch(self.arch_major)

    def reset_values(self) -> dict[str, int]:
        """Power-on value of every register of this GPU's map: ``{display name: value}``.

        64-bit registers appear once, under their name, with the full 64-bit value.
        """
        out = self.regmap.reset_values()
        for n, v in self.regs.items():
            if n in out:
                out[n] = v
        return out

    def with_regs(self, regs: Mapping[str, int] | None = None, **kw: int) -> "GpuProfile":
        """A copy with some register values replaced (they stop counting as verified).

        ``PROFILE.with_regs(COHERENCY_FEATURES=1)`` for a dma-coherent guest.
        """
        new = dict(self.regs)
        new.update(regs or {})
        new.update(kw)
        gpu_id = new.get("GPU_ID", self.gpu_id)
        changed = {k for k in new if self.regs.get(k) != new[k]}
        return replace(self, gpu_id=gpu_id, regs=new, verified=self.verified - changed)

    def __repr__(self) -> str:
        a = self.arch
        return (f"<GpuProfile {self.key} {self.name} GPU_ID=0x{self.gpu_id:08x} "
                f"arch {a[0]}.{a[1]}.{a[2]} cores={self.core_count}>")


# ----------------------------------------------------------------------------------------
# Mali-G610 MP4 on Rockchip RK3588 (the default; real values)
# ----------------------------------------------------------------------------------------

_G610_REGS = {
    "GPU_ID": 0xA8670005,               # arch 10.8 rev 6, product 7, r0p0 status 5
    "L2_FEATURES": 0x07120306,          # 64 B lines, 8 ways, 256 KiB/slice, 128-bit bus
    "CORE_FEATURES": 0x00000000,        # core variant 0 (Mesa: G610 variant 0)
    "TILER_FEATURES": 0x00000809,       # 512 B bins, 8 levels
    "MEM_FEATURES": 0x00000301,         # groups L2-coherent, 4 L2 slices
    "MMU_FEATURES": 0x00002830,         # VA 48 bits, PA 40 bits
    "AS_PRESENT": 0x000000FF,           # 8 address spaces
    "CSF_ID": 0x040A0412,
    "GPU_STATUS": 0x00000000,
    "THREAD_MAX_THREADS": 0x00000800,   # 2048
    "THREAD_MAX_WORKGROUP_SIZE": 0x00000400,  # 1024
    "THREAD_MAX_BARRIER_SIZE": 0x00000400,    # 1024
    "THREAD_FEATURES": 0x04010000,      # 65536 registers, task queue 4
    "TEXTURE_FEATURES[0]": 0xC1FFFF9E,
    "TEXTURE_FEATURES[1]": 0x00000000,
    "TEXTURE_FEATURES[2]": 0x00000000,
    "TEXTURE_FEATURES[3]": 0x00000000,
    "SHADER_PRESENT": 0x00050005,       # 4 cores: 0, 2, 16, 18
    "TILER_PRESENT": 0x00000001,
    "L2_PRESENT": 0x00000001,
    "COHERENCY_FEATURES": 0x00000000,   # RK3588 reports none (see note below)
    "THREAD_TLS_ALLOC": 0x00000000,
    "STACK_PRESENT": 0x00000055,        # core stacks 0, 2, 4, 6
    # Not captured on hardware; values chosen:
    "GPU_FEATURES": 0,                  # arch 10 has no GPU_FEATURES register: reads 0
    "GPU_REVID": 0,                     # Mesa's shim reports gpu_rev 0
}

_G610_VERIFIED = frozenset(k for k in _G610_REGS if k not in ("GPU_FEATURES", "GPU_REVID"))

G610 = GpuProfile(
    key="g610", name="Mali-G610", gpu_id=0xA8670005, regs=_G610_REGS, soc="Rockchip RK3588",
    csg_slots=8, cs_per_csg=8, cs_reg_count=96, scoreboards=8, verified=_G610_VERIFIED,
    notes="RK3588 values. COHERENCY_FEATURES is 0 on RK3588; a guest whose DT node says "
          "dma-coherent needs bit 0 (ACE_LITE): use G610.with_regs(COHERENCY_FEATURES=1).",
)

# Feature registers other profiles borrow from the G610 (derived).
_COMMON_DERIVED = {k: _G610_REGS[k] for k in (
    "L2_FEATURES", "TILER_FEATURES", "MEM_FEATURES", "MMU_FEATURES", "AS_PRESENT", "CSF_ID",
    "THREAD_MAX_THREADS", "THREAD_MAX_WORKGROUP_SIZE", "THREAD_MAX_BARRIER_SIZE",
    "THREAD_FEATURES", "TEXTURE_FEATURES[0]", "TEXTURE_FEATURES[1]", "TEXTURE_FEATURES[2]",
    "TEXTURE_FEATURES[3]", "TILER_PRESENT", "L2_PRESENT", "COHERENCY_FEATURES", "GPU_FEATURES",
    "GPU_REVID")}


def _derived(key: str, name: str, arch_major: int, arch_minor: int, prod_major: int,
             shader_present: int, core_variant: int = 0, notes: str = "") -> GpuProfile:
    gpu_id = make_gpu_id(arch_major, arch_minor, 0, prod_major)
    regs = dict(_COMMON_DERIVED)
    regs.update(GPU_ID=gpu_id, SHADER_PRESENT=shader_present, CORE_FEATURES=core_variant)
    return GpuProfile(
        key=key, name=name, gpu_id=gpu_id, regs=regs,
        cs_reg_count=128 if arch_major >= 12 else 96,
        notes=("Derived profile: product/arch from driver tables, feature registers copied "
               "from the G610, core mask illustrative. " + notes).strip(),
    )


# ----------------------------------------------------------------------------------------
# The other CSF models panthor names (non-Immortalis variants)
# ----------------------------------------------------------------------------------------

G310 = _derived("g310", "Mali-G310", 10, 12, 4, 0x1,
                notes="Arch 10.12 / product 0xac04 from Mesa pan_model.c (tVAx); 1 core.")
G510 = _derived("g510", "Mali-G510", 10, 10, 3, 0x3,
                notes="tGRx; arch minor 10 derived (arch10.10 firmware); 2 cores.")
G710 = _derived("g710", "Mali-G710", 10, 8, 2, 0x3FF,
                notes="tODx; arch minor 8 derived (arch10.8 firmware); 10 cores.")
G615 = _derived("g615", "Mali-G615", 11, 8, 3, 0x3F,
                notes="lTUx (product 11.3, named G615 for any core count); 6 cores.")
G715 = _derived("g715", "Mali-G715", 11, 8, 2, 0x7F,
                notes="tTUx (product 11.2): >= 7 cores and no ray tracing -> G715; 7 cores.")
G620 = _derived("g620", "Mali-G620", 12, 8, 1, 0x1F,
                notes="lTIx (product 12.1); 5 cores.")
G720 = _derived("g720", "Mali-G720", 12, 8, 0, 0x7F, core_variant=4,
                notes="tTIx, product 0xc800 variant 4 as in Mesa; >= 6 cores, no RT -> G720; 7 cores.")
G625 = _derived("g625", "Mali-G625", 13, 8, 1, 0x1F,
                notes="lKRx (product 13.1); 5 cores.")
G725 = _derived("g725", "Mali-G725", 13, 8, 0, 0x3F, core_variant=4,
                notes="tKRx, product 0xd800 variant 4 as in Mesa; >= 6 cores, no RT -> G725; 6 cores.")

#: Every profile; the first is the default.
PROFILES: tuple[GpuProfile, ...] = (G610, G310, G510, G710, G615, G715, G620, G720, G625, G725)
DEFAULT_PROFILE = G610

_BY_KEY = {p.key: p for p in PROFILES}


def profile_names() -> list[str]:
    return [p.key for p in PROFILES]


def get_profile(name: str | None = None) -> GpuProfile:
    """A profile by name, case-insensitive: ``"g610"``, ``"G610"``, ``"Mali-G610"``,
    ``"mali_g610"``; ``None`` or ``"default"`` gives :data:`DEFAULT_PROFILE`."""
    if name is None:
        return DEFAULT_PROFILE
    k = name.strip().lower().replace("_", "-")
    if k in ("", "default"):
        return DEFAULT_PROFILE
    if k.startswith("mali-"):
        k = k[5:]
    k = k.replace("-", "")
    try:
        return _BY_KEY[k]
    except KeyError:
        raise KeyError(f"unknown GPU profile {name!r}; known: {', '.join(_BY_KEY)}") from None
