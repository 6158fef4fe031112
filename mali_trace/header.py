"""What every trace file starts with: which GPU it was recorded on, and how to read its clock.

Decoders need the GPU profile (GPU_ID, hence the architecture) to pick the register map, the
tick rate of the event timestamps, and the wall-clock time at timestamp zero to place a trace
in a kernel log. Each format stores the same header in its own way (a binary struct, the first
JSON line, an mmiotrace MARK line, the Perfetto `otherData` object).
"""

from __future__ import annotations

import time
import weakref
from dataclasses import asdict, dataclass, fields

from mali_regs import get_profile, regmap_for_arch
from mali_regs.profiles import gpu_id_arch
from mali_regs.regmap import RegMap

#: Version of the trace formats (binary layout, JSON keys, MARK header). Bumped on any change
#: a reader must know about.
FORMAT_VERSION = 1

#: Where mmiotrace output places BAR0: physical = BAR_PHYS + register offset.
BAR_PHYS = 0x10000000


class HeaderError(ValueError):
    """A trace header that is not one (each reader turns it into its format's error)."""


_FIELD_BITS = {"gpu_id": 32, "format_version": 16}  # the binary header's widths; others u64


@dataclass(frozen=True)
class TraceHeader:
    profile: str = "g610"               # GPU profile key (mali_regs.profiles)
    gpu_name: str = "Mali-G610"
    gpu_id: int = 0xA8670005
    timestamp_hz: int = 1_000_000_000   # tick rate of Event.t_ns (nanoseconds)
    gpu_timestamp_hz: int = 0           # the GPU TIMESTAMP register's rate (guest CNTFRQ), 0 = unknown
    start_wall_ns: int = 0              # Unix time (ns) at t_ns == 0
    bar_phys: int = BAR_PHYS            # BAR0 address used in mmiotrace output
    source: str = ""                    # who recorded it ("mali-vdev serve", "driver model", ...)
    format_version: int = FORMAT_VERSION

    @property
    def arch(self) -> tuple[int, int, int]:
        return gpu_id_arch(self.gpu_id)

    @property
    def arch_major(self) -> int:
        return self.arch[0]

    def regmap(self) -> RegMap:
        """The register map of the GPU the trace was recorded on."""
        return regmap_for_arch(self.arch_major)

    def describe(self) -> str:
        a = self.arch
        return f"{self.gpu_name} (profile {self.profile}, GPU_ID 0x{self.gpu_id:08x}, arch {a[0]}.{a[1]}.{a[2]})"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["arch"] = list(self.arch)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TraceHeader":
        """The header a file's JSON object holds; HeaderError if it is not one (a file is
        input: a float GPU_ID or a list for a header must not reach the decoders)."""
        if not isinstance(d, dict):
            raise HeaderError(f"the header is a JSON {type(d).__name__}, not an object")
        kw = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = d[f.name]
            if f.type == "str":
                if not isinstance(v, str):
                    raise HeaderError(f"header field {f.name} is {v!r}, not a string")
            elif not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << _FIELD_BITS.get(f.name, 64):
                raise HeaderError(f"header field {f.name} is {v!r}, not a {_FIELD_BITS.get(f.name, 64)}-bit unsigned integer")
            kw[f.name] = v
        return cls(**kw)

    @classmethod
    def for_profile(cls, profile: str = "g610", **kw) -> "TraceHeader":
        p = get_profile(profile)
        kw.setdefault("start_wall_ns", time.time_ns())
        return cls(profile=p.key, gpu_name=p.name, gpu_id=p.gpu_id, **kw)

    @classmethod
    def for_device(cls, device, source: str = "") -> "TraceHeader":
        """The header for a trace of `device` (a mali_gpu.device.MaliDevice) from its bus."""
        p = device.profile
        return cls(profile=p.key, gpu_name=p.name, gpu_id=p.gpu_id,
                   gpu_timestamp_hz=getattr(device.clock, "timestamp_hz", 0),
                   start_wall_ns=bus_epoch_wall_ns(device.events), source=source)


_EPOCHS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def bus_epoch_wall_ns(bus) -> int:
    """Wall-clock time (Unix ns) of the bus's t_ns == 0 (the same for every trace of one bus)."""
    try:
        return _EPOCHS[bus]
    except (KeyError, TypeError):
        pass
    t0 = getattr(bus, "t0_ns", None)  # the bus's monotonic epoch
    now_wall, now_mono = time.time_ns(), time.monotonic_ns()
    epoch = now_wall if t0 is None else now_wall - (now_mono - t0)
    try:
        _EPOCHS[bus] = epoch
    except TypeError:
        pass
    return epoch
