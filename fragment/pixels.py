"""The value each pixel of a cleared target holds in memory.

Colour: the four RT clear words hold the tile-buffer value (Mesa pan_pack_color; the words of
src/panfrost/lib/tests/test-clear.c).  Blendable formats keep 8-bit channels R, G, B, A in
bytes 0-3 of word 0 (internal R8G8B8A8) and the RT Swizzle says which tile-buffer channel
each memory channel takes (Mesa inverts the format's swizzle for rendering, so B8G8R8A8
is written B, G, R, A).  Non-blendable formats are raw: internal RAW8..RAW128 (the format's
size rounded up to a power of two) and writeback RAWn of the format's own size, the low n
bits of the clear words, little-endian.

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

_RGBA8_WRITEBACK = {D.COLOR_FORMAT["R8"]: 1, D.COLOR_FORMAT["R8G8"]: 2, D.COLOR_FORMAT["R8G8B8"]: 3,
                    D.COLOR_FORMAT["R8G8B8A8"]: 4}
_RAW_INTERNAL = {D.COLOR_BUFFER_INTERNAL_FORMAT[f"RAW{8 << i}"]: 8 << i for i in range(5)}
_RAW_WRITEBACK = {v: int(n[3:]) for v, n in D.COLOR_FORMATS.items() if n.startswith("RAW")}
_IDENTITY_SWIZZLE = "RGBA"


def rt_pixel(rt: D.Descriptor, where: str) -> bytes:
    """The bytes one pixel of cleared render target `rt` has in memory."""
    internal, wb = rt.internal_format, rt.writeback_format
    words = [rt.clear_color_0, rt.clear_color_1, rt.clear_color_2, rt.clear_color_3]
    if internal == D.COLOR_BUFFER_INTERNAL_FORMAT["R8G8B8A8"]:
        n = _RGBA8_WRITEBACK.get(wb)
        if n is None:
            raise not_emulated(f"{where}: Internal Format=R8G8B8A8 with Writeback Format={rt.name('writeback_format')}", wb)
        channels = words[0].to_bytes(4, "little") + b"\x00\xff"   # R G B A, then the constants 0 and 1
        swz = rt.raw_field("swizzle")
        out = bytearray()
        for i in range(n):
            c = (swz >> (3 * i)) & 7
            if c > 5:
                raise FragmentFault(f"{where}: Swizzle channel {i} = {c} is reserved", swz)
            out.append(channels[c])
        return bytes(out)
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
