"""vfio-user wire format: message header, commands and payloads.

Everything here is data: the numbers of the spec (QEMU docs/interop/vfio-user.rst) and
`construct` layouts of each payload, compiled once for speed on the MMIO hot path.
Byte order is the host's (little endian on every host QEMU's client runs on).
Nothing here knows about any particular device.
"""

from __future__ import annotations

import enum

from construct import (
    Bytes,
    GreedyBytes,
    Int16ul,
    Int32ul,
    Int64ul,
    Struct,
    this,
)

from .layout import Layout

HEADER_SIZE = 16


class Command(enum.IntEnum):
    VERSION = 1
    DMA_MAP = 2
    DMA_UNMAP = 3
    DEVICE_GET_INFO = 4
    DEVICE_GET_REGION_INFO = 5
    DEVICE_GET_REGION_IO_FDS = 6
    DEVICE_GET_IRQ_INFO = 7
    DEVICE_SET_IRQS = 8
    REGION_READ = 9
    REGION_WRITE = 10
    DMA_READ = 11
    DMA_WRITE = 12
    DEVICE_RESET = 13
    REGION_WRITE_MULTI = 15
    DEVICE_FEATURE = 16
    MIG_DATA_READ = 17
    MIG_DATA_WRITE = 18


def command_name(value: int) -> str:
    try:
        return Command(value).name
    except ValueError:
        return f"UNKNOWN({value})"


# Header flags: bits 0-3 message type, then NO_REPLY and ERROR.
FLAG_TYPE_MASK = 0xF
TYPE_COMMAND = 0
TYPE_REPLY = 1
FLAG_NO_REPLY = 0x10
FLAG_ERROR = 0x20

# The only version of the protocol there is; QEMU rejects anything else in a reply.
VERSION_MAJOR = 0
VERSION_MINOR = 0

# DMA_MAP / DMA_UNMAP flags.
DMA_FLAG_READ = 1 << 0
DMA_FLAG_WRITE = 1 << 1
DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0
DMA_UNMAP_FLAG_ALL = 1 << 1

# DEVICE_GET_INFO flags.
DEVICE_FLAGS_RESET = 1 << 0
DEVICE_FLAGS_PCI = 1 << 1

# DEVICE_GET_REGION_INFO flags and capability ids.
REGION_FLAG_READ = 1 << 0
REGION_FLAG_WRITE = 1 << 1
REGION_FLAG_MMAP = 1 << 2
REGION_FLAG_CAPS = 1 << 3
REGION_INFO_CAP_SPARSE_MMAP = 1

# PCI region indices (the vfio-pci convention vfio-user inherits).
PCI_BAR0_REGION_INDEX = 0
PCI_BAR5_REGION_INDEX = 5
PCI_ROM_REGION_INDEX = 6
PCI_CONFIG_REGION_INDEX = 7
PCI_VGA_REGION_INDEX = 8
PCI_NUM_REGIONS = 9


class IrqIndex(enum.IntEnum):
    INTX = 0
    MSI = 1
    MSIX = 2
    ERR = 3
    REQ = 4


PCI_NUM_IRQS = 5

# DEVICE_GET_IRQ_INFO flags.
IRQ_INFO_EVENTFD = 1 << 0
IRQ_INFO_MASKABLE = 1 << 1
IRQ_INFO_AUTOMASKED = 1 << 2
IRQ_INFO_NORESIZE = 1 << 3

# DEVICE_SET_IRQS flags: one data type and one action, exactly.
IRQ_SET_DATA_NONE = 1 << 0
IRQ_SET_DATA_BOOL = 1 << 1
IRQ_SET_DATA_EVENTFD = 1 << 2
IRQ_SET_DATA_MASK = IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | IRQ_SET_DATA_EVENTFD
IRQ_SET_ACTION_MASK = 1 << 3
IRQ_SET_ACTION_UNMASK = 1 << 4
IRQ_SET_ACTION_TRIGGER = 1 << 5
IRQ_SET_ACTION_MASK_ALL = IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | IRQ_SET_ACTION_TRIGGER


