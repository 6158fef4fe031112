"""Names for events: registers and fields, IRQ blocks, interface req/ack bits, CS instructions.

Events are recorded raw (offsets, values, kinds). Every name here comes from mali_regs (the
register map of the trace's GPU architecture, the CSF interface blocks, the enums) and from
scheduler.isa (the CS disassembler). The decoder is stateful: interface acknowledgements are
decoded bit by bit against the previous ACK of the same interface, and IRQ RAWSTAT changes
against the previous RAWSTAT of the block, so feed it every event in order.
"""

from __future__ import annotations

from mali_base.events import Event, IfaceBlockId, Kind
from mali_regs import csf_iface as I
from mali_regs.enums import ACCESS_TYPES, AS_COMMANDS, MCU_STATUSES, exception_name
from mali_regs.regmap import Part, Register
from scheduler import isa
from scheduler.job_trace import REGISTER, JobReplay

from .header import TraceHeader

IRQ_BLOCKS = {0: ("GPU", "GPU_CONTROL", "GPU_IRQ_RAWSTAT"),
              1: ("JOB", "JOB_CONTROL", "JOB_IRQ_RAWSTAT"),
              2: ("MMU", "MMU_CONTROL", "MMU_IRQ_RAWSTAT")}

#: (ACK register, REQ register, host-request mask, firmware-event mask) per interface block
IFACE_REGS = {
    IfaceBlockId.GLB: (I.GLB_OUTPUT["GLB_ACK"], I.GLB_INPUT["GLB_REQ"], I.GLB_REQ_MASK, I.GLB_EVT_MASK),
    IfaceBlockId.CSG: (I.CSG_OUTPUT["CSG_ACK"], I.CSG_INPUT["CSG_REQ"], I.CSG_REQ_MASK, I.CSG_EVT_MASK),
    IfaceBlockId.CS: (I.CS_OUTPUT["CS_ACK"], I.CS_INPUT["CS_REQ"], I.CS_REQ_MASK, I.CS_EVT_MASK),
}

CSG_STATES = {0: "TERMINATE", 1: "START", 2: "SUSPEND", 3: "RESUME"}
RESET_KINDS = {0: "DEVICE_RESET", 1: "SOFT_RESET", 2: "HARD_RESET"}

#: `--kind` names: every Kind, plus groups
KIND_GROUPS = {
    "REG": (Kind.REG_READ, Kind.REG_WRITE),
    "READ": (Kind.REG_READ,),
    "WRITE": (Kind.REG_WRITE,),
    "IRQ": (Kind.IRQ_LINE, Kind.IRQ_RAWSTAT),
    "MMU": (Kind.MMU_COMMAND, Kind.MMU_FAULT),
    "CSG": (Kind.CSG_STATE,),
    "CS": (Kind.CS_STATE, Kind.CS_INSTR, Kind.CS_FATAL),
    "INSTR": (Kind.CS_INSTR,),
    "FAULT": (Kind.MMU_FAULT, Kind.CS_FATAL),
    "JOBS": (Kind.JOB,),
}

SHORT = {Kind.REG_READ: "R", Kind.REG_WRITE: "W", Kind.IRQ_LINE: "IRQ", Kind.IRQ_RAWSTAT: "RAWSTAT",
         Kind.DOORBELL: "DOORBELL", Kind.IFACE: "IFACE", Kind.MMU_COMMAND: "MMU_CMD", Kind.MMU_FAULT: "MMU_FAULT",
         Kind.CSG_STATE: "CSG", Kind.CS_STATE: "CS", Kind.CS_INSTR: "INSTR", Kind.CS_FATAL: "CS_FATAL",
         Kind.DMA_MAP: "DMA", Kind.RESET: "RESET", Kind.MCU_STATUS: "MCU", Kind.GPU_COMMAND: "GPU_CMD",
         Kind.JOB: "JOB", Kind.JOB_DATA: "JOB_DATA"}


