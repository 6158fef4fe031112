"""Fault injection: make the virtual GPU misbehave on purpose, to push drivers down their
error and recovery paths.

An injection names a kind and when it fires: `skip` opportunities are let through first,
then `count` are spoiled (0 = forever). Kinds and their hook points:

  mcu_boot_fail   the MCU does not come up on MCU_CONTROL (stays DISABLED)
  drop_ping_ack   a GLB PING request is not acknowledged
  stall_csg       a CSG request (STATE/ENDPOINT_CONFIG/STATUS_UPDATE) is not acknowledged; slot=N
  as_active_stuck AS_STATUS reads AS_ACTIVE after an AS command; as=N (default any)
  mmu_fault       a GPU access to [va, va+size) in AS `as` faults (translation fault at level 3)
  gpu_fault       GPU_FAULTSTATUS/GPU_FAULTADDRESS are set and GPU_IRQ FAULT raised, at `at_s`
                  seconds after arming, or at once from the control socket; exception=CODE
  cs_fatal        the next instruction a stream executes is a CS fatal; exception=CODE (0x41 =
                  CS_UNRECOVERABLE makes panthor reset the GPU); slot=N to choose the group slot

Spec strings (command line): "KIND[:key=value,...]", e.g. "drop_ping_ack:skip=1",
"mmu_fault:as=1,va=0x200000,size=0x1000", "cs_fatal:exception=0x41". A TOML file may hold a
list: [[inject]] kind = "stall_csg" slot = 0 count = 1.
"""

from __future__ import annotations

import logging
import threading
import tomllib
from dataclasses import dataclass, field

log = logging.getLogger("mali.faults")

KINDS = ("mcu_boot_fail", "drop_ping_ack", "stall_csg", "as_active_stuck", "mmu_fault", "gpu_fault", "cs_fatal")
INT_PARAMS = {"skip", "count", "slot", "as", "va", "size", "exception", "address"}


@dataclass
class Injection:
    kind: str
    skip: int = 0
    count: int = 1
    params: dict = field(default_factory=dict)
    at_s: float | None = None
    fired: int = 0
    seen: int = 0

    def matches(self, **where) -> bool:
        return all(k not in self.params or self.params[k] == v for k, v in where.items())

    @property
    def exhausted(self) -> bool:
        return self.count != 0 and self.fired >= self.count

    def describe(self) -> str:
        extra = ",".join(f"{k}={v:#x}" if isinstance(v, int) and v > 9 else f"{k}={v}" for k, v in self.params.items())
        return f"{self.kind}" + (f"[{extra}]" if extra else "")


def parse_spec(spec: str) -> Injection:
    kind, _, rest = spec.partition(":")
    kind = kind.strip()
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(KINDS)})")
    inj = Injection(kind)
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{spec!r}: expected key=value, got {item!r}")
        _set(inj, key.strip(), value.strip())
    return inj


def _set(inj: Injection, key: str, value) -> None:
    if key == "at_s":
        inj.at_s = float(value)
    elif key in INT_PARAMS:
        v = int(value, 0) if isinstance(value, str) else int(value)
        if key in ("skip", "count"):
            setattr(inj, key, v)
        else:
            inj.params[key] = v
    else:
        raise ValueError(f"unknown parameter {key!r} for {inj.kind}")


def load_file(path: str) -> list[Injection]:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    out = []
    for entry in doc.get("inject", []):
        entry = dict(entry)
        kind = entry.pop("kind", None)
        if kind not in KINDS:
            raise ValueError(f"{path}: unknown fault kind {kind!r}")
        inj = Injection(kind)
        for k, v in entry.items():
            _set(inj, k, v)
        out.append(inj)
    return out


class FaultInjector:
    """Consulted by the blocks at their hook points; all under the device lock."""

    def __init__(self):
        self.injections: list[Injection] = []
        self._timers: list[threading.Timer] = []
        self.on_timed = None  # callback(injection) for time-triggered kinds, set by the device

    def __bool__(self) -> bool:
        return bool(self.injections)

    def add(self, inj: Injection) -> None:
        self.injections.append(inj)
        log.info("fault injection armed: %s (skip %d, count %s)", inj.describe(), inj.skip,
                 inj.count or "unlimited")
        if inj.at_s is not None and self.on_timed is not None:
            t = threading.Timer(inj.at_s, self.on_timed, args=(inj,))
            t.daemon = True
            t.start()
            self._timers.append(t)

    def take(self, kind: str, **where) -> Injection | None:
        """An opportunity for `kind` at `where`: the injection to apply now, or None."""
        for inj in self.injections:
            if inj.kind != kind or inj.exhausted or inj.at_s is not None or not inj.matches(**where):
                continue
            inj.seen += 1
            if inj.seen <= inj.skip:
                continue
            inj.fired += 1
            log.warning("fault injected: %s (%d/%s)", inj.describe(), inj.fired, inj.count or "inf")
            return inj
        return None

    def find(self, kind: str) -> list[Injection]:
        return [i for i in self.injections if i.kind == kind and not i.exhausted]

    def cancel(self) -> None:
        for t in self._timers:
            t.cancel()
        self.injections.clear()
