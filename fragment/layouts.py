"""Writing a rectangle of one pixel value into a surface, in the layout its target names.

Linear: pixel (x, y) at base + y * row_stride + x * Bpp.

16x16 u-interleaved (Mesa src/panfrost/shared/pan_tiling.c; digest §5.7): the surface is
rows of 16x16 tiles, row_stride bytes per row of tiles, tiles of a row stored one after
the other (256 pixels each).  Within a tile, pixel (x, y) has index bit 2k+1 = y_k and bit
2k = x_k ^ y_k, k = 0..3.

A tile row's tiles are contiguous, so each row of tiles is one write; a tile only partly in
the rectangle (the bbox or the framebuffer edge cuts it) is read first and patched, since
the pixels outside the rectangle keep their contents.  `mask` (bytes of one pixel) keeps the
bytes it has zero: D24S8 with only depth or only stencil written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TILE = 16


@dataclass(frozen=True)
class Rect:
    """Pixels [x0, x1) x [y0, y1)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def empty(self) -> bool:
        return self.x0 >= self.x1 or self.y0 >= self.y1

    def clip(self, other: "Rect") -> "Rect":
        return Rect(max(self.x0, other.x0), max(self.y0, other.y0), min(self.x1, other.x1), min(self.y1, other.y1))


def _u_interleave_index() -> np.ndarray:
    y, x = np.mgrid[0:TILE, 0:TILE]
    idx = np.zeros((TILE, TILE), dtype=np.intp)
    for k in range(4):
        xk, yk = (x >> k) & 1, (y >> k) & 1
        idx |= (xk ^ yk) << (2 * k) | yk << (2 * k + 1)
    return idx


#: [y][x] -> index of the pixel within its 16x16 tile
U_INTERLEAVE_INDEX = _u_interleave_index()


def _blend(old: np.ndarray, pixel: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    return pixel if mask is None else (old & ~mask) | (pixel & mask)


def write_linear(aspace, base: int, row_stride: int, bpp: int, rect: Rect, pixel: bytes,
                 mask: bytes | None = None) -> None:
    width = rect.x1 - rect.x0
    pix = np.frombuffer(pixel, np.uint8)
    m = None if mask is None else np.frombuffer(mask, np.uint8)
    row = np.tile(pix, width)
    if m is None and rect.x0 == 0 and width * bpp == row_stride:
        aspace.write(base + rect.y0 * row_stride, np.tile(row, rect.y1 - rect.y0).tobytes())
        return
    for y in range(rect.y0, rect.y1):
        va = base + y * row_stride + rect.x0 * bpp
        if m is None:
            aspace.write(va, row.tobytes())
        else:
            old = np.frombuffer(aspace.read(va, width * bpp), np.uint8).reshape(width, bpp)
            aspace.write(va, _blend(old, pix, m).tobytes())


def write_u_interleaved(aspace, base: int, row_stride: int, bpp: int, rect: Rect, pixel: bytes,
                        mask: bytes | None = None) -> None:
    pix = np.frombuffer(pixel, np.uint8)
    m = None if mask is None else np.frombuffer(mask, np.uint8)
    tile_bytes = TILE * TILE * bpp
    tx0, tx1 = rect.x0 // TILE, (rect.x1 - 1) // TILE
    ntiles = tx1 - tx0 + 1
    for ty in range(rect.y0 // TILE, (rect.y1 - 1) // TILE + 1):
        va = base + ty * row_stride + tx0 * tile_bytes
        ya, yb = max(rect.y0 - ty * TILE, 0), min(rect.y1 - ty * TILE, TILE)
        whole = m is None and ya == 0 and yb == TILE and rect.x0 == tx0 * TILE and rect.x1 == (tx1 + 1) * TILE
        if whole:
            aspace.write(va, np.tile(pix, ntiles * TILE * TILE).tobytes())
            continue
        span = np.frombuffer(aspace.read(va, ntiles * tile_bytes), np.uint8).reshape(ntiles, TILE * TILE, bpp).copy()
        for t in range(ntiles):
            left = (tx0 + t) * TILE
            xa, xb = max(rect.x0 - left, 0), min(rect.x1 - left, TILE)
            sel = U_INTERLEAVE_INDEX[ya:yb, xa:xb].ravel()
            span[t, sel] = _blend(span[t, sel], pix, m)
        aspace.write(va, span.tobytes())
