"""PCI type-0 configuration space of one function, as the vfio-user server owns it.

QEMU forwards every config write to the server and reads back everything it does not emulate
itself (COMMAND, STATUS, INTERRUPT_LINE/PIN, ...). BARs implement the sizing protocol: bits
below the BAR size read as zero, the type bits are constant. No expansion ROM: the ROM BAR
ignores the sizing mask and reads 0, which tells QEMU there is none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("vdev.pci")

CONFIG_SIZE = 256

# Header offsets.
VENDOR_ID = 0x00
DEVICE_ID = 0x02
COMMAND = 0x04
STATUS = 0x06
REVISION_ID = 0x08
CLASS_PROG = 0x09
CACHE_LINE_SIZE = 0x0C
LATENCY_TIMER = 0x0D
HEADER_TYPE = 0x0E
BAR0 = 0x10
SUBSYSTEM_VENDOR_ID = 0x2C
SUBSYSTEM_ID = 0x2E
ROM_ADDRESS = 0x30
CAPABILITY_LIST = 0x34
INTERRUPT_LINE = 0x3C
INTERRUPT_PIN = 0x3D

COMMAND_IO = 1 << 0
COMMAND_MEMORY = 1 << 1
COMMAND_MASTER = 1 << 2
COMMAND_SERR = 1 << 8
COMMAND_INTX_DISABLE = 1 << 10
COMMAND_WRITABLE = COMMAND_IO | COMMAND_MEMORY | COMMAND_MASTER | (1 << 6) | COMMAND_SERR | COMMAND_INTX_DISABLE
STATUS_INTERRUPT = 1 << 3

BAR_IO = 1 << 0
BAR_MEM_64 = 0b10 << 1
BAR_PREFETCH = 1 << 3

_NAMES = {
    VENDOR_ID: "VENDOR_ID", DEVICE_ID: "DEVICE_ID", COMMAND: "COMMAND", STATUS: "STATUS",
    REVISION_ID: "REVISION_ID", CLASS_PROG: "CLASS", CACHE_LINE_SIZE: "CACHE_LINE_SIZE",
    LATENCY_TIMER: "LATENCY_TIMER", HEADER_TYPE: "HEADER_TYPE", SUBSYSTEM_VENDOR_ID: "SUBSYSTEM_VENDOR_ID",
    SUBSYSTEM_ID: "SUBSYSTEM_ID", ROM_ADDRESS: "ROM_ADDRESS", CAPABILITY_LIST: "CAPABILITY_LIST",
    INTERRUPT_LINE: "INTERRUPT_LINE", INTERRUPT_PIN: "INTERRUPT_PIN",
    **{BAR0 + 4 * i: f"BAR{i}" for i in range(6)},
}


def config_register_name(offset: int) -> str:
    base = max((o for o in _NAMES if o <= offset), default=0)
    name = _NAMES.get(base, f"0x{offset:02x}")
    return name if base == offset else f"{name}+{offset - base}"


@dataclass(frozen=True)
class Bar:
    """One BAR of the function. A 64-bit BAR also occupies the next BAR slot."""

    index: int
    size: int
    is_64bit: bool = False
    prefetchable: bool = False
    is_io: bool = False

    def __post_init__(self):
        if self.size & (self.size - 1) or self.size < (4 if self.is_io else 16):
            raise ValueError(f"BAR{self.index} size 0x{self.size:x} is not a power of two >= 16")
        if not 0 <= self.index <= (4 if self.is_64bit else 5):
            raise ValueError(f"BAR index {self.index} out of range")

    @property
    def type_bits(self) -> int:
        if self.is_io:
            return BAR_IO
        return (BAR_MEM_64 if self.is_64bit else 0) | (BAR_PREFETCH if self.prefetchable else 0)


@dataclass(frozen=True)
class PciIdentity:
    vendor_id: int
    device_id: int
    class_code: int  # base class << 16 | subclass << 8 | prog-if
    revision: int = 0
    subsystem_vendor_id: int = 0
    subsystem_id: int = 0
    interrupt_pin: int = 1  # INTA; 0 = no INTx


class PciConfigSpace:
    """Config space bytes plus the rules for writes; reads are plain little-endian."""

    def __init__(self, identity: PciIdentity, bars: list[Bar]):
        self.identity = identity
        self.bars = {b.index: b for b in bars}
        self.data = bytearray(CONFIG_SIZE)
        self.reset()

    def reset(self) -> None:
        d, ident = self.data, self.identity
        d[:] = bytes(CONFIG_SIZE)
        d[VENDOR_ID:VENDOR_ID + 2] = ident.vendor_id.to_bytes(2, "little")
        d[DEVICE_ID:DEVICE_ID + 2] = ident.device_id.to_bytes(2, "little")
        d[REVISION_ID] = ident.revision
        d[CLASS_PROG:CLASS_PROG + 3] = ident.class_code.to_bytes(3, "little")
        d[SUBSYSTEM_VENDOR_ID:SUBSYSTEM_VENDOR_ID + 2] = ident.subsystem_vendor_id.to_bytes(2, "little")
        d[SUBSYSTEM_ID:SUBSYSTEM_ID + 2] = ident.subsystem_id.to_bytes(2, "little")
        d[INTERRUPT_PIN] = ident.interrupt_pin
        for bar in self.bars.values():
            self._set32(BAR0 + 4 * bar.index, bar.type_bits)

    # -- typed accessors -----------------------------------------------------------------

    def _get32(self, off: int) -> int:
        return int.from_bytes(self.data[off:off + 4], "little")

    def _set32(self, off: int, value: int) -> None:
        self.data[off:off + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")

    @property
    def command(self) -> int:
        return int.from_bytes(self.data[COMMAND:COMMAND + 2], "little")

    def set_interrupt_status(self, asserted: bool) -> None:
        if asserted:
            self.data[STATUS] |= STATUS_INTERRUPT
        else:
            self.data[STATUS] &= ~STATUS_INTERRUPT & 0xFF

    def bar_address(self, index: int) -> int:
        bar = self.bars[index]
        addr = self._get32(BAR0 + 4 * index) & ~0xF
        if bar.is_64bit:
            addr |= self._get32(BAR0 + 4 * index + 4) << 32
        return addr

    # -- access --------------------------------------------------------------------------

    def read(self, offset: int, count: int) -> bytes:
        return bytes(self.data[offset:offset + count])

    def write(self, offset: int, data: bytes) -> list[str]:
        """Apply a write byte-range; returns notes on ignored parts (for the caller's log)."""
        notes: list[str] = []
        end = offset + len(data)
        for reg_off, reg_len, handler in self._write_rules():
            lo, hi = max(offset, reg_off), min(end, reg_off + reg_len)
            if lo >= hi:
                continue
            cur = bytearray(self.data[reg_off:reg_off + reg_len])
            cur[lo - reg_off:hi - reg_off] = data[lo - offset:hi - offset]
            note = handler(reg_off, int.from_bytes(cur, "little"))
            if note:
                notes.append(note)
        # Anything else is read-only (the rest of the header, unimplemented capability space).
        covered = set()
        for reg_off, reg_len, _ in self._write_rules():
            covered.update(range(reg_off, reg_off + reg_len))
        ro = [o for o in range(offset, end) if o not in covered]
        if ro:
            notes.append(f"ignored write to read-only {config_register_name(ro[0])}")
        return notes

    def _write_rules(self):
        rules = [
            (COMMAND, 2, self._write_command),
            (STATUS, 2, self._write_status),
            (CACHE_LINE_SIZE, 1, self._write_plain),
            (LATENCY_TIMER, 1, self._write_plain),
            (INTERRUPT_LINE, 1, self._write_plain),
            (ROM_ADDRESS, 4, self._write_rom),
        ]
        rules += [(BAR0 + 4 * i, 4, self._write_bar) for i in range(6)]
        return rules

    def _write_plain(self, off: int, value: int) -> None:
        self.data[off] = value

    def _write_command(self, off: int, value: int) -> None:
        new = (self.command & ~COMMAND_WRITABLE) | (value & COMMAND_WRITABLE)
        self.data[COMMAND:COMMAND + 2] = new.to_bytes(2, "little")

    def _write_status(self, off: int, value: int) -> None:
        return None  # RW1C error bits are never set by this device: nothing to clear.

    def _write_rom(self, off: int, value: int) -> None:
        return None  # No ROM: the sizing mask reads back 0.

    def _write_bar(self, off: int, value: int) -> str | None:
        index = (off - BAR0) // 4
        bar = self.bars.get(index)
        upper_of = self.bars.get(index - 1)
        if bar is not None:
            self._set32(off, (value & ~(bar.size - 1) & ~0xF) | bar.type_bits)
        elif upper_of is not None and upper_of.is_64bit:
            mask = ~((upper_of.size - 1) >> 32) & 0xFFFFFFFF
            self._set32(off, value & mask)
        elif value:
            return f"ignored write 0x{value:08x} to unimplemented BAR{index}"
        return None
