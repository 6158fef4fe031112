"""RUN_FRAGMENT for a pass with no draws.

Staging registers (genxml "FRAGMENT SR"): SR40-41 the FBD pointer with its tag, SR42
BBOX_MIN and SR43 BBOX_MAX as (y << 16) | x, inclusive pixel coordinates (what GL and panvk
write), SR44-46 the tile enable map (RUN_FRAGMENT "Enable TEM"; Mesa leaves it off).

With no draws every tile's buffer is the clear values, so the pass writes one value per
target over the bounding box clipped to the framebuffer's bounds and size; the tiles a
hardware renderer would walk one by one give the same memory contents.  Which targets reach
memory: see fbd.writes_back / writes_z / writes_s.

Every access goes through the group's address space: a bad address is an MMU fault the MMU
reports, and the scheduler turns it into a CS fatal.  A job is bounded (`MAX_BYTES`) so a
descriptor naming a huge surface cannot hold the device lock for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mali_regs import descriptors as D

from . import afbc, fbd, frame_shader, layouts, pixels
from .fault import FragmentFault, not_emulated
from .layouts import Rect

#: A 4096x4096 RGBA8 target plus its depth (about 1.5 s of writing here, under the device
#: lock); a model bound, reported as such: bigger passes would need the job split in slices.
MAX_BYTES = 128 << 20
#: pixels a frame shader runs on per pass (2048x2048: seconds of shader core time under the lock)
MAX_FRAME_SHADER_PIXELS = 1 << 22


@dataclass(frozen=True)
class FragmentJob:
    fbd_pointer: int   # SR40-41
    bbox_min: int      # SR42
    bbox_max: int      # SR43

    @property
    def bbox(self) -> Rect:
        return Rect(self.bbox_min & 0xFFFF, self.bbox_min >> 16,
                    (self.bbox_max & 0xFFFF) + 1, (self.bbox_max >> 16) + 1)


@dataclass(frozen=True)
class _Write:
    where: str
    block_format: int
    base: int
    row_stride: int
    pixel: bytes
    mask: bytes | None = None
    rt: D.Descriptor | None = None   # AFBC targets write headers from the RT descriptor


def _plan(fb: fbd.Framebuffer) -> list[_Write]:
    out = []
    for i, rt in enumerate(fb.rts):
        if fbd.writes_back(rt):
            where = f"{rt.layout.name} {i}"
            base, stride = ((rt.header, rt.row_stride) if D.is_afbc(rt.writeback_block_format)
                            else (rt.writeback_buffer_base, rt.writeback_buffer_row_stride))
            out.append(_Write(where, rt.writeback_block_format, base, stride, pixels.rt_pixel(rt, where), rt=rt))
    if fbd.writes_zs_target(fb):
        zs = fb.ext.zs
        v = pixels.zs_value(fb, bool(fb.params.z_write_enable), fbd.combined_stencil(fb))
        out.append(_Write("ZS Target", zs.block_format, *_surface(zs), v.pixel, v.mask, rt=zs))
    if fbd.writes_s_target(fb):
        s = fb.ext.s
        out.append(_Write("S Target", s.block_format, *_surface(s), pixels.s_value(fb), rt=s))
    return out


def _surface(target: D.Descriptor) -> tuple[int, int]:
    if D.is_afbc(target.block_format):
        return target.header, target.header_row_stride
    return target.base, target.row_stride


def _bytes(w: _Write, rect: Rect) -> int:
    area = (rect.x1 - rect.x0) * (rect.y1 - rect.y0)
    return area // 16 if D.is_afbc(w.block_format) else area * len(w.pixel)


def run_fragment(aspace, job: FragmentJob) -> fbd.Framebuffer:
    """Do the job; returns the decoded framebuffer (for traces and status).  Raises
    FragmentFault for descriptors it cannot honour, MmuFault for bad addresses."""
    fb = fbd.read(aspace, job.fbd_pointer)
    fbd.check(fb)
    p = fb.params
    image = Rect(0, 0, p.width, p.height)
    rect = job.bbox.clip(Rect(p.bound_min_x, p.bound_min_y, p.bound_max_x + 1, p.bound_max_y + 1)).clip(image)
    plan = _plan(fb)
    if rect.empty or not plan:
        return fb
    for i, attr in enumerate(fbd.PRE_FRAME_SHADERS):
        if p.name(attr) == "Always":
            area = (rect.x1 - rect.x0) * (rect.y1 - rect.y0)
            if area > MAX_FRAME_SHADER_PIXELS:
                raise FragmentFault(f"Pre Frame {i}: a frame shader over {area} pixels: more than this model's "
                                    f"bound of {MAX_FRAME_SHADER_PIXELS} per RUN_FRAGMENT", area)
            n = frame_shader.run(aspace, fb, i, rect)
            if n:
                raise not_emulated(f"Pre Frame {i}: the frame shader wrote {n} pixels (writing a frame "
                                   "shader's output back)", n)
    total = sum(_bytes(w, rect) for w in plan)
    if total > MAX_BYTES:
        raise FragmentFault(f"the pass would write {total >> 20} MiB over {rect}: more than this model's "
                            f"bound of {MAX_BYTES >> 20} MiB per RUN_FRAGMENT", total >> 20)
    for w in plan:
        bf = w.block_format
        if bf == D.BLOCK_FORMAT["Linear"]:
            layouts.write_linear(aspace, w.base, w.row_stride, len(w.pixel), rect, w.pixel, w.mask)
        elif bf == D.BLOCK_FORMAT["Tiled U-Interleaved"]:
            layouts.write_u_interleaved(aspace, w.base, w.row_stride, len(w.pixel), rect, w.pixel, w.mask)
        elif D.is_afbc(bf) and w.rt is not None and w.rt.layout is D.AFBC_RGB_RENDER_TARGET:
            afbc.write_solid(aspace, w.rt, w.where, rect, image, w.pixel)
        else:
            raise not_emulated(f"{w.where}: Block Format={D.BLOCK_FORMATS.get(bf, hex(bf))}", bf)
    return fb
