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
import time
from typing import TYPE_CHECKING

from mali_base.faults import parse_spec
from mali_base.pagetable import ACCESS_READ, ADRMODE_UNMAPPED, MmuFault, walk
from mali_regs import csf_iface as I
from mali_regs.enums import MCU_STATUSES
from scheduler.csg import CSG_STATE_NAMES
from scheduler.isa import disassemble
from vdev.ratelimit import RateLimitedLog
from vdev.transport import TRANSIENT_ACCEPT_ERRNOS, bind_private

if TYPE_CHECKING:
    from .device import MaliDevice

log = logging.getLogger("mali.control")

MAX_READ = 1 << 16
# One thread and one fd per connection: bounded, so idle connections cannot use up the
# process's fds (RLIMIT_NOFILE, often 1024) that the vfio-user side needs too.
MAX_CLIENTS = 16
MAX_LINE = 64 << 10   # a request is a small JSON object; a longer line is refused, not buffered
IDLE_TIMEOUT_S = 60.0  # a silent connection gives its place back
ACCEPT_BACKOFF_S = 0.1


class ControlServer:
    def __init__(self, dev: "MaliDevice", path: str, max_clients: int = MAX_CLIENTS,
                 idle_timeout: float = IDLE_TIMEOUT_S, server_timing=None):
        self.dev = dev
        self.server_timing = server_timing  # the vfio-user server's ServerTiming, for `status`
        self.path = path
        self.max_clients = max_clients
        self.idle_timeout = idle_timeout
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._clients = 0
        self._clients_lock = threading.Lock()
        self._log = RateLimitedLog(log)

    def start(self) -> None:
        if os.path.lexists(self.path):
            os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bind_private(s, self.path)
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
        while (sock := self._sock) is not None:
            try:
                conn, _ = sock.accept()
            except OSError as e:
                if self._sock is None:
                    return  # closed
                if e.errno in TRANSIENT_ACCEPT_ERRNOS:
                    self._log.warning("control socket: accept failed (%s); retrying", e)
                    time.sleep(ACCEPT_BACKOFF_S)
                    continue
                log.exception("control socket: accept failed")
                time.sleep(ACCEPT_BACKOFF_S)
                continue
            with self._clients_lock:
                full = self._clients >= self.max_clients
                if not full:
                    self._clients += 1
            if full:
                self._log.warning("control socket: refusing a connection, %d already open", self.max_clients)
                self._refuse(conn, f"too many control connections ({self.max_clients} open)")
                continue
            try:
                threading.Thread(target=self._client, args=(conn,), daemon=True).start()
            except RuntimeError as e:  # no thread to be had
                with self._clients_lock:
                    self._clients -= 1
                self._refuse(conn, f"cannot serve the connection: {e}")

    @staticmethod
    def _refuse(conn: socket.socket, why: str) -> None:
        with conn:
            try:
                conn.setblocking(False)  # never wait for a client we do not serve
                conn.send(json.dumps({"error": why}).encode() + b"\n")
            except OSError:
                pass

    def _client(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(self.idle_timeout)
            with conn, conn.makefile("rwb") as f:
                self._converse(f)
        except OSError:  # timed out, reset: the connection is gone
            pass
        finally:
            with self._clients_lock:
                self._clients -= 1

    def _converse(self, f) -> None:
        while line := f.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:
                f.write(json.dumps({"error": f"request line longer than {MAX_LINE} bytes"}).encode() + b"\n")
                f.flush()
                return
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("a request is a JSON object")
                answer = self.handle(req)
            except (ValueError, KeyError, TypeError) as e:
                answer = {"error": f"bad request: {e}"}
            except Exception as e:  # never let a question take the server down
                log.exception("control request %r failed", line[:200])
                answer = {"error": f"internal error: {e}"}
            f.write(json.dumps(answer).encode() + b"\n")
            f.flush()

    def handle(self, req: dict) -> dict:
        cmd = req.get("cmd")
        # Questions take the device lock in short pieces (a page of a debug read, one walk, one
        # CSG slot of the status) and decode outside it, so register accesses are never held
        # up for a whole answer.
        if cmd == "gpu_read":
            return self.gpu_read(req["as"], int(req["va"]), int(req.get("size", 4)))
        if cmd == "translate":
            return self.translate(int(req["as"]), int(req["va"]))
        if cmd == "status":
            return self.status()
        with self.dev.lock:
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
        return [a for a in self.dev.mmu.address_spaces if a.config.adrmode != ADRMODE_UNMAPPED and a.config.transtab]

    def translate(self, as_index: int, va: int) -> dict:
        a = self.dev.mmu[as_index]
        try:
            with self.dev.lock:    # one walk: at most four descriptor reads
                t = walk(self.dev.host.dma, a.config, va, ACCESS_READ)
        except MmuFault as e:
            return {"as": as_index, "va": va, "fault": e.exception_type, "why": e.why}
        return {"as": as_index, "va": va, "pa": t.pa(va), "writable": t.writable}

    def gpu_read(self, which, va: int, size: int) -> dict:
        if not 0 < size <= MAX_READ:
            return {"error": f"size must be 1..{MAX_READ}"}
        with self.dev.lock:
            spaces = self._enabled_as() if which == "any" else [self.dev.mmu[int(which)]]
        results = []
        for a in spaces:
            if which == "any" and a.index == 0:
                continue  # the MCU's own address space is not a user VM
            try:
                data = b"".join(self._read_page(a, v, n) for v, n in _pages(va, size))
                results.append({"as": a.index, "data": data.hex()})
            except MmuFault as e:
                results.append({"as": a.index, "fault": e.exception_type, "why": e.why})
            except Exception as e:  # DmaError: a translation to outside guest RAM
                results.append({"as": a.index, "error": str(e)})
        return {"va": va, "size": size, "results": results}

    def _read_page(self, aspace, va: int, n: int) -> bytes:
        """Up to one page through `aspace` as it is configured now (under the lock)."""
        with self.dev.lock:
            dma = self.dev.host.dma
            return dma.read(walk(dma, aspace.config, va, ACCESS_READ).pa(va), n)

    def _peek(self, aspace, va: int, size: int) -> bytes | None:
        """Read through an address space without reporting faults (None if unmapped)."""
        try:
            return b"".join(self.dev.host.dma.read(walk(self.dev.host.dma, aspace.config, v, ACCESS_READ).pa(v), n)
                            for v, n in _pages(va, size))
        except Exception:
            return None

    def _u64(self, aspace, va: int) -> int | None:
        b = self._peek(aspace, va, 8)
        return None if b is None else int.from_bytes(b, "little")

    def _glb_words(self) -> tuple[int, int] | None:
        """GLB_REQ and GLB_ACK as the MCU sees them (under the lock)."""
        mcu = self.dev.mcu
        lay = mcu.iface.layout
        req, ack = self._peek(mcu.aspace, lay.glb_input_va, 4), self._peek(mcu.aspace, lay.glb_output_va, 4)
        if req is None or ack is None:
            return None
        return int.from_bytes(req, "little"), int.from_bytes(ack, "little")

    def _stream(self, slot, cs) -> dict:
        mcu = self.dev.mcu
        aspace = self.dev.mmu[slot.as_index]
        ring = cs.ring
        entry = {"cs": cs.index, "running": cs.running, "cmd_ptr": cs.cmd_ptr, "depth": len(cs.frames),
                 "ring": {"base": ring.base, "size": ring.size, "insert": self._u64(mcu.aspace, ring.input_va),
                          "extract": self._u64(mcu.aspace, ring.output_va)},
                 "blocked_reason": "SYNC_WAIT" if cs.wait else ("FATAL" if cs.fatal else "UNBLOCKED"),
                 "wait": ({"addr": cs.wait.addr, "value": cs.wait.value, "cond": "GT" if cs.wait.cond == 1 else "LE",
                           "current": self._u64(aspace, cs.wait.addr)} if cs.wait else None),
                 "scoreboards": cs.pending_mask,
                 "fatal": ({"exception": cs.fatal.exception_type, "info": cs.fatal.info, "why": cs.fatal.why}
                           if cs.fatal else None),
                 "instructions": cs.instructions, "next": [],
                 "last_fragment": list(cs.last_fragment),   # the last RUN_FRAGMENT's descriptors
                 "last_compute": list(cs.last_compute)}     # the last RUN_COMPUTE, its first instructions
        if cs.frames:
            f = cs.frames[-1]
            count = 4
            if f.ring:
                count = min(count, ((entry["ring"]["insert"] or f.pc) - f.pc) // 8)
            else:
                count = min(count, (f.end - f.pc) // 8)
            va = cs.cmd_ptr
            for _ in range(max(count, 0)):
                raw = self._u64(aspace, va)
                entry["next"].append((va, raw))      # disassembled outside the lock
                if raw is None:
                    break
                va += 8
                if f.ring and (va - ring.base) >= ring.size:
                    va = ring.base
        return entry

    def status(self) -> dict:
        """The device-wide part in one short hold of the lock, then each CSG slot in its own;
        decoding and disassembly run outside."""
        dev = self.dev
        with dev.lock:
            st = self._status_top()
        glb = st["glb"]
        if glb is not None:
            req, ack = glb
            reg = I.GLB_INPUT["GLB_REQ"]
            st["glb"] = {"req": req, "ack": ack, "req_decoded": reg.format_value(req),
                         "pending": reg.format_value((req ^ ack) & I.GLB_REQ_MASK)}
        slots = []
        for slot in dev.csg_slots.slots:        # a fixed list; each slot's state read under the lock
            with dev.lock:
                entry = {"slot": slot.index, "state": slot.state, "as": slot.as_index, "priority": slot.priority,
                         "idle": slot.idle,
                         "streams": [self._stream(slot, cs) for cs in slot.streams if cs.running or cs.frames or cs.fatal]}
            entry["state"] = CSG_STATE_NAMES.get(entry["state"], entry["state"])
            for cs in entry["streams"]:
                cs["next"] = [f"0x{va:x}: <unmapped>" if raw is None else f"0x{va:x}: {disassemble(raw)}"
                              for va, raw in cs["next"]]
            slots.append(entry)
        st["csg_slots"] = slots
        if self.server_timing is not None:
            st["server"] = self.server_timing.snapshot()
        return st

    def _status_top(self) -> dict:
        """Everything but the CSG slots, as plain values (under the lock)."""
        dev, r = self.dev, self.dev.regs
        return {
            "gpu": dev.profile.name, "gpu_id": r["GPU_ID"],
            "power": {"l2_ready": r["L2_READY"], "shader_ready": r["SHADER_READY"], "tiler_ready": r["TILER_READY"]},
            "mcu_status": MCU_STATUSES.get(r["MCU_STATUS"], r["MCU_STATUS"]), "boots": dev.mcu.boots,
            "mcu_fatal": dev.mcu.fatal_reason,
            "pings": dev.mcu.pings, "glb": self._glb_words() if r["MCU_STATUS"] else None,
            "irq": {name: {"rawstat": r[f"{name}_IRQ_RAWSTAT"], "mask": r[f"{name}_IRQ_MASK"]}
                    for name in ("GPU", "JOB", "MMU")},
            "address_spaces": [{"as": a.index, "transtab": a.config.transtab, "transcfg": a.config.transcfg,
                                "memattr": a.config.memattr, "faults": a.faults,
                                "faultstatus": r[f"AS_FAULTSTATUS[{a.index}]"],
                                "faultaddress": r[f"AS_FAULTADDRESS[{a.index}]"]} for a in self._enabled_as()],
            "csg_slots": None,   # filled slot by slot
            "engine": {"slices": dev.engine.slices, "instructions": dev.engine.instructions,
                       "busy_us": dev.engine.busy_ns // 1000},
            "resets": dev.gpu_control.resets,
            "csg_events": dict(dev.csg_slots.raised),
            "faults_armed": [{"kind": i.describe(), "fired": i.fired, "count": i.count}
                             for i in dev.faults.injections],
        }


def format_status(st: dict) -> str:
    """The status as a developer reads it."""
    lines = [f"{st['gpu']} (GPU_ID 0x{st['gpu_id']:08x})  MCU {st['mcu_status']}  boots {st['boots']}  "
             f"pings {st['pings']}  GPU resets {st['resets']}",
             *([f"MCU fatal: {st['mcu_fatal']}"] if st.get("mcu_fatal") else []),
             "power: " + "  ".join(f"{k.upper()} 0x{v:x}" for k, v in st["power"].items()),
             "irq:   " + "  ".join(f"{k} raw 0x{v['rawstat']:08x} mask 0x{v['mask']:08x}" for k, v in st["irq"].items())]
    if st["glb"]:
        g = st["glb"]
        lines.append(f"GLB:   req {g['req_decoded']}  pending {g['pending']}")
    for a in st["address_spaces"]:
        lines.append(f"AS{a['as']}:   TRANSTAB 0x{a['transtab']:x} TRANSCFG 0x{a['transcfg']:x} "
                     f"faults {a['faults']} FAULTSTATUS 0x{a['faultstatus']:x} FAULTADDRESS 0x{a['faultaddress']:x}")
    for slot in st["csg_slots"]:
        if slot["state"] == "TERMINATE" and not slot["streams"]:
            continue
        lines.append(f"CSG{slot['slot']}: {slot['state']} AS{slot['as']} prio {slot['priority']}"
                     f"{' idle' if slot['idle'] else ''}")
        for cs in slot["streams"]:
            ring = cs["ring"]
            lines.append(f"  CS{cs['cs']}: {'running' if cs['running'] else 'stopped'} {cs['blocked_reason']} "
                         f"ring 0x{ring['base']:x}/0x{ring['size']:x} insert {ring['insert']} extract {ring['extract']} "
                         f"cmd_ptr 0x{cs['cmd_ptr']:x} depth {cs['depth']} scoreboards 0x{cs['scoreboards']:x}")
            if cs["wait"]:
                w = cs["wait"]
                lines.append(f"    waits for [0x{w['addr']:x}] {w['cond']} 0x{w['value']:x} (now {w['current']})")
            if cs["fatal"]:
                lines.append(f"    fatal 0x{cs['fatal']['exception']:02x}: {cs['fatal']['why']}")
            lines.extend(f"    {n}" for n in cs["next"])
            if cs.get("last_fragment"):
                lines.append("    last RUN_FRAGMENT:")
                lines.extend(f"      {n}" for n in cs["last_fragment"])
            if cs.get("last_compute"):
                lines.append("    last RUN_COMPUTE:")
                lines.extend(f"      {n}" for n in cs["last_compute"])
    for f in st["faults_armed"]:
        lines.append(f"fault armed: {f['kind']} fired {f['fired']}/{f['count'] or 'inf'}")
    e = st["engine"]
    lines.append(f"engine: {e['slices']} slices, {e['instructions']} CS instructions, {e['busy_us'] / 1e6:.3f} s running streams")
    if st.get("server"):
        s, d = st["server"], st["server"]["irq_delivery_us"]
        lines.append(f"server: {s['messages']} messages, {s['busy_us'] / 1e6:.3f} s handling them; {s['irq_signals']} "
                     f"interrupt signals, next message after p50 {d['p50']} us p90 {d['p90']} us")
    return "\n".join(lines)


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
