"""Valhall v10 GPU descriptors (what RUN_COMPUTE / RUN_FRAGMENT read from memory), as data.

One decoder for the model, traces and ``mali-vdev status``.  Layouts, field names, enum
names, defaults and modifiers are Mesa's ``src/panfrost/genxml/v10.xml`` (facts only): a
field is declared as genxml declares it, ``start="word:bit"`` plus ``size``, so each line
can be checked against the XML by eye.  Python attribute names are the genxml names in
snake case, as Mesa's generated C spells them (``Writeback Block Format`` ->
``writeback_block_format``); members of a nested genxml struct are flattened as
"<field> <member>" (``Writeback buffer Base`` is C's ``writeback_buffer.base``).

Modifiers (genxml ``modifier=``) are applied both ways: a decoded field holds the logical
value (``Width`` is the width, not width - 1; ``Pointer`` the address, not address >> 6),
and :meth:`Layout.encode` takes logical values.  Enum fields decode to the raw value;
:meth:`Descriptor.name` gives its genxml name and :meth:`Descriptor.reserved` lists every
enum field whose value the table does not name, so a consumer can fault naming it.

Quick tour::

    rt = RGB_RENDER_TARGET.decode(data)            # 64 bytes
    rt.writeback_block_format == BLOCK_FORMAT["Linear"]
    rt.name("internal_format")                     # 'R8G8B8A8'
    rt.reserved()                                  # [] or ['Writeback Format=0x17']
    rt.text()                                      # one line, non-zero fields only
    RGB_RENDER_TARGET.encode(internal_format="R8G8B8A8", write_enable=True, ...)
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from .enums import by_name

__all__ = [
    "DESCRIPTOR_TYPES", "SHADER_STAGES", "BUFFER_TYPES", "REGISTER_ALLOCATIONS", "FLUSH_TO_ZERO_MODES",
    "COVERAGE_BITMASK_TYPES", "WARP_LIMITS", "ADDRESS_MODES", "BLOCK_FORMATS", "WRITEBACK_MODES", "MSAA_MODES",
    "COLOR_BUFFER_INTERNAL_FORMATS", "COLOR_FORMATS", "Z_INTERNAL_FORMATS", "ZS_FORMATS", "S_FORMATS",
    "PRE_POST_FRAME_SHADER_MODES", "SAMPLE_PATTERNS", "TIE_BREAK_RULES", "DOWNSCALES",
    "AFBC_COMPRESSION_MODES", "TILE_RENDER_ORDERS", "TASK_AXES", "CHANNELS",
    "DESCRIPTOR_TYPE", "SHADER_STAGE", "BUFFER_TYPE", "REGISTER_ALLOCATION", "BLOCK_FORMAT", "WRITEBACK_MODE",
    "MSAA", "COLOR_BUFFER_INTERNAL_FORMAT", "COLOR_FORMAT", "Z_INTERNAL_FORMAT", "ZS_FORMAT", "S_FORMAT",
    "PRE_POST_FRAME_SHADER_MODE", "AFBC_COMPRESSION_MODE",
    "TEXTURE_DIMENSIONS", "PLANE_TYPES", "CLUMP_ORDERINGS", "CLUMP_FORMATS", "FORMATS", "RGB_COMPONENT_ORDERS",
    "TEXTURE_DIMENSION", "PLANE_TYPE", "CLUMP_ORDERING", "CLUMP_FORMAT", "FORMAT", "RGB_COMPONENT_ORDER",
    "PIXEL_FORMAT", "TEXTURE", "GENERIC_PLANE", "AFBC_PLANE", "AFBC_SUPERBLOCK_SIZES",
    "BLEND_MODES", "BLEND_OPERANDS_A", "BLEND_OPERANDS_B", "BLEND_OPERANDS_C", "BLEND", "DRAW", "DRAW_SIZE",
    "COMPUTE_SR", "FRAGMENT_SR",
    "DField", "Layout", "Descriptor",
    "SHADER_PROGRAM", "LOCAL_STORAGE", "RESOURCE", "BUFFER", "COMPUTE_SIZE_WORKGROUP",
    "FRAMEBUFFER_POINTER", "FRAMEBUFFER_PARAMETERS", "CRC", "ZS_TARGET", "AFBC_ZS_TARGET", "S_TARGET",
    "AFBC_S_TARGET", "RGB_RENDER_TARGET", "AFBC_RGB_RENDER_TARGET", "LAYOUTS",
    "FBD_PARAMETERS_SIZE", "FBD_PADDING_SIZE", "ZS_CRC_EXTENSION_SIZE", "RENDER_TARGET_SIZE",
    "ZsCrcExtension", "decode_zs_crc_extension", "decode_render_target", "is_afbc",
]


def _table(d: Mapping[int, str]) -> MappingProxyType:
    return MappingProxyType(dict(d))


# --- enums (genxml <enum>, {value: name}) ----------------------------------------------------

DESCRIPTOR_TYPES = _table({0: "Null", 1: "Sampler", 2: "Texture", 5: "Attribute", 7: "Depth/stencil",
                           8: "Shader", 9: "Buffer", 10: "Plane"})
SHADER_STAGES = _table({1: "Compute", 2: "Fragment", 3: "Vertex"})
BUFFER_TYPES = _table({1: "Simple", 2: "Tiler heap", 3: "Structure", 4: "Vertex packet"})
#: "Shader Register Allocation"
REGISTER_ALLOCATIONS = _table({0: "64 Per Thread", 2: "32 Per Thread"})
FLUSH_TO_ZERO_MODES = _table({0: "Preserve subnormals", 1: "DX11", 2: "Always", 3: "Abrupt"})
COVERAGE_BITMASK_TYPES = _table({0: "DX", 1: "GL"})
WARP_LIMITS = _table({0: "Full", 1: "Half", 2: "One-quarter", 3: "One-height"})
ADDRESS_MODES = _table({0: "Flat", 1: "Packed"})
BLOCK_FORMATS = _table({0: "No Write", 1: "Tiled U-Interleaved", 2: "Linear", 12: "AFBC", 13: "AFBC Tiled"})
WRITEBACK_MODES = _table({0: "Compat", 6: "AFRC RGB", 7: "AFRC YUV"})
#: "MSAA" (Writeback MSAA, ZS/S MSAA)
MSAA_MODES = _table({0: "Single", 1: "Average", 2: "Multiple", 3: "Layered"})
COLOR_BUFFER_INTERNAL_FORMATS = _table({
    0: "Raw Value", 1: "R8G8B8A8", 2: "R10G10B10A2", 3: "R8G8B8A2", 4: "R4G4B4A4", 5: "R5G6B5A0",
    6: "R5G5B5A1", 32: "RAW8", 33: "RAW16", 34: "RAW32", 35: "RAW64", 36: "RAW128"})
COLOR_FORMATS = _table({
    0: "RAW8", 1: "RAW16", 2: "RAW24", 3: "RAW32", 4: "RAW48", 5: "RAW64", 6: "RAW96", 7: "RAW128",
    8: "RAW192", 9: "RAW256", 10: "RAW384", 11: "RAW512", 12: "RAW768", 13: "RAW1024", 14: "RAW1536",
    15: "RAW2048", 16: "R8", 17: "R8G8", 18: "R8G8B8", 19: "R8G8B8A8", 20: "R4G4B4A4", 21: "R5G6B5",
    22: "R8G8B8_FROM_R8G8B8A2", 24: "R10G10B10A2", 25: "A2B10G10R10", 28: "R5G5B5A1", 29: "A1B5G5R5",
    31: "NATIVE"})
Z_INTERNAL_FORMATS = _table({0: "D16", 1: "D24", 2: "D32"})
ZS_FORMATS = _table({1: "D16", 2: "D24", 4: "D24X8", 5: "D24S8", 14: "D32"})
S_FORMATS = _table({1: "S8", 4: "X24S8"})
PRE_POST_FRAME_SHADER_MODES = _table({0: "Never", 1: "Always", 2: "Intersect", 3: "Early ZS always"})
SAMPLE_PATTERNS = _table({0: "Single-sampled", 1: "Ordered 4x Grid", 2: "Rotated 4x Grid", 3: "D3D 8x Grid",
                          4: "D3D 16x Grid"})
TIE_BREAK_RULES = _table({0: "0_IN_180_OUT", 1: "0_OUT_180_IN", 2: "MINUS_180_IN_0_OUT", 3: "MINUS_180_OUT_0_IN",
                          4: "90_IN_270_OUT", 5: "90_OUT_270_IN", 6: "MINUS_90_IN_90_OUT", 7: "MINUS_90_OUT_90_IN"})
DOWNSCALES = _table({0: "None", 1: "2x", 2: "4x"})
AFBC_COMPRESSION_MODES = _table({
    0: "R8", 1: "R16", 3: "R8G8", 4: "R5G6B5", 5: "R4G4B4A4", 6: "R5G5B5A1", 8: "R16G16", 9: "R8G8B8",
    10: "R8G8B8A8", 11: "R10G10B10A2", 12: "R11G11B10", 14: "S8", 15: "X24S8", 16: "R16G16B16",
    17: "R16G16B16A16", 23: "R10G10B10A10", 32: "YUV420 6c8", 34: "YUV420 2c8", 35: "YUV420 1c8",
    37: "YUV422 4c8", 38: "YUV422 2c8", 39: "YUV422 1c8", 40: "YUV420 6c10", 42: "YUV420 2c10",
    43: "YUV420 1c10", 45: "YUV422 4c10", 46: "YUV422 2c10", 47: "YUV422 1c10"})
TILE_RENDER_ORDERS = _table({0: "Z Order", 1: "Horizontal", 2: "Vertical", 5: "Reverse horizontal",
                             6: "Reverse vertical"})
TASK_AXES = _table({0: "X", 1: "Y", 2: "Z"})
TEXTURE_DIMENSIONS = _table({0: "Cube", 1: "1D", 2: "2D", 3: "3D", 4: "2D Image Crop"})
PLANE_TYPES = _table({0: "Null", 1: "Generic", 4: "ASTC 2D", 5: "ASTC 3D", 6: "AFBC", 8: "Chroma 2p", 10: "AFRC",
                      11: "AFRC Chroma 2p"})
CLUMP_ORDERINGS = _table({1: "Tiled U-Interleaved", 2: "Linear"})
#: "Clump Format": the raw and depth/stencil ones (compressed and YUV values are not declared)
CLUMP_FORMATS = _table({0: "RAW8", 1: "RAW16", 2: "RAW32", 3: "RAW64", 4: "RAW128", 8: "RAW24", 9: "RAW48",
                        10: "RAW96", 16: "D32X32", 17: "X32D32", 18: "X32S8X24", 19: "X24S8X32", 20: "X24S8",
                        21: "S8X24", 22: "S8", 24: "L4A4", 25: "L8A8", 26: "A8"})
#: "Format" (the 8-bit format code of a Pixel Format): the plain colour formats only
FORMATS = _table({
    131: "R8UI", 132: "R16UI", 133: "R32UI", 139: "RG8UI", 140: "RG16UI", 141: "RG32UI", 147: "RGB8UI",
    148: "RGB16UI", 149: "RGB32UI", 155: "RGBA8UI", 156: "RGBA16UI", 157: "RGBA32UI",
    163: "R8 UNORM", 164: "R16 UNORM", 167: "R32F", 171: "RG8 UNORM", 172: "RG16 UNORM", 175: "RG32F",
    179: "RGB8 UNORM", 180: "RGB16 UNORM", 183: "RGB32F", 187: "RGBA8 UNORM", 188: "RGBA16 UNORM",
    191: "RGBA32F", 195: "R8I", 196: "R16I", 197: "R32I", 203: "RG8I", 204: "RG16I", 205: "RG32I",
    211: "RGB8I", 212: "RGB16I", 213: "RGB32I", 219: "RGBA8I", 220: "RGBA16I", 221: "RGBA32I",
    199: "R16F", 207: "RG16F", 215: "RGB16F", 223: "RGBA16F"})
RGB_COMPONENT_ORDERS = _table({0: "RGBA", 2: "GRBA", 4: "BGRA", 8: "ARGB", 10: "AGRB", 12: "ABGR", 16: "RGB1",
                               18: "GRB1", 20: "BGR1", 24: "1RGB", 26: "1GRB", 28: "1BGR", 226: "RRRR",
                               227: "RRR1", 228: "RRRA", 229: "000A", 230: "0001", 231: "0000"})
#: "Channel", the 3-bit elements of a "Component Swizzle" (R first, in bits 0-2)
CHANNELS = _table({0: "R", 1: "G", 2: "B", 3: "A", 4: "0", 5: "1"})

DESCRIPTOR_TYPE = by_name(DESCRIPTOR_TYPES)          # DESCRIPTOR_TYPE["Shader"] == 8
SHADER_STAGE = by_name(SHADER_STAGES)
BUFFER_TYPE = by_name(BUFFER_TYPES)
REGISTER_ALLOCATION = by_name(REGISTER_ALLOCATIONS)
BLOCK_FORMAT = by_name(BLOCK_FORMATS)                # BLOCK_FORMAT["Linear"] == 2
WRITEBACK_MODE = by_name(WRITEBACK_MODES)
MSAA = by_name(MSAA_MODES)
COLOR_BUFFER_INTERNAL_FORMAT = by_name(COLOR_BUFFER_INTERNAL_FORMATS)
COLOR_FORMAT = by_name(COLOR_FORMATS)
Z_INTERNAL_FORMAT = by_name(Z_INTERNAL_FORMATS)
ZS_FORMAT = by_name(ZS_FORMATS)
S_FORMAT = by_name(S_FORMATS)
PRE_POST_FRAME_SHADER_MODE = by_name(PRE_POST_FRAME_SHADER_MODES)
TEXTURE_DIMENSION = by_name(TEXTURE_DIMENSIONS)
PLANE_TYPE = by_name(PLANE_TYPES)
CLUMP_ORDERING = by_name(CLUMP_ORDERINGS)
CLUMP_FORMAT = by_name(CLUMP_FORMATS)
FORMAT = by_name(FORMATS)
RGB_COMPONENT_ORDER = by_name(RGB_COMPONENT_ORDERS)
AFBC_COMPRESSION_MODE = by_name(AFBC_COMPRESSION_MODES)

#: Staging registers of RUN_COMPUTE / RUN_FRAGMENT (genxml "COMPUTE SR", "FRAGMENT SR").
COMPUTE_SR = MappingProxyType({
    "SRT_0": 0, "SRT_1": 2, "SRT_2": 4, "SRT_3": 6, "FAU_0": 8, "FAU_1": 10, "FAU_2": 12, "FAU_3": 14,
    "SPD_0": 16, "SPD_1": 18, "SPD_2": 20, "SPD_3": 22, "TSD_0": 24, "TSD_1": 26, "TSD_2": 28, "TSD_3": 30,
    "GLOBAL_ATTRIBUTE_OFFSET": 32, "WG_SIZE": 33, "JOB_OFFSET_X": 34, "JOB_OFFSET_Y": 35, "JOB_OFFSET_Z": 36,
    "JOB_SIZE_X": 37, "JOB_SIZE_Y": 38, "JOB_SIZE_Z": 39})
FRAGMENT_SR = MappingProxyType({"FBD_POINTER": 40, "BBOX_MIN": 42, "BBOX_MAX": 43, "TEM_POINTER": 44,
                                "TEM_ROW_STRIDE": 46})


# --- the framework --------------------------------------------------------------------------

_MOD = re.compile(r"^(minus|shr|align)\((\d+)\)$|^log2$")


def snake(name: str) -> str:
    """Mesa's C spelling of a genxml name: ``Has ZS CRC Extension`` -> ``has_zs_crc_extension``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


