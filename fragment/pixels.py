"""The value each pixel of a cleared target holds in memory.

Colour: the four RT clear words hold the tile-buffer value (Mesa pan_pack_color; the words of
src/panfrost/lib/tests/test-clear.c).  Blendable formats keep the channels R, G, B, A in
word 0 as fields whose top bits are the value and whose low bits are extra precision
(dithering): 8-bit fields for internal R8G8B8A8 and R4G4B4A4, 10-10-10-2 for R10G10B10A2,
R5G6B5A0 and R5G5B5A1 (read off test-clear's undithered vectors).  Writeback keeps each
channel's top bits, packed from bit 0 in memory-channel order, and the RT Swizzle says which
tile-buffer channel each memory channel takes (Mesa inverts the format's swizzle for
rendering, so B8G8R8A8 is written B, G, R, A).  sRGB targets hold sRGB-encoded clear words
already (pan_pack_color encodes them: test-clear's R8G8B8A8_SRGB vectors), so they are
written as they are.  Extra-precision bits set (a dithered clear) would be dithered per
pixel by the hardware, in a pattern this model does not know: refused.

Non-blendable formats are raw: internal RAW8..RAW128 (the format's size rounded up to a
power of two) and writeback RAWn of the format's own size, the low n bits of the clear
words, little-endian.

Depth/stencil: Z Clear (float) converted to the ZS target's Write Format (unorm with
round-to-nearest-even, or float), S Clear as the stencil byte; D24S8 keeps depth in bits
0-23 and stencil in 24-31.  `ZsValue.mask` keeps the half that is not written.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from mali_regs import descriptors as D

from .fault import FragmentFault, not_emulated

_F8 = ((0, 8), (8, 8), (16, 8), (24, 8))
_F10 = ((0, 10), (10, 10), (20, 10), (30, 2))
#: internal format -> (bit offset, width) of the R, G, B, A fields in clear word 0
_BLENDABLE_FIELDS = {D.COLOR_BUFFER_INTERNAL_FORMAT[n]: f for n, f in (
    ("R8G8B8A8", _F8), ("R4G4B4A4", _F8), ("R10G10B10A2", _F10), ("R5G6B5A0", _F10), ("R5G5B5A1", _F10))}
#: writeback format -> bits of memory channel 0, 1, ... (packed from bit 0)
_BLENDABLE_WRITEBACK = {D.COLOR_FORMAT[n]: bits for n, bits in (
    ("R8", (8,)), ("R8G8", (8, 8)), ("R8G8B8", (8, 8, 8)), ("R8G8B8A8", (8, 8, 8, 8)),
    ("R4G4B4A4", (4, 4, 4, 4)), ("R5G6B5", (5, 6, 5)), ("R5G5B5A1", (5, 5, 5, 1)),
    ("R10G10B10A2", (10, 10, 10, 2)))}
_ZERO, _ONE = 4, 5   # Channel "0" and "1"
_RAW_INTERNAL = {D.COLOR_BUFFER_INTERNAL_FORMAT[f"RAW{8 << i}"]: 8 << i for i in range(5)}
_RAW_WRITEBACK = {v: int(n[3:]) for v, n in D.COLOR_FORMATS.items() if n.startswith("RAW")}
_IDENTITY_SWIZZLE = "RGBA"


def rt_pixel(rt: D.Descriptor, where: str) -> bytes:
    """The bytes one pixel of cleared render target `rt` has in memory."""
    internal, wb = rt.internal_format, rt.writeback_format
    words = [rt.clear_color_0, rt.clear_color_1, rt.clear_color_2, rt.clear_color_3]
    fields = _BLENDABLE_FIELDS.get(internal)
    if fields is not None:
        bits = _BLENDABLE_WRITEBACK.get(wb)
        if bits is None:
            raise not_emulated(f"{where}: Internal Format={rt.name('internal_format')} with "
                               f"Writeback Format={rt.name('writeback_format')}", wb)
        swz, value, pos = rt.raw_field("swizzle"), 0, 0
        for i, obits in enumerate(bits):
            c = (swz >> (3 * i)) & 7
            if c == _ZERO or c == _ONE:
                v = (1 << obits) - 1 if c == _ONE else 0
            elif c < 4:
                shift, fbits = fields[c]
                field = (words[0] >> shift) & ((1 << fbits) - 1)
                if obits > fbits:
                    raise not_emulated(f"{where}: {obits}-bit channel {i} from a {fbits}-bit "
                                       f"{rt.name('internal_format')} field", wb)
                if field & ((1 << (fbits - obits)) - 1):
                    raise not_emulated(f"{where}: clear colour with extra precision (Dithered Clear="
                                       f"{bool(rt.dithered_clear)}) written back as {rt.name('writeback_format')}",
                                       words[0])
                v = field >> (fbits - obits)
            else:
                raise FragmentFault(f"{where}: Swizzle channel {i} = {c} is reserved", swz)
            value |= v << pos
            pos += obits
        return value.to_bytes(pos // 8, "little")
    ibits = _RAW_INTERNAL.get(internal)
    if ibits is not None:
        wbits = _RAW_WRITEBACK.get(wb)
        if wbits is None or wbits > ibits:
            raise not_emulated(f"{where}: Internal Format={rt.name('internal_format')} with "
                               f"Writeback Format={rt.name('writeback_format')}", wb)
        swizzle = rt.to_dict()["Swizzle"]
        if swizzle != _IDENTITY_SWIZZLE:
            raise not_emulated(f"{where}: Swizzle={swizzle} on a raw format")
        value = sum(w << (32 * i) for i, w in enumerate(words))
        return (value & ((1 << wbits) - 1)).to_bytes(wbits // 8, "little")
    raise not_emulated(f"{where}: Internal Format={rt.name('internal_format')}", internal)


@dataclass(frozen=True)
class ZsValue:
    pixel: bytes
    mask: bytes | None   # bytes of the pixel to write; None: all of them


def _unorm(z: float, bits: int) -> int:
    if z != z:  # NaN
        z = 0.0
    return int(np.rint(min(max(z, 0.0), 1.0) * ((1 << bits) - 1)))


def zs_value(fb, write_z: bool, stencil: bool) -> ZsValue:
    """The ZS target's pixel: depth, and the stencil of a combined D24S8 (`stencil`)."""
    zs, p = fb.ext.zs, fb.params
    fmt = zs.name("write_format")
    if fmt == "D16":
        return ZsValue(_unorm(p.z_clear, 16).to_bytes(2, "little"), None)
    if fmt == "D32":
        return ZsValue(struct.pack("<f", p.z_clear), None)
    if fmt in ("D24X8", "D24S8"):
        stencil = stencil and fmt == "D24S8"
        value = _unorm(p.z_clear, 24) | (p.s_clear << 24 if stencil else 0)
        mask = (0xFFFFFF if write_z else 0) | (0xFF000000 if stencil else 0)
        if fmt == "D24X8" and write_z:
            mask = 0xFFFFFFFF  # X8 is padding: written with the depth (as zero)
        return ZsValue(value.to_bytes(4, "little"), None if mask == 0xFFFFFFFF else mask.to_bytes(4, "little"))
    raise not_emulated(f"ZS Target: Write Format={fmt}", zs.write_format)


def s_value(fb) -> bytes:
    """The separate stencil target's pixel."""
    s, p = fb.ext.s, fb.params
    fmt = s.name("write_format")
    if fmt == "S8":
        return bytes([p.s_clear])
    raise not_emulated(f"S Target: Write Format={fmt}", s.write_format)
