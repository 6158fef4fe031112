"""A control socket for inspecting a running virtual GPU (JSON lines over a unix socket).

Requests are one JSON object per line, answers likewise:
  {"cmd": "status"}                                   power, MCU, address spaces, CSG slots
  {"cmd": "gpu_read", "as": N|"any", "va": X, "size": S}   read GPU memory through an AS
  {"cmd": "translate", "as": N, "va": X}              the physical address, or the fault
  {"cmd": "inject", "spec": "KIND[:key=value,...]"}   arm a fault injection (see faults.py)
  {"cmd": "continue"}                                 resume a guest paused by a break (QMP cont)
Debug reads walk the page tables without reporting faults to the driver: looking must not
change what the guest sees.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING

from mali_regs import csf_iface as I

from .faults import parse_spec
from .pagetable import ACCESS_READ, MmuFault, walk

if TYPE_CHECKING:
    from .device import MaliDevice

log = logging.getLogger("mali.control")

MAX_READ = 1 << 16


class ControlServer:
    def __init__(self, dev: "MaliDevice", path: str):
        self.dev = dev
        self.path = path
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if os.path.lexists(self.path):
            os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        s.listen(4)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, name="mali-control", daemon=True)
        self._thread.start()
        log.info("control socket on %s", self.path)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("a request is a JSON object")
                    answer = self.handle(req)
                except (ValueError, KeyError, TypeError) as e:
                    answer = {"error": f"bad request: {e}"}
                f.write(json.dumps(answer).encode() + b"\n")
                f.flush()

    def handle(self, req: dict) -> dict:
        cmd = req.get("cmd")
        with self.dev.lock:
            if cmd == "status":
                return self.status()
            if cmd == "gpu_read":
                return self.gpu_read(req["as"], int(req["va"]), int(req.get("size", 4)))
            if cmd == "translate":
                return self.translate(int(req["as"]), int(req["va"]))
            if cmd == "continue":
                if self.dev.qmp is None:
                    return {"error": "the server was started without --qmp"}
                self.dev.qmp.send("cont")
                return {"sent": "cont"}
            if cmd == "inject":
                inj = parse_spec(str(req["spec"]))
                self.dev.inject(inj)
                return {"armed": inj.describe(), "fired": inj.fired}
        return {"error": f"unknown command {cmd!r}"}

    def _enabled_as(self):
        return [a for a in self.dev.mmu.address_spaces if a.config.adrmode != 1 and a.config.transtab]

    def translate(self, as_index: int, va: int) -> dict:
        a = self.dev.mmu[as_index]
        try:
            t = walk(self.dev.host.dma, a.config, va, ACCESS_READ)
        except MmuFault as e:
            return {"as": as_index, "va": va, "fault": e.exception_type, "why": e.why}
        return {"as": as_index, "va": va, "pa": t.pa(va), "writable": t.writable}

    def gpu_read(self, which, va: int, size: int) -> dict:
        if not 0 < size <= MAX_READ:
            return {"error": f"size must be 1..{MAX_READ}"}
        spaces = self._enabled_as() if which == "any" else [self.dev.mmu[int(which)]]
        results = []
        for a in spaces:
            if which == "any" and a.index == 0:
                continue  # the MCU's own address space is not a user VM
            try:
                data = b"".join(self.dev.host.dma.read(walk(self.dev.host.dma, a.config, v, ACCESS_READ).pa(v), n)
                                for v, n in _pages(va, size))
                results.append({"as": a.index, "data": data.hex()})
            except MmuFault as e:
                results.append({"as": a.index, "fault": e.exception_type, "why": e.why})
            except Exception as e:  # DmaError: a translation to outside guest RAM
                results.append({"as": a.index, "error": str(e)})
        return {"va": va, "size": size, "results": results}

    def status(self) -> dict:
        dev, r = self.dev, self.dev.regs
        slots = []
        for slot in dev.csg_slots.slots:
            streams = []
            for cs in slot.streams:
                if not (cs.running or cs.frames or cs.fatal):
                    continue
                streams.append({"cs": cs.index, "running": cs.running, "cmd_ptr": cs.cmd_ptr,
                                "depth": len(cs.frames), "blocked": cs.wait is not None,
                                "wait_addr": cs.wait.addr if cs.wait else None,
                                "fatal": cs.fatal.exception_type if cs.fatal else None,
                                "instructions": cs.instructions})
            slots.append({"slot": slot.index, "state": slot.state, "as": slot.as_index,
                          "idle": slot.idle, "streams": streams})
        return {
            "gpu": dev.profile.name, "gpu_id": r["GPU_ID"],
            "l2_ready": r["L2_READY"], "shader_ready": r["SHADER_READY"],
            "mcu_status": r["MCU_STATUS"], "boots": dev.mcu.boots, "pings": dev.mcu.pings,
            "irq": {"gpu": r["GPU_IRQ_RAWSTAT"], "job": r["JOB_IRQ_RAWSTAT"], "mmu": r["MMU_IRQ_RAWSTAT"]},
            "address_spaces": [{"as": a.index, "transtab": a.config.transtab, "transcfg": a.config.transcfg,
                                "faults": a.faults} for a in self._enabled_as()],
            "csg_slots": slots,
            "engine": {"slices": dev.engine.slices, "instructions": dev.engine.instructions},
            "resets": dev.gpu_control.resets,
            "faults_armed": [{"kind": i.describe(), "fired": i.fired, "count": i.count}
                             for i in dev.faults.injections],
        }


def _pages(va: int, size: int):
    while size > 0:
        n = min(size, 4096 - (va & 0xFFF))
        yield va, n
        va += n
        size -= n


def request(path: str, req: dict, timeout: float = 10.0) -> dict:
    """Client side: one request, one answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)