@dataclass(frozen=True, slots=True)
class DField:
    """One genxml ``<field>``: bits ``[start, start + size)`` counted from word 0 bit 0."""

    name: str                       # genxml name
    start: int                      # absolute bit
    size: int
    type: str | Mapping[int, str]   # uint int bool hex address float swizzle, or an enum table
    modifier: str | None = None     # minus(N) shr(N) log2 (genxml)
    default: Any = None             # logical value (or enum name) when encode() is not given one

    @property
    def attr(self) -> str:
        return snake(self.name)

    @property
    def word(self) -> int:
        return self.start // 32

    @property
    def bit(self) -> int:
        return self.start % 32

    @property
    def enum(self) -> Mapping[int, str] | None:
        return None if isinstance(self.type, str) else self.type

    @property
    def mask(self) -> int:
        return ((1 << self.size) - 1) << self.start

    def logical(self, raw: int) -> Any:
        """The value a raw bit pattern stands for (modifier undone)."""
        t = self.type
        if t == "bool":
            return bool(raw)
        if t == "int":
            return raw - (1 << self.size) if raw >> (self.size - 1) else raw
        if t == "float":
            return struct.unpack("<f", struct.pack("<I", raw))[0]
        m = self.modifier
        if m is None:
            return raw
        if m == "log2":
            return 1 << raw
        kind, n = m[:m.index("(")], int(m[m.index("(") + 1:-1])
        if kind == "minus":
            return raw + n
        if kind == "shr":
            return raw << n
        return raw  # align(): stored as is

    def raw_of(self, value: Any) -> int:
        """Bits for a logical value (modifier applied, range checked)."""
        t = self.type
        if isinstance(value, str):
            if self.enum is not None:
                value = by_name(self.enum).get(value)
                if value is None:
                    raise ValueError(f"{self.name}: unknown value name (known: {', '.join(self.enum.values())})")
            elif t == "swizzle":
                value = _pack_swizzle(value)
            else:
                raise ValueError(f"{self.name} has no enum; got {value!r}")
        if t == "float":
            return struct.unpack("<I", struct.pack("<f", float(value)))[0]
        v = int(value)
        m = self.modifier
        if m == "log2":
            if v <= 0 or v & (v - 1):
                raise ValueError(f"{self.name}: {v:#x} is not a power of two")
            v = v.bit_length() - 1
        elif m is not None and m.startswith("minus("):
            v -= int(m[6:-1])
        elif m is not None and m.startswith("shr("):
            n = int(m[4:-1])
            if v & ((1 << n) - 1):
                raise ValueError(f"{self.name}: {v:#x} is not a multiple of {1 << n}")
            v >>= n
        if t == "int":
            if not -(1 << (self.size - 1)) <= v < (1 << (self.size - 1)):
                raise ValueError(f"{self.name}: {v} does not fit {self.size} signed bits")
            return v & ((1 << self.size) - 1)
        if v < 0 or v >> self.size:
            raise ValueError(f"{self.name}: {v:#x} does not fit {self.size} bits")
        return v

    def format(self, value: Any, raw: int) -> str:
        e = self.enum
        if e is not None:
            n = e.get(raw)
            return n if n is not None else f"{raw:#x}(reserved)"
        if self.type in ("hex", "address"):
            return f"{value:#x}"
        if self.type == "swizzle":
            return _swizzle_text(raw)
        return str(value)