def parse_kinds(names) -> set[Kind]:
    out: set[Kind] = set()
    for item in names:
        for n in str(item).replace(",", " ").split():
            u = n.strip().upper()
            if u in KIND_GROUPS:
                out.update(KIND_GROUPS[u])
            elif u in Kind.__members__:
                out.add(Kind[u])
            else:
                raise ValueError(f"unknown event kind {n!r}; kinds: {', '.join(Kind.__members__)}, "
                                 f"groups: {', '.join(KIND_GROUPS)}")
    return out


def bit_names(reg: Register, bits: int) -> list[str]:
    """Names of the single-bit fields of `reg` set in `bits` (unnamed bits as BIT<n>)."""
    return [name for name, _ in _bits(reg, bits)]


def register_fields(reg: Register, part: Part, value: int) -> dict:
    """Fields of an access to `part` of `reg` carrying `value` (enum fields by name)."""
    if part is Part.FULL or (part is Part.LO and reg.width == 32):
        return reg.unpack_named(value)
    shift = 0 if part is Part.LO else 32
    full = (value & 0xFFFFFFFF) << shift
    out = {}
    for f in reg.fields_for(full):
        if f.lsb >= shift and f.msb < shift + 32:
            raw = f.extract(full)
            name = f.name_of(raw)
            out[f.name] = name if name is not None else raw
    return out


