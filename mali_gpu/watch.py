"""Watch and break filters on register accesses, for bring-up debugging.

A watch prints every matching access with its decoded name, whatever the log level. A break
also pauses the guest through QEMU's QMP socket ("stop"), so a developer can look at it with
a debugger (QEMU's gdbstub) and continue with `mali-vdev continue` or QMP "cont".

Spec: "NAME[:r|w|rw][=VALUE]", e.g. "MCU_CONTROL:w", "GPU_COMMAND:w=0x101", "AS_STATUS[0]:r".
The pause is requested from a separate thread: the vCPU that made the access holds QEMU's
big lock until we answer it, so waiting for QMP here would deadlock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from mali_base.events import Event, Kind
from mali_regs.regmap import RegMap

log = logging.getLogger("mali.watch")


@dataclass(frozen=True)
class Watch:
    name: str
    offsets: frozenset[int]
    reads: bool
    writes: bool
    value: int | None
    pause: bool

    def matches(self, ev: Event) -> bool:
        if ev.addr not in self.offsets:
            return False
        if ev.kind == Kind.REG_READ and not self.reads or ev.kind == Kind.REG_WRITE and not self.writes:
            return False
        return self.value is None or ev.value == self.value


def parse_watch(spec: str, regmap: RegMap, pause: bool) -> Watch:
    name, _, value = spec.partition("=")
    name, _, mode = name.partition(":")
    mode = mode or "rw"
    if mode not in ("r", "w", "rw"):
        raise ValueError(f"{spec!r}: access must be r, w or rw")
    if name not in regmap:
        raise ValueError(f"{spec!r}: no register {name!r}")
    reg = regmap[name]
    offsets = frozenset(range(reg.offset, reg.offset + reg.width // 8, 4))
    return Watch(reg.full_name, offsets, "r" in mode, "w" in mode, int(value, 0) if value else None, pause)


class Qmp:
    """Fire-and-forget QMP commands to QEMU (stop/cont), each on its own thread."""

    def __init__(self, path: str):
        self.path = path

    def send(self, command: str) -> threading.Thread:
        t = threading.Thread(target=self._run, args=(command,), name=f"qmp-{command}", daemon=True)
        t.start()
        return t

    def _run(self, command: str) -> None:
        try:
            asyncio.run(self._execute(command))
            log.warning("QMP %s sent to %s", command, self.path)
        except Exception as e:  # QEMU gone, socket missing: say so, never take the server down
            log.error("QMP %s to %s failed: %s", command, self.path, e)

    async def _execute(self, command: str) -> None:
        from qemu.qmp import QMPClient
        client = QMPClient("mali-vdev")
        await client.connect(self.path)
        try:
            await client.execute(command)
        finally:
            await client.disconnect()


class Watcher:
    """An event-bus sink applying the watch list."""

    kinds = frozenset({Kind.REG_READ, Kind.REG_WRITE})  # what the bus hands it

    def __init__(self, regmap: RegMap, qmp: Qmp | None = None):
        self.regmap = regmap
        self.qmp = qmp
        self.watches: list[Watch] = []
        self.hits = 0
        self.paused = 0

    def add(self, watch: Watch) -> None:
        if watch.pause and self.qmp is None:
            raise ValueError(f"break on {watch.name} needs the QMP socket of the QEMU to pause (--qmp)")
        self.watches.append(watch)

    def __call__(self, ev: Event) -> None:
        if ev.kind not in (Kind.REG_READ, Kind.REG_WRITE):
            return
        for w in self.watches:
            if w.matches(ev):
                self.hits += 1
                what = "read " if ev.kind == Kind.REG_READ else "write"
                log.warning("%s #%d: %s %s", "break" if w.pause else "watch", ev.seq, what,
                            self.regmap.decode(ev.addr, ev.value, ev.width * 8))
                if w.pause:
                    self.paused += 1
                    self.qmp.send("stop")