def _pack_swizzle(text: str) -> int:
    by = by_name(CHANNELS)
    if len(text) != 4 or any(c not in by for c in text):
        raise ValueError(f"swizzle {text!r}: four of {''.join(CHANNELS.values())}")
    return sum(by[c] << (3 * i) for i, c in enumerate(text))


def _swizzle_text(raw: int) -> str:
    return "".join(CHANNELS.get((raw >> (3 * i)) & 7, "?") for i in range(4))


def f(name: str, start: str | int, size: int, type: str | Mapping[int, str] = "uint",
      modifier: str | None = None, default: Any = None) -> DField:
    """A field as genxml writes it: ``f("Width", "8:0", 16, modifier="minus(1)")``."""
    if isinstance(start, str) and ":" in start:
        w, b = start.split(":")
        bit = int(w) * 32 + int(b)
    else:
        bit = int(start)
    if modifier is not None and not _MOD.match(modifier):
        raise ValueError(f"{name}: unknown modifier {modifier}")
    return DField(name, bit, size, type, modifier, default)


class Layout:
    """A genxml ``<struct>``: a name, a size in 32-bit words and its fields (they may overlap,
    as genxml's stage-dependent ones do)."""

    def __init__(self, name: str, words: int, fields: tuple[DField, ...]) -> None:
        self.name = name
        self.words = words
        self.size = words * 4
        self.fields = fields
        by_attr: dict[str, DField] = {}
        for fd in fields:
            if fd.start + fd.size > words * 32:
                raise ValueError(f"{name}.{fd.name}: outside {words} words")
            if fd.attr in by_attr:
                raise ValueError(f"{name}: duplicate field {fd.name}")
            by_attr[fd.attr] = fd
        self.by_attr = MappingProxyType(by_attr)

    def field(self, name: str) -> DField:
        """A field by genxml name or snake-case attribute."""
        return self.by_attr[snake(name)]

    def decode(self, data: bytes | bytearray | memoryview) -> "Descriptor":
        if len(data) < self.size:
            raise ValueError(f"{self.name}: {len(data)} bytes, needs {self.size}")
        return Descriptor(self, int.from_bytes(bytes(data[:self.size]), "little"))

    def decode_int(self, value: int) -> "Descriptor":
        """Decode a value already in a register (WG_SIZE, the FBD pointer in SR40)."""
        return Descriptor(self, value & ((1 << (self.words * 32)) - 1))

    def encode_int(self, **values: Any) -> int:
        """The descriptor as an integer (word 0 in the low bits); see :meth:`encode`."""
        unknown = set(values) - set(self.by_attr)
        if unknown:
            raise ValueError(f"{self.name}: no field {', '.join(sorted(unknown))}")
        out = 0
        for fd in self.fields:
            if fd.attr in values:
                raw = fd.raw_of(values[fd.attr])
            elif fd.default is not None:
                raw = fd.raw_of(fd.default)
            else:
                continue
            out = (out & ~fd.mask) | (raw << fd.start)
        return out

    def encode(self, **values: Any) -> bytes:
        """Little-endian bytes from logical values by attribute name; enum values by value or
        name; fields not given take genxml's default, else raw 0 (as Mesa's pack macros)."""
        return self.encode_int(**values).to_bytes(self.size, "little")

    def __repr__(self) -> str:
        return f"<Layout {self.name} ({self.size} bytes, {len(self.fields)} fields)>"