class Decoder:
    """Decodes events of one trace, in order. `decode(ev)` returns a dict with at least
    ``text`` (one human-readable line) and ``block``; register events also ``reg`` and
    ``fields``."""

    def __init__(self, header: TraceHeader | None = None):
        self.header = header or TraceHeader()
        self.regmap = self.header.regmap()
        self._acks: dict[tuple, int] = {}
        self._rawstat: dict[int, int] = {}
        self._reg_cache: dict[tuple[int, int], tuple] = {}
        self._jobs = JobReplay()

    # -- registers ------------------------------------------------------------------------

    def register(self, offset: int, width: int) -> tuple[str, str, Register | None, Part | None]:
        """(block name, register display name, Register, Part) of an access."""
        key = (offset, width)
        hit = self._reg_cache.get(key)
        if hit is None:
            blk = self.regmap.block_at(offset)
            bname = blk.name if blk is not None else "UNKNOWN"
            lk = self.regmap.lookup(offset)
            if lk is None:
                hit = (bname, f"UNKNOWN@0x{offset:05x}", None, None)
            else:
                reg, part = lk
                if width == 8 and reg.width == 64 and part is Part.LO:
                    part = Part.FULL
                hit = (bname, reg.part_name(part), reg, part)
            self._reg_cache[key] = hit
        return hit

    def block_of(self, ev: Event) -> str:
        k = ev.kind
        if k in (Kind.REG_READ, Kind.REG_WRITE):
            return self.register(ev.addr, ev.width)[0]
        if k == Kind.IRQ_RAWSTAT:
            return IRQ_BLOCKS.get(ev.addr, ("?", "UNKNOWN", ""))[1]
        if k == Kind.DOORBELL:
            return "DOORBELLS"
        if k in (Kind.MMU_COMMAND, Kind.MMU_FAULT):
            return "MMU_AS"
        if k == Kind.MCU_STATUS:
            return "MCU_CONTROL"
        if k in (Kind.GPU_COMMAND, Kind.RESET, Kind.IRQ_LINE):
            return "GPU_CONTROL"
        if k == Kind.IFACE:
            return _iface_name(ev.addr)
        if k == Kind.CSG_STATE:
            return "CSG"
        if k in (Kind.CS_STATE, Kind.CS_INSTR, Kind.CS_FATAL, Kind.JOB, Kind.JOB_DATA):
            return "CS"
        if k == Kind.DMA_MAP:
            return "DMA"
        return "UNKNOWN"

    # -- events ---------------------------------------------------------------------------

    def decode(self, ev: Event) -> dict:
        k = ev.kind
        d: dict = {"block": self.block_of(ev)}
        if k in (Kind.REG_READ, Kind.REG_WRITE):
            _, name, reg, part = self.register(ev.addr, ev.width)
            d["reg"] = name
            d["text"] = self.regmap.decode(ev.addr, ev.value, ev.width * 8 if ev.width in (4, 8) else 32)
            if reg is not None and reg.all_fields:
                d["fields"] = register_fields(reg, part, ev.value)
        elif k == Kind.IRQ_LINE:
            d["level"] = int(bool(ev.value))
            d["text"] = f"IRQ line {'HIGH' if ev.value else 'low'}"
        elif k == Kind.IRQ_RAWSTAT:
            irq, _, rname = IRQ_BLOCKS.get(ev.addr, (f"BLOCK{ev.addr}", "UNKNOWN", None))
            prev = self._rawstat.get(ev.addr, 0)
            self._rawstat[ev.addr] = ev.value
            d["irq"] = irq
            if rname is not None:
                reg = self.regmap[rname]
                raised, cleared = ev.value & ~prev, prev & ~ev.value
                d["raised"] = bit_names(reg, raised)
                d["cleared"] = bit_names(reg, cleared)
                change = "".join([f" +{'|'.join(d['raised'])}" if raised else "",
                                  f" -{'|'.join(d['cleared'])}" if cleared else ""])
                d["text"] = f"{irq} IRQ: {reg.describe(ev.value)}{change}"
            else:
                d["text"] = f"IRQ block {ev.addr}: RAWSTAT = 0x{ev.value:08x}"
        elif k == Kind.DOORBELL:
            d["reg"] = f"DOORBELL[{ev.addr}]"
            d["text"] = f"DOORBELL[{ev.addr}] rung" + (" (global interface)" if ev.addr == 0 else "")
        elif k == Kind.IFACE:
            self._iface(ev, d)
        elif k == Kind.MMU_COMMAND:
            name = AS_COMMANDS.get(ev.value, f"0x{ev.value:x}")
            d["command"] = name
            d["text"] = f"AS{ev.slot} {name}"
        elif k == Kind.MMU_FAULT:
            exc, access = ev.value & 0xFF, (ev.value >> 8) & 0x3
            d["exception"] = exception_name(exc)
            d["access"] = ACCESS_TYPES.get(access, str(access))
            d["text"] = f"AS{ev.slot} fault at VA 0x{ev.addr:x}: {d['exception']} ({d['access']})"
        elif k == Kind.CSG_STATE:
            d["state"] = CSG_STATES.get(ev.value, str(ev.value))
            d["text"] = f"CSG{ev.slot} -> {d['state']} (AS{ev.aux})"
        elif k == Kind.CS_STATE:
            if ev.value:
                d["state"] = "START"
                d["text"] = f"CSG{ev.slot} CS{ev.stream} START: ring 0x{ev.addr:x}, extract 0x{ev.aux:x}"
            else:
                d["state"] = "STOP"
                d["text"] = f"CSG{ev.slot} CS{ev.stream} STOP"
        elif k == Kind.CS_INSTR:
            d["disasm"] = isa.disassemble(ev.value, ev.addr)
            d["text"] = f"CSG{ev.slot} CS{ev.stream} 0x{ev.addr:x}: {d['disasm']}"
        elif k == Kind.CS_FATAL:
            d["exception"] = exception_name(ev.value)
            d["text"] = f"CSG{ev.slot} CS{ev.stream} fatal {d['exception']} (0x{ev.value:02x}), info 0x{ev.aux:x}"
        elif k == Kind.DMA_MAP:
            if ev.aux:
                flags = ev.aux & 0xFF
                rw = ("R" if flags & 1 else "") + ("W" if flags & 2 else "")
                d["text"] = f"DMA map IOVA 0x{ev.addr:x} size 0x{ev.value:x} {rw or '-'}"
            else:
                d["text"] = f"DMA unmap IOVA 0x{ev.addr:x} size 0x{ev.value:x}"
        elif k == Kind.RESET:
            d["reset"] = RESET_KINDS.get(ev.value, str(ev.value))
            d["text"] = d["reset"]
            self._acks.clear()
            self._rawstat.clear()
        elif k == Kind.MCU_STATUS:
            d["status"] = MCU_STATUSES.get(ev.value, str(ev.value))
            d["text"] = f"MCU_STATUS -> {d['status']}"
        elif k == Kind.GPU_COMMAND:
            reg = self.regmap["GPU_COMMAND"]
            d["fields"] = reg.unpack_named(ev.value)
            d["text"] = reg.describe(ev.value)
        elif k == Kind.JOB_DATA:
            self._jobs.data(ev)
            d["text"] = (f"CSG{ev.slot} CS{ev.stream} job reads r{ev.addr} = 0x{ev.value:x}" if ev.aux == REGISTER
                         else f"CSG{ev.slot} CS{ev.stream} job reads 0x{ev.addr:x}: "
                              f"{ev.value.to_bytes(8, 'little')[:ev.width].hex(' ')}")
        elif k == Kind.JOB:
            name, lines = self._jobs.job(ev)
            d["job"] = name
            d["lines"] = lines   # the job decoded (descriptors, first shader instructions)
            d["text"] = f"CSG{ev.slot} CS{ev.stream} 0x{ev.addr:x}: {name}" + (f": {lines[0]}" if lines else "")
        else:  # pragma: no cover - every Kind is handled above
            d["text"] = f"{k!r} addr=0x{ev.addr:x} value=0x{ev.value:x}"
        return d

    def _iface(self, ev: Event, d: dict) -> None:
        block = IfaceBlockId(ev.addr) if ev.addr in IfaceBlockId._value2member_map_ else None
        if block is None:
            d["text"] = f"interface block {ev.addr}: ACK=0x{ev.value:08x} REQ=0x{ev.aux:08x}"
            return
        ack_reg, req_reg, req_mask, evt_mask = IFACE_REGS[block]
        key = (block, ev.slot, ev.stream)
        prev = self._acks.get(key, 0)   # interfaces start zeroed (MCU boot, reset)
        self._acks[key] = ev.value
        where = {IfaceBlockId.GLB: "GLB", IfaceBlockId.CSG: f"CSG{ev.slot}",
                 IfaceBlockId.CS: f"CSG{ev.slot} CS{ev.stream}"}[block]
        d["iface"] = block.name
        d["ack"] = ack_reg.unpack_named(ev.value)
        d["req"] = req_reg.unpack_named(ev.aux)
        changes = []
        changed = prev ^ ev.value
        if changed & 0x7 and block != IfaceBlockId.GLB:
            state = ack_reg.field("STATE")
            changes.append(f"STATE={state.name_of(state.extract(ev.value)) or ev.value & 7}")
            changed &= ~0x7
        for name, bit in _bits(ack_reg, changed):
            if bit & evt_mask:
                changes.append(f"event {name}")
            elif bit & req_mask:
                changes.append(f"ack {name}")
            else:
                changes.append(f"{name}={'1' if ev.value & bit else '0'}")
        d["changed"] = changes
        pend = (ev.aux ^ ev.value) & req_mask
        pending = []
        if block != IfaceBlockId.GLB:
            if pend & 0x7:
                pending.append("STATE")
            pend &= ~0x7
        pending += [n for n, _ in _bits(req_reg, pend)]
        d["pending"] = pending
        text = f"{where} {ack_reg.describe(ev.value)}"
        if changes:
            text += f" [{', '.join(changes)}]"
        if d["pending"]:
            text += f" pending: {', '.join(d['pending'])}"
        d["text"] = text


def _iface_name(addr: int) -> str:
    try:
        return IfaceBlockId(addr).name
    except ValueError:
        return "IFACE"


def _bits(reg: Register, bits: int):
    flags = {f.lsb: f.name for f in reg.all_fields if f.is_flag}
    b = bits
    while b:
        low = b & -b
        n = low.bit_length() - 1
        yield flags.get(n, f"BIT{n}"), low
        b ^= low
