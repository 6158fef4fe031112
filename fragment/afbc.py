"""AFBC writeback of a cleared render target: every superblock is one solid colour.

Facts from Mesa (src/panfrost/lib/pan_afbc.h, pan_layout.c, pan_desc.c, pan_mod_conv_cso.c):
- the surface is 16x16-pixel superblocks (32x8 when "Wide block"), each with a 16-byte header
  in the header buffer ("Header"); payloads follow at "Body offset" and are not needed for a
  solid block;
- a header is a 32-bit body offset, then sixteen 6-bit subblock sizes from bit 32; subblock
  0 of size 0 means the whole superblock is "filled with a solid color specified in the
  header";
- v9+ render targets take "Row stride" as the bytes between two rows of headers; with tiled
  headers ("AFBC Tiled", modifier TILED) 8x8 superblocks are kept together, so a header row
  is a row of such tiles (width / 16 * 8 * 16 bytes).

**Not verified** (no source read states them; only this model reads its AFBC back):
the colour sits in header bytes 8-15 (the pixel value, little-endian, zero-padded); within
an 8x8 header tile the headers are in row-major order; the colour is stored as written,
before any YTR colour transform.

Partly covered superblocks would need their contents decoded and re-encoded: refused.
"""

from __future__ import annotations

import numpy as np

from mali_regs import descriptors as D

from .fault import FragmentFault, not_emulated
from .layouts import Rect

HEADER_BYTES = 16
SUPERBLOCK = 16
HEADER_TILE = 8

#: AFBC Compression Mode -> bytes of a pixel of that mode (the formats a clear needs)
MODE_BYTES = {D.AFBC_COMPRESSION_MODE["R8"]: 1, D.AFBC_COMPRESSION_MODE["R8G8"]: 2,
              D.AFBC_COMPRESSION_MODE["R8G8B8"]: 3, D.AFBC_COMPRESSION_MODE["R8G8B8A8"]: 4}


def solid_header(pixel: bytes) -> bytes:
    if len(pixel) > 8:
        raise not_emulated(f"AFBC solid colour of {len(pixel)} bytes")
    return bytes(8) + pixel.ljust(8, b"\0")


def header_offset(sx: int, sy: int, row_stride: int, tiled: bool) -> int:
    if not tiled:
        return sy * row_stride + sx * HEADER_BYTES
    tile = HEADER_TILE * HEADER_TILE * HEADER_BYTES
    return ((sy // HEADER_TILE) * row_stride + (sx // HEADER_TILE) * tile
            + ((sy % HEADER_TILE) * HEADER_TILE + sx % HEADER_TILE) * HEADER_BYTES)


def write_solid(aspace, rt: D.Descriptor, where: str, rect: Rect, image: Rect, pixel: bytes) -> None:
    """Headers of every superblock `rect` touches; `image` is the framebuffer (pixels beyond
    it are padding, so a superblock the rectangle covers up to the image edge is whole)."""
    if rt.wide_block or rt.split_block:
        raise not_emulated(f"{where}: AFBC {'Wide' if rt.wide_block else 'Split'} block")
    mode = rt.compression_mode
    n = MODE_BYTES.get(mode)
    if n is None:
        raise not_emulated(f"{where}: AFBC Compression mode={rt.name('compression_mode')}", mode)
    if n > len(pixel):
        raise FragmentFault(f"{where}: AFBC Compression mode={rt.name('compression_mode')} wider than "
                            f"Writeback Format={rt.name('writeback_format')}", mode)
    header = np.frombuffer(solid_header(pixel[:n]), np.uint8)
    tiled = rt.writeback_block_format == D.BLOCK_FORMAT["AFBC Tiled"]
    sx0, sx1 = rect.x0 // SUPERBLOCK, (rect.x1 - 1) // SUPERBLOCK
    for sy in range(rect.y0 // SUPERBLOCK, (rect.y1 - 1) // SUPERBLOCK + 1):
        for sx in (sx0, sx1):
            block = Rect(sx * SUPERBLOCK, sy * SUPERBLOCK, (sx + 1) * SUPERBLOCK, (sy + 1) * SUPERBLOCK).clip(image)
            if block.clip(rect) != block:
                raise not_emulated(f"{where}: AFBC superblock ({sx}, {sy}) only partly in the bounding box")
        if not tiled:
            aspace.write(rt.header + header_offset(sx0, sy, rt.row_stride, False),
                         np.tile(header, sx1 - sx0 + 1).tobytes())
            continue
        sx = sx0
        while sx <= sx1:  # the headers of one header tile's row are contiguous
            end = min(sx1, sx - sx % HEADER_TILE + HEADER_TILE - 1)
            aspace.write(rt.header + header_offset(sx, sy, rt.row_stride, True),
                         np.tile(header, end - sx + 1).tobytes())
            sx = end + 1
