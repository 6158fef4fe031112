"""Texel fetch: a Texture descriptor, its Generic Plane and the texels at integer coordinates.

What TEX_FETCH needs, apart from the instruction itself (interp.py):
- the image handle (Mesa's bifrost_compile.c bi_emit_tex_valhall): sampler index in bits 0-10,
  sampler table 11-15, texture index 16-26, texture table 27-31; the texture table is a
  resource-table entry holding 32-byte descriptors, the texture index picks one;
- the Texture descriptor (v10.xml) names its Plane descriptors ("Surfaces"), one 32-byte
  Generic Plane per array layer for a single-level texture;
- texel (x, y) of a plane: linear at pointer + y * row stride + x * Bpp; 16x16 u-interleaved
  (pan_tiling.c) at pointer + (y / 16) * row stride + (x / 16) * 256 * Bpp + i * Bpp, where the
  index i within the tile has bit 2k+1 = y_k and bit 2k = x_k ^ y_k (k = 0..3);
- the Pixel Format's format code says what a texel's bytes mean (FORMAT_INFO below);
- AFBC planes (16x16 superblocks, one 16-byte header each, rows of headers "Header row stride"
  apart; with "Tiled header" 8x8 headers kept together, row-major within): only superblocks of
  one solid colour are read, with the encoding fragment/afbc.py writes (subblock 0 of size 0;
  the colour in header bytes 8-15, as stored, before any YTR transform: **not verified**
  against hardware, the same convention as our writer). A compressed payload faults naming it.

Anything else (other plane types, mip levels past 0 of an array, formats not in the table,
component orders other than RGBA) raises TextureError naming it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mali_regs.descriptors import (
    AFBC_PLANE,
    AFBC_SUPERBLOCK_SIZES,
    CLUMP_ORDERING,
    DESCRIPTOR_TYPE,
    FORMATS,
    GENERIC_PLANE,
    PIXEL_FORMAT,
    PLANE_TYPE,
    RESOURCE,
    RGB_COMPONENT_ORDER,
    TEXTURE,
    TEXTURE_DIMENSION,
)

DESCRIPTOR_SIZE = 32
TILE = 16
# Format code -> (channels, bits per channel, kind): "unorm" reads as f32 in [0, 1], "uint"/"sint"
# as 32-bit integers, "float" as f32 (from 32-bit floats only).
FORMAT_INFO = {
    "R8 UNORM": (1, 8, "unorm"), "RG8 UNORM": (2, 8, "unorm"), "RGB8 UNORM": (3, 8, "unorm"),
    "RGBA8 UNORM": (4, 8, "unorm"), "R16 UNORM": (1, 16, "unorm"), "RG16 UNORM": (2, 16, "unorm"),
    "RGBA16 UNORM": (4, 16, "unorm"),
    "R8UI": (1, 8, "uint"), "RG8UI": (2, 8, "uint"), "RGB8UI": (3, 8, "uint"), "RGBA8UI": (4, 8, "uint"),
    "R16UI": (1, 16, "uint"), "RG16UI": (2, 16, "uint"), "RGBA16UI": (4, 16, "uint"),
    "R32UI": (1, 32, "uint"), "RG32UI": (2, 32, "uint"), "RGB32UI": (3, 32, "uint"), "RGBA32UI": (4, 32, "uint"),
    "R8I": (1, 8, "sint"), "RG8I": (2, 8, "sint"), "RGBA8I": (4, 8, "sint"), "R16I": (1, 16, "sint"),
    "RG16I": (2, 16, "sint"), "RGBA16I": (4, 16, "sint"), "R32I": (1, 32, "sint"), "RG32I": (2, 32, "sint"),
    "RGBA32I": (4, 32, "sint"),
    "R32F": (1, 32, "float"), "RG32F": (2, 32, "float"), "RGB32F": (3, 32, "float"), "RGBA32F": (4, 32, "float"),
}
#: the register type a format's texels naturally read as
KIND_TYPE = {"unorm": "f", "float": "f", "uint": "u", "sint": "s"}
_CONSTANT = {4: 0, 5: 1}          # swizzle channels "0" and "1"


class TextureError(Exception):
    """A texture the model cannot read (or that is malformed): the reason names the field."""


@dataclass(frozen=True)
class Surface:
    """One texture's addressing: planes (pointer, row stride, slice stride) per layer."""

    handle: int
    width: int
    height: int
    layers: int
    depth: int
    format: str
    channels: int
    bits: int
    kind: str
    swizzle: tuple[int, ...]      # per output component: source channel 0-3, or 4 ("0") / 5 ("1")
    tiled: bool                   # u-interleaved; for AFBC: tiled headers
    planes: tuple[tuple[int, int, int], ...]   # (pointer, row stride, slice stride); AFBC: header row stride
    afbc: bool = False

    @property
    def bpp(self) -> int:
        return self.channels * self.bits // 8