class Descriptor:
    """A decoded descriptor: attribute per field (logical values), genxml names for enums."""

    def __init__(self, layout: Layout, raw: int) -> None:
        self.__dict__["layout"] = layout
        self.__dict__["raw"] = raw

    def raw_field(self, name: str) -> int:
        fd = self.layout.field(name)
        return (self.raw >> fd.start) & ((1 << fd.size) - 1)

    def __getattr__(self, attr: str) -> Any:
        fd = self.layout.by_attr.get(attr)
        if fd is None:
            raise AttributeError(f"{self.layout.name} has no field {attr!r}")
        return fd.logical((self.raw >> fd.start) & ((1 << fd.size) - 1))

    def __setattr__(self, key, value):
        raise AttributeError("descriptors are read-only; build a new one with Layout.encode()")

    def name(self, attr: str) -> str | None:
        """genxml name of an enum field's value (None when reserved/unknown)."""
        fd = self.layout.field(attr)
        if fd.enum is None:
            raise ValueError(f"{self.layout.name}.{fd.name} is not an enum")
        return fd.enum.get(self.raw_field(attr))

    def reserved(self) -> list[str]:
        """``Field=0xN`` for every enum field holding a value the table does not name."""
        out = []
        for fd in self.layout.fields:
            if fd.enum is not None:
                raw = (self.raw >> fd.start) & ((1 << fd.size) - 1)
                if raw not in fd.enum:
                    out.append(f"{fd.name}={raw:#x}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """``{genxml name: value}``, enums by name (``0xN(reserved)`` when unknown)."""
        out: dict[str, Any] = {}
        for fd in self.layout.fields:
            raw = (self.raw >> fd.start) & ((1 << fd.size) - 1)
            value = fd.logical(raw)
            out[fd.name] = fd.format(value, raw) if fd.enum is not None or fd.type == "swizzle" else value
        return out

    def text(self) -> str:
        """One line for logs and traces: the name, then every field whose bits are not zero."""
        parts = []
        for fd in self.layout.fields:
            raw = (self.raw >> fd.start) & ((1 << fd.size) - 1)
            if raw == 0:
                continue
            value = fd.logical(raw)
            parts.append(fd.name if fd.type == "bool" else f"{fd.name}={fd.format(value, raw)}")
        return f"{self.layout.name}: " + (", ".join(parts) if parts else "all zero")

    def to_bytes(self) -> bytes:
        return self.raw.to_bytes(self.layout.size, "little")

    def __repr__(self) -> str:
        return f"<{self.text()}>"


# --- the descriptors ------------------------------------------------------------------------

SHADER_PROGRAM = Layout("Shader Program", 8, (
    f("Type", "0:0", 4, DESCRIPTOR_TYPES, default="Shader"),
    f("Stage", "0:4", 4, SHADER_STAGES),
    f("Fragment coverage bitmask type", "0:8", 1, COVERAGE_BITMASK_TYPES),
    f("Vertex warp limit", "0:8", 2, WARP_LIMITS),
    f("Suppress NaN", "0:16", 1, "bool"),
    f("Flush to zero mode", "0:17", 2, FLUSH_TO_ZERO_MODES),
    f("Suppress Inf", "0:19", 1, "bool"),
    f("Requires helper threads", "0:28", 1, "bool"),
    f("Shader contains JUMP_EX", "0:29", 1, "bool"),
    f("Register allocation", "0:30", 2, REGISTER_ALLOCATIONS),
    f("Preload", "1:0", 16, "hex"),            # struct "Preload": bit i = r(48 + i)
    f("Binary", "2:0", 64, "address"),
))

LOCAL_STORAGE = Layout("Local Storage", 8, (
    f("TLS Size", "0:0", 5),
    # log2 of the instance count; 0x80000000 ("No Workgroup Mem", the default) packs as 31
    f("WLS Instances", "1:0", 5, modifier="log2", default=0x80000000),
    f("WLS Size Base", "1:5", 2),
    f("WLS Size Scale", "1:8", 5),
    f("TLS Base Pointer", "2:0", 48, "address"),
    f("TLS Address Mode", "3:28", 4, ADDRESS_MODES),
    f("WLS Base Pointer", "4:0", 64, "address"),
))
LOCAL_STORAGE_NO_WORKGROUP_MEM = 0x80000000

RESOURCE = Layout("Resource", 4, (
    f("Address", "0:0", 56, "address"),
    f("Contains descriptors", "1:24", 1, "bool", default=True),
    f("Size", "2:0", 64),
))

BUFFER = Layout("Buffer", 8, (
    f("Type", "0:0", 4, DESCRIPTOR_TYPES, default="Buffer"),
    f("Buffer type", "0:4", 4, BUFFER_TYPES, default="Simple"),
    f("Size", "1:0", 32),
    f("Address", "2:0", 64, "address"),
    f("Stride", "4:0", 32),                                     # structured buffers
    f("Packet stride", "4:0", 16, modifier="shr(6)"),           # vertex packet buffers
    f("Attribute stride", "4:16", 16),
    f("Conversion", "7:0", 32, "hex"),                          # texel buffers, not read by HW
))

#: genxml type "Pixel Format" (22 bits, as in Texture.Format): not a struct in v10.xml; the split is
#: Mesa's pan_format.h MALI_PACK_FMT for v7+ (component order in bits 0-7, format code in 12-19, sRGB 20).
PIXEL_FORMAT = Layout("Pixel Format", 1, (
    f("Component order", 0, 8, RGB_COMPONENT_ORDERS),
    f("Format", 12, 8, FORMATS),
    f("sRGB", 20, 1, "bool"),
    f("Big endian", 21, 1, "bool"),
))

TEXTURE = Layout("Texture", 8, (
    f("Type", "0:0", 4, DESCRIPTOR_TYPES, default="Texture"),
    f("Dimension", "0:4", 3, TEXTURE_DIMENSIONS),
    f("Sample corner position", "0:8", 1, "bool"),
    f("Normalize coordinates", "0:9", 1, "bool"),
    f("Format", "0:10", 22, "hex"),                             # a Pixel Format (PIXEL_FORMAT)
    f("Width", "1:0", 16, modifier="minus(1)"),
    f("Height", "1:16", 16, modifier="minus(1)"),
    f("Swizzle", "2:0", 12, "swizzle"),
    f("Texel interleave", "2:12", 1, "bool"),
    f("Levels", "2:16", 5, modifier="minus(1)", default=1),
    f("Minimum level", "2:24", 5),
    f("Minimum LOD", "3:0", 13),                                # ulod
    f("Sample count", "3:13", 3, modifier="log2", default=1),
    f("Maximum LOD", "3:16", 13),
    f("Surfaces", "4:0", 64, "address"),                        # the Plane descriptors
    f("Array size", "6:0", 16, modifier="minus(1)", default=1),
    f("Depth", "7:0", 16, modifier="minus(1)", default=1),
))

#: "Generic Plane" (a Texture's surfaces; other plane types share Type / Plane type)
GENERIC_PLANE = Layout("Generic Plane", 8, (
    f("Type", "0:0", 4, DESCRIPTOR_TYPES, default="Plane"),
    f("Plane type", "0:4", 4, PLANE_TYPES, default="Generic"),
    f("Clump ordering", "0:8", 4, CLUMP_ORDERINGS),
    f("Clump format", "0:24", 8, CLUMP_FORMATS),
    f("Size", "1:0", 32),
    f("Pointer", "2:0", 64, "address"),
    f("Row stride", "4:0", 32),
    f("Slice stride", "6:0", 32),
    f("Width", "7:0", 16, modifier="minus(1)", default=1),
    f("Height", "7:16", 16, modifier="minus(1)", default=1),
))

AFBC_SUPERBLOCK_SIZES = _table({0: "16x16", 1: "32x8", 2: "64x4"})

AFBC_PLANE = Layout("AFBC Plane", 8, (
    f("Type", "0:0", 4, DESCRIPTOR_TYPES, default="Plane"),
    f("Plane type", "0:4", 4, PLANE_TYPES, default="AFBC"),
    f("Superblock size", "0:8", 3, AFBC_SUPERBLOCK_SIZES),
    f("YTR", "0:16", 1, "bool"),
    f("Split block", "0:17", 1, "bool"),
    f("Alpha hint", "0:18", 1, "bool"),
    f("Tiled header", "0:19", 1, "bool"),
    f("Prefetch", "0:20", 1, "bool"),
    f("Compression mode", "0:26", 6, AFBC_COMPRESSION_MODES),
    f("Size", "1:0", 32),
    f("Pointer", "2:0", 64, "address"),
    f("Header row stride", "4:0", 32),
    f("Header slice size", "5:0", 32),
    f("Header slice stride", "6:0", 32),
    f("Width", "7:0", 16, modifier="minus(1)", default=1),
    f("Height", "7:16", 16, modifier="minus(1)", default=1),
))

BLEND_MODES = _table({0: "Shader", 1: "Opaque", 2: "Fixed-Function", 3: "Off"})
BLEND_OPERANDS_A = _table({1: "Zero", 2: "Src", 3: "Dest"})
BLEND_OPERANDS_B = _table({0: "Src Minus Dest", 1: "Src Plus Dest", 2: "Src", 3: "Dest"})
BLEND_OPERANDS_C = _table({1: "Zero", 2: "Src", 3: "Dest", 4: "Src x 2", 5: "Src Alpha", 6: "Dest Alpha",
                           7: "Constant"})


def _blend_function(prefix: str, bit: int) -> tuple[DField, ...]:   # struct "Blend Function" in "Blend Equation"
    return (f(f"Equation {prefix} A", 32 + bit, 2, BLEND_OPERANDS_A),
            f(f"Equation {prefix} Negate A", 32 + bit + 3, 1, "bool"),
            f(f"Equation {prefix} B", 32 + bit + 4, 2, BLEND_OPERANDS_B),
            f(f"Equation {prefix} Negate B", 32 + bit + 7, 1, "bool"),
            f(f"Equation {prefix} C", 32 + bit + 8, 3, BLEND_OPERANDS_C),
            f(f"Equation {prefix} Invert C", 32 + bit + 11, 1, "bool"))


#: "Blend" (one per render target, the Draw's Blend array); Internal is the "Internal Blend" union
BLEND = Layout("Blend", 4, (
    f("Load Destination", "0:0", 1, "bool"),
    f("Alpha To One", "0:8", 1, "bool"),
    f("Enable", "0:9", 1, "bool", default=True),
    f("sRGB", "0:10", 1, "bool"),
    f("Round to FB precision", "0:11", 1, "bool"),
    f("Blend Constant", "0:16", 16),
) + _blend_function("RGB", 0) + _blend_function("Alpha", 12) + (
    f("Equation Color Mask", "1:28", 4),
    f("Internal Mode", "2:0", 2, BLEND_MODES),
    f("Internal Fixed-Function Num Comps", "2:3", 2, modifier="minus(1)", default=1),
    f("Internal Fixed-Function RT", "2:16", 4),
    f("Internal Fixed-Function Conversion", "3:0", 32, "hex"),   # "Internal Conversion"
    f("Internal Shader PC", "3:4", 28, modifier="shr(4)"),
))

#: "Draw" (a DCD; 128 bytes): the fields a frame shader needs, "Shader" (struct "Shader
#: Environment") flattened at word 16
DRAW = Layout("Draw", 32, (
    f("Flags 0", "0:0", 32, "hex"),
    f("Flags 1 Sample mask", "1:0", 16),
    f("Flags 1 Render target mask", "1:16", 8, "hex"),
    f("Flags 2 Read mask", "5:0", 12, "hex"),
    f("Flags 2 Write mask", "5:12", 12, "hex"),
    f("Depth/stencil", "10:0", 64, "address"),
    f("Blend count", "12:0", 4),
    f("Blend", "12:4", 60, "address", modifier="shr(4)"),
    f("Occlusion", "14:0", 64, "address"),
    f("Shader Attribute offset", "16:0", 32),
    f("Shader FAU count", "17:0", 8),
    f("Shader Resources", "24:0", 64, "address"),
    f("Shader Shader", "26:0", 64, "address"),
    f("Shader Thread storage", "28:0", 64, "address"),
    f("Shader FAU", "30:0", 64, "address"),
))
DRAW_SIZE = 128

#: The WG_SIZE staging register (RUN_COMPUTE SR33).
COMPUTE_SIZE_WORKGROUP = Layout("Compute size workgroup", 1, (
    f("Workgroup size X", 0, 10, modifier="minus(1)"),
    f("Workgroup size Y", 10, 10, modifier="minus(1)"),
    f("Workgroup size Z", 20, 10, modifier="minus(1)"),
    f("Allow merging workgroups", 31, 1, "bool"),
))

#: The FBD pointer | tag in RUN_FRAGMENT SR40-41.
FRAMEBUFFER_POINTER = Layout("Framebuffer pointer", 2, (
    f("Type", 0, 1, "bool", default=True),
    f("ZS CRC Extension present", 1, 1, "bool"),
    f("Render target count", 2, 4, modifier="minus(1)"),
    f("Pointer", 6, 58, "address", modifier="shr(6)"),
))

FRAMEBUFFER_PARAMETERS = Layout("Framebuffer Parameters", 16, (
    f("Pre Frame 0", "0:0", 3, PRE_POST_FRAME_SHADER_MODES),
    f("Pre Frame 1", "0:3", 3, PRE_POST_FRAME_SHADER_MODES),
    f("Post Frame", "0:6", 3, PRE_POST_FRAME_SHADER_MODES),
    f("Downscale geometry", "0:9", 2, DOWNSCALES),
    f("Internal layer index", "0:24", 8),
    f("Frame argument", "2:0", 64, "hex"),
    f("Sample Locations", "4:0", 64, "address"),
    f("Frame Shader DCDs", "6:0", 64, "address"),
    f("Width", "8:0", 16, modifier="minus(1)"),
    f("Height", "8:16", 16, modifier="minus(1)"),
    f("Bound Min X", "9:0", 16),
    f("Bound Min Y", "9:16", 16),
    f("Bound Max X", "10:0", 16),
    f("Bound Max Y", "10:16", 16),
    f("Sample Count", "11:0", 3, modifier="log2", default=1),
    f("Sample Pattern", "11:3", 3, SAMPLE_PATTERNS),
    f("Tie-Break Rule", "11:6", 3, TIE_BREAK_RULES),
    f("Effective Tile Size", "11:9", 4, modifier="log2"),
    f("First provoking vertex", "11:14", 1, "bool"),
    f("Point sprite coord origin max Y", "11:15", 1, "bool", default=True),
    f("Blend suppress Inf", "11:16", 1, "bool"),
    f("Blend suppress NaN", "11:17", 1, "bool"),
    f("Blend suppress denorm", "11:18", 1, "bool"),
    f("Render Target Count", "11:19", 4, modifier="minus(1)"),
    f("Color Buffer Allocation", "11:24", 8, modifier="shr(10)"),
    f("S Clear", "12:0", 8),
    f("S Write Enable", "12:8", 1, "bool"),
    f("S Preload Enable", "12:9", 1, "bool"),
    f("S Unload Enable", "12:10", 1, "bool"),
    f("Z Internal Format", "12:16", 2, Z_INTERNAL_FORMATS),
    f("Z Write Enable", "12:18", 1, "bool"),
    f("Z Preload Enable", "12:19", 1, "bool"),
    f("Z Unload Enable", "12:20", 1, "bool"),
    f("Has ZS CRC Extension", "12:21", 1, "bool"),
    f("Empty Tile Read Enable", "12:28", 1, "bool"),
    f("Empty Tile Write Enable", "12:29", 1, "bool"),
    f("CRC Read Enable", "12:30", 1, "bool"),
    f("CRC Write Enable", "12:31", 1, "bool"),
    f("Z Clear", "13:0", 32, "float"),
    f("Tiler", "14:0", 64, "address"),
))

# The ZS CRC Extension (16 words) is a union of these, each at word 0 of the extension.
CRC = Layout("CRC", 16, (
    f("Render Target", "0:13", 3),
    f("Row Stride", "1:0", 32),
    f("Clear Color", "2:0", 64, "hex"),
    f("Base", "4:0", 64, "address"),
))
ZS_TARGET = Layout("ZS Target", 16, (
    f("Write Format", "0:0", 4, ZS_FORMATS),
    f("Block Format", "0:4", 4, BLOCK_FORMATS),
    f("MSAA", "0:8", 2, MSAA_MODES, default="Single"),
    f("Clean Pixel Write Enable", "0:31", 1, "bool"),
    f("Base", "8:0", 64, "address"),
    f("Row Stride", "10:0", 32),
    f("Surface Stride", "11:0", 32),
))
AFBC_ZS_TARGET = Layout("AFBC ZS Target", 16, (
    f("Write Format", "0:0", 4, ZS_FORMATS),
    f("Block Format", "0:4", 4, BLOCK_FORMATS),
    f("MSAA", "0:8", 2, MSAA_MODES, default="Single"),
    f("Reverse Issue Order", "0:30", 1, "bool"),
    f("Clean Pixel Write Enable", "0:31", 1, "bool"),
    f("Header", "8:0", 64, "address"),
    f("Header Row Stride", "10:0", 32),     # header clumps per row
    f("Body Offset", "11:0", 32),
))
S_TARGET = Layout("S Target", 16, (
    f("Write Format", "0:16", 4, S_FORMATS),
    f("Block Format", "0:20", 4, BLOCK_FORMATS),
    f("MSAA", "0:24", 2, MSAA_MODES, default="Single"),
    f("Clean Pixel Write Enable", "0:31", 1, "bool"),
    f("Base", "12:0", 64, "address"),
    f("Row Stride", "14:0", 32),
    f("Surface Stride", "15:0", 32),
))
AFBC_S_TARGET = Layout("AFBC S Target", 16, (
    f("Write Format", "0:16", 4, S_FORMATS),
    f("Block Format", "0:20", 4, BLOCK_FORMATS),
    f("MSAA", "0:24", 2, MSAA_MODES, default="Single"),
    f("Reverse Issue Order", "0:30", 1, "bool"),
    f("Clean Pixel Write Enable", "0:31", 1, "bool"),
    f("Header", "12:0", 64, "address"),
    f("Header Row Stride", "14:0", 32),
    f("Body Offset", "15:0", 32),
))


def _rt_common() -> tuple[DField, ...]:
    return (
        f("Writeback Mode", "0:0", 4, WRITEBACK_MODES, default="Compat"),
        f("Internal Buffer Offset", "0:4", 12, modifier="shr(4)"),
        f("YUV Enable", "0:24", 1, "bool"),
        f("Dithered Clear", "0:25", 1, "bool"),
        f("Internal Format", "0:26", 6, COLOR_BUFFER_INTERNAL_FORMATS),
        f("Write Enable", "1:0", 1, "bool"),
        f("Writeback Format", "1:3", 5, COLOR_FORMATS),
        f("Writeback Block Format", "1:8", 4, BLOCK_FORMATS),
        f("Writeback MSAA", "1:12", 2, MSAA_MODES),
        f("sRGB", "1:14", 1, "bool"),
        f("Dithering Enable", "1:15", 1, "bool"),
        f("Swizzle", "1:16", 12, "swizzle"),
        f("Clean Pixel Write Enable", "1:31", 1, "bool"),
    )


def _rt_clear() -> tuple[DField, ...]:   # struct "RT Clear" at word 12
    return tuple(f(f"Clear Color {i}", f"{12 + i}:0", 32, "hex") for i in range(4))


RGB_RENDER_TARGET = Layout("RGB Render Target", 16, _rt_common() + (
    # struct "RT Buffer" at word 8 ("Writeback buffer")
    f("Writeback buffer Base", "8:0", 64, "address"),
    f("Writeback buffer Row Stride", "10:0", 32),
    f("Writeback buffer Surface Stride", "11:0", 32),
) + _rt_clear())

AFBC_RGB_RENDER_TARGET = Layout("AFBC RGB Render Target", 16, _rt_common() + (
    f("YUV Transform", "2:0", 1, "bool"),
    f("Split block", "2:1", 1, "bool"),
    f("Wide block", "2:2", 1, "bool"),
    f("Reverse issue order", "2:3", 1, "bool"),
    f("Front buffer", "2:4", 1, "bool"),
    f("Alpha hint", "2:5", 1, "bool"),
    f("Compression mode", "2:10", 6, AFBC_COMPRESSION_MODES),
    f("Header", "8:0", 64, "address"),
    f("Row stride", "10:0", 32),
    f("Body offset", "11:0", 32),
) + _rt_clear())

LAYOUTS = MappingProxyType({lay.name: lay for lay in (
    SHADER_PROGRAM, LOCAL_STORAGE, RESOURCE, BUFFER, COMPUTE_SIZE_WORKGROUP, FRAMEBUFFER_POINTER,
    FRAMEBUFFER_PARAMETERS, CRC, ZS_TARGET, AFBC_ZS_TARGET, S_TARGET, AFBC_S_TARGET,
    RGB_RENDER_TARGET, AFBC_RGB_RENDER_TARGET, PIXEL_FORMAT, TEXTURE, GENERIC_PLANE, AFBC_PLANE, BLEND, DRAW)})

# Framebuffer descriptor in memory (genxml aggregate "Framebuffer", then what the tag says):
# Parameters (64 bytes) + Padding (64), the ZS CRC Extension (64) if flagged, then one
# Render Target (64) per RT.
FBD_PARAMETERS_SIZE = 64
FBD_PADDING_SIZE = 64
ZS_CRC_EXTENSION_SIZE = 64
RENDER_TARGET_SIZE = 64


def is_afbc(block_format: int) -> bool:
    return block_format in (BLOCK_FORMAT["AFBC"], BLOCK_FORMAT["AFBC Tiled"])


@dataclass(frozen=True)
class ZsCrcExtension:
    """The union decoded: the CRC view and the ZS and S views their block formats select."""

    crc: Descriptor
    zs: Descriptor
    s: Descriptor

    def text(self) -> str:
        return " | ".join(d.text() for d in (self.zs, self.s, self.crc))


def decode_zs_crc_extension(data: bytes) -> ZsCrcExtension:
    zs = ZS_TARGET.decode(data)
    s = S_TARGET.decode(data)
    return ZsCrcExtension(
        CRC.decode(data),
        AFBC_ZS_TARGET.decode(data) if is_afbc(zs.block_format) else zs,
        AFBC_S_TARGET.decode(data) if is_afbc(s.block_format) else s)


def decode_render_target(data: bytes) -> Descriptor:
    """A "Render Target" union member chosen as the hardware does: AFBC block formats use the
    AFBC RGB layout, others the RGB one.  (YUV and AFRC render targets are not declared: the
    consumer sees ``yuv_enable`` / ``writeback_mode`` and faults naming them.)"""
    rt = RGB_RENDER_TARGET.decode(data)
    return AFBC_RGB_RENDER_TARGET.decode(data) if is_afbc(rt.writeback_block_format) else rt