Header = Struct(
    "msg_id" / Int16ul,
    "command" / Int16ul,
    "msg_size" / Int32ul,
    "flags" / Int32ul,
    "error" / Int32ul,
)

# VERSION: major, minor, then NUL-terminated JSON (parsed separately: it may be anything).
VersionPayload = Struct(
    "major" / Int16ul,
    "minor" / Int16ul,
    "json" / GreedyBytes,
)
VERSION_FIXED_SIZE = 4

DmaMap = Struct(
    "argsz" / Int32ul,
    "flags" / Int32ul,
    "offset" / Int64ul,
    "address" / Int64ul,
    "size" / Int64ul,
)
DMA_MAP_SIZE = 32

DmaUnmap = Struct(
    "argsz" / Int32ul,
    "flags" / Int32ul,
    "address" / Int64ul,
    "size" / Int64ul,
)
DMA_UNMAP_SIZE = 24

DeviceInfo = Struct(
    "argsz" / Int32ul,
    "flags" / Int32ul,
    "num_regions" / Int32ul,
    "num_irqs" / Int32ul,
)
DEVICE_INFO_SIZE = 16

RegionInfo = Struct(
    "argsz" / Int32ul,
    "flags" / Int32ul,
    "index" / Int32ul,
    "cap_offset" / Int32ul,
    "size" / Int64ul,
    "offset" / Int64ul,
)
REGION_INFO_SIZE = 32

# Region capability: header (id, version, next) and, for SPARSE_MMAP, the area list.
SparseMmapCap = Struct(
    "id" / Int16ul,
    "version" / Int16ul,
    "next" / Int32ul,
    "nr_areas" / Int32ul,
    "reserved" / Int32ul,
)
SparseMmapArea = Struct("offset" / Int64ul, "size" / Int64ul)

IrqInfo = Struct(
    "argsz" / Int32ul,
    "flags" / Int32ul,
    "index" / Int32ul,
    "count" / Int32ul,
)
IRQ_INFO_SIZE = 16

IrqSet = Struct(
    "argsz" / Int32ul,
    "flags" / Int32ul,
    "index" / Int32ul,
    "start" / Int32ul,
    "count" / Int32ul,
)
IRQ_SET_SIZE = 20

RegionAccess = Struct(
    "offset" / Int64ul,
    "region" / Int32ul,
    "count" / Int32ul,
)
REGION_ACCESS_SIZE = 16

RegionWriteMultiEntry = Struct(
    "offset" / Int64ul,
    "region" / Int32ul,
    "count" / Int32ul,
    "data" / Bytes(8),
)
REGION_WRITE_MULTI_ENTRY_SIZE = 24
RegionWriteMulti = Struct(
    "wr_cnt" / Int64ul,
    "writes" / RegionWriteMultiEntry[this.wr_cnt],
)


# Fast codecs of the fixed-size layouts above (see layout.py).
HEADER = Layout("Header", Header)
DMA_MAP = Layout("DmaMap", DmaMap)
DMA_UNMAP = Layout("DmaUnmap", DmaUnmap)
DEVICE_INFO = Layout("DeviceInfo", DeviceInfo)
REGION_INFO = Layout("RegionInfo", RegionInfo)
IRQ_INFO = Layout("IrqInfo", IrqInfo)
IRQ_SET = Layout("IrqSet", IrqSet)
REGION_ACCESS = Layout("RegionAccess", RegionAccess)
REGION_WRITE_MULTI_ENTRY = Layout("RegionWriteMultiEntry", RegionWriteMultiEntry)
SPARSE_MMAP_CAP = Layout("SparseMmapCap", SparseMmapCap)
SPARSE_MMAP_AREA = Layout("SparseMmapArea", SparseMmapArea)