def u_interleave_index(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index of pixel (x, y) (each 0..15) within its 16x16 tile."""
    i = np.zeros_like(x)
    for k in range(4):
        xk, yk = (x >> k) & 1, (y >> k) & 1
        i |= (xk ^ yk) << (2 * k) | yk << (2 * k + 1)
    return i


def resolve(read, srt: int, handle: int) -> Surface:
    """The Surface an image handle names, read through `read(va, n)` (the address space)."""
    table, index = handle >> 27, (handle >> 16) & 0x7FF
    entry = RESOURCE.decode(read(srt + 16 * table, 16))
    if DESCRIPTOR_SIZE * index + DESCRIPTOR_SIZE > entry.size:
        raise TextureError(f"texture handle 0x{handle:x}: texture {index} is past the {entry.size} bytes of "
                           f"resource table entry {table}")
    tex = TEXTURE.decode(read(entry.address + DESCRIPTOR_SIZE * index, DESCRIPTOR_SIZE))
    if tex.type != DESCRIPTOR_TYPE["Texture"]:
        raise TextureError(f"texture handle 0x{handle:x}: not a Texture descriptor: {tex.text()}")
    if tex.dimension not in (TEXTURE_DIMENSION["1D"], TEXTURE_DIMENSION["2D"]):
        raise TextureError(f"Texture Dimension={tex.name('dimension') or hex(tex.dimension)} not implemented")
    if tex.sample_count != 1:
        raise TextureError(f"Texture Sample count={tex.sample_count} not implemented")
    pf = PIXEL_FORMAT.decode_int(tex.format)
    fmt = FORMATS.get(pf.format)
    if fmt not in FORMAT_INFO:
        raise TextureError(f"Texture Format: format {fmt or hex(pf.format)} not implemented")
    if pf.component_order != RGB_COMPONENT_ORDER["RGBA"] or pf.srgb or pf.big_endian:
        raise TextureError(f"Texture Format: {PIXEL_FORMAT.decode_int(tex.format).text()} not implemented "
                           "(RGBA order, linear, little-endian only)")
    channels, bits, kind = FORMAT_INFO[fmt]
    swizzle = tuple((tex.raw_field("swizzle") >> (3 * i)) & 7 for i in range(4))
    if any(s > 5 for s in swizzle):
        raise TextureError(f"Texture Swizzle {tex.swizzle}: reserved channel")
    layers = tex.array_size
    if tex.levels > 1 and layers > 1:
        raise TextureError(f"Texture Levels={tex.levels} with Array size={layers}: plane order not implemented")
    planes, tiled, afbc = [], None, None
    for layer in range(layers):
        raw = read(tex.surfaces + DESCRIPTOR_SIZE * layer * tex.levels, DESCRIPTOR_SIZE)
        p = GENERIC_PLANE.decode(raw)
        if p.type != DESCRIPTOR_TYPE["Plane"] or p.plane_type not in (PLANE_TYPE["Generic"], PLANE_TYPE["AFBC"]):
            raise TextureError(f"texture handle 0x{handle:x} layer {layer}: plane type "
                               f"{p.name('plane_type') or hex(p.plane_type)} not implemented: {p.text()}")
        if p.plane_type == PLANE_TYPE["AFBC"]:
            p = AFBC_PLANE.decode(raw)
            if p.superblock_size != 0 or p.split_block:
                raise TextureError(f"AFBC Plane Superblock size="
                                   f"{AFBC_SUPERBLOCK_SIZES.get(p.superblock_size, hex(p.superblock_size))}"
                                   f"{', Split block' if p.split_block else ''} not implemented")
            is_afbc, t, plane = True, p.tiled_header, (p.pointer, p.header_row_stride, p.header_slice_stride)
        else:
            order = p.clump_ordering
            if order not in (CLUMP_ORDERING["Linear"], CLUMP_ORDERING["Tiled U-Interleaved"]):
                raise TextureError(f"Generic Plane Clump ordering={order:#x} is reserved")
            is_afbc, t, plane = False, order == CLUMP_ORDERING["Tiled U-Interleaved"], (p.pointer, p.row_stride,
                                                                                       p.slice_stride)
        if (tiled is not None and t != tiled) or (afbc is not None and is_afbc != afbc):
            raise TextureError("planes of one texture laid out differently")
        tiled, afbc = t, is_afbc
        planes.append(plane)
    return Surface(handle, tex.width, tex.height, layers, tex.depth, fmt, channels, bits, kind, swizzle,
                   bool(tiled), tuple(planes), bool(afbc))


def texel_addresses(s: Surface, x: np.ndarray, y: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """GPU addresses (uint64) of the texels at in-range integer coordinates."""
    base = np.array([p[0] for p in s.planes], np.uint64)[layer]
    stride = np.array([p[1] for p in s.planes], np.uint64)[layer]
    xs, ys = x.astype(np.uint64), y.astype(np.uint64)
    bpp = np.uint64(s.bpp)
    if not s.tiled:
        return base + ys * stride + xs * bpp
    t = np.uint64(TILE)
    within = u_interleave_index(x.astype(np.int64) & 15, y.astype(np.int64) & 15).astype(np.uint64)
    return base + (ys // t) * stride + (xs // t) * (t * t * bpp) + within * bpp


AFBC_HEADER, AFBC_HEADER_TILE = 16, 8


def afbc_header_addresses(s: Surface, x: np.ndarray, y: np.ndarray, layer: np.ndarray) -> np.ndarray:
    base = np.array([p[0] for p in s.planes], np.uint64)[layer]
    stride = np.array([p[1] for p in s.planes], np.uint64)[layer]
    sx, sy = (x // TILE).astype(np.uint64), (y // TILE).astype(np.uint64)
    h, n = np.uint64(AFBC_HEADER), np.uint64(AFBC_HEADER_TILE)
    if not s.tiled:
        return base + sy * stride + sx * h
    return base + (sy // n) * stride + (sx // n) * (n * n * h) + ((sy % n) * n + sx % n) * h


def afbc_solid_texels(s: Surface, headers: np.ndarray) -> np.ndarray:
    """Headers (n, 16) -> texel bytes (n, Bpp) of solid-colour superblocks."""
    sub0 = headers[:, 4] & 0x3F                      # subblock 0's size: bits 32-37
    if (sub0 != 0).any():
        raise TextureError(f"AFBC superblock with a compressed payload (subblock 0 size {int(sub0[sub0 != 0][0])}) "
                           "not implemented")
    if s.bpp > 8:
        raise TextureError(f"AFBC solid colour of {s.bpp} bytes")
    return np.ascontiguousarray(headers[:, 8:8 + s.bpp])


def unpack(s: Surface, data: np.ndarray) -> np.ndarray:
    """Texel bytes (n, Bpp) -> register words (4, n) uint32 after the descriptor's swizzle:
    UNORM as f32 c / (2^bits - 1), integers zero/sign-extended, missing channels 0 (alpha 1)."""
    n = data.shape[0]
    if s.bits == 8:
        ch = data.astype(np.uint32)
    elif s.bits == 16:
        ch = data.view("<u2").astype(np.uint32)
    else:
        ch = data.view("<u4").astype(np.uint32)
    ch = ch.reshape(n, s.channels)
    one = {"unorm": np.float32(1).view(np.uint32), "float": np.float32(1).view(np.uint32)}.get(s.kind, np.uint32(1))
    full = np.zeros((4, n), np.uint32)
    full[3] = one
    for c in range(s.channels):
        v = ch[:, c]
        if s.kind == "unorm":
            v = (v.astype(np.float32) / np.float32((1 << s.bits) - 1)).view(np.uint32)
        elif s.kind == "sint" and s.bits < 32:
            v = ((v.astype(np.int64) ^ (1 << (s.bits - 1))) - (1 << (s.bits - 1))).astype(np.int32).view(np.uint32)
        full[c] = v
    out = np.empty((4, n), np.uint32)
    for i, src in enumerate(s.swizzle):
        if src in _CONSTANT:
            out[i] = np.uint32(0) if src == 4 else one
        else:
            out[i] = full[src]
    return out
