"""Pre-frame shaders: the fragment shader a Draw descriptor (DCD) names, run on the shader core
once per pixel of the pass before the tile buffer is written back (Pre Frame mode "Always").

Where things are (v10.xml): the DCDs at Framebuffer Parameters "Frame Shader DCDs", 128 bytes
each (Pre Frame 0, Pre Frame 1, Post Frame); a DCD's "Shader" environment names the Shader
Program, its resource table, FAU words and thread storage; its Blend array one Blend
descriptor per render target, which BLEND names through FAU special page 0 entries 8-15
(blend_descriptor_N: the descriptor's Internal words, 2-3).

Preloaded registers (Mesa bifrost_compile.c, fragment): r59 the pixel (x in bits 0-15, y in
16-31), r60 the coverage mask (bit 0: the one sample of a single-sampled pass); r61 is
preloaded by panvk's fb-load shader but not read by it: 0 here (**not verified**).

What is modelled: BLEND in Opaque mode replacing the colour (equation Src, all channels).
panvk's fb-load shader (pan-fb-load) reloads the pixels outside the render area and gives the
others a zero coverage, so with the render area covering the framebuffer it writes nothing
and the clear stands. A frame shader that does write pixels faults naming how many: writing
its output back (format conversion, non-uniform AFBC) is not implemented yet.
"""

from __future__ import annotations

import numpy as np

from mali_regs import descriptors as D
from shader.interp import Program, ShaderFault, Threads
from shader.memory import LaneMemory

from .fault import DATA_INVALID, FragmentFault, not_emulated
from .layouts import Rect

MAX_LANES = 4096                   # pixels run at once
MAX_INSTRUCTIONS = 1 << 16         # vector instructions per batch: a frame shader that loops forever faults
_PRELOADS = {59, 60, 61}
_BLEND_SIZE = 16


def _blend_checked(b: D.Descriptor, where: str) -> None:
    if b.name("internal_mode") != "Opaque":
        raise not_emulated(f"{where}: Internal Mode={b.name('internal_mode')}", b.internal_mode)
    replace = all(b.name(f"equation_{c}_a") == "Src" and b.name(f"equation_{c}_b") == "Src"
                  and b.name(f"equation_{c}_c") == "Zero" and not b.raw_field(f"equation_{c}_negate_a")
                  and not b.raw_field(f"equation_{c}_negate_b") and not b.raw_field(f"equation_{c}_invert_c")
                  for c in ("rgb", "alpha"))
    if not b.enable or b.load_destination or not replace or b.equation_color_mask != 15:
        raise not_emulated(f"{where}: blending other than replacing every channel ({b.text()})")


def run(aspace, fb, which: int, rect: Rect) -> int:
    """Run frame shader `which` (0, 1: Pre Frame 0/1) over `rect`; returns the pixels it wrote."""
    p = fb.params
    where = f"Pre Frame {which} DCD"
    dcd = D.DRAW.decode(aspace.read(p.frame_shader_dcds + D.DRAW_SIZE * which, D.DRAW_SIZE))
    spd = D.SHADER_PROGRAM.decode(aspace.read(dcd.shader_shader, D.SHADER_PROGRAM.size))
    if spd.name("type") != "Shader" or spd.name("stage") != "Fragment":
        raise FragmentFault(f"{where}: Shader {spd.text()} is not a fragment Shader Program", spd.raw & 0xFFFFFFFF)
    preload = {48 + i for i in range(16) if spd.preload >> i & 1}
    if preload - _PRELOADS:
        raise not_emulated(f"{where}: fragment shader preloading r{min(preload - _PRELOADS)}", spd.preload)
    blends = []
    for i in range(dcd.blend_count):
        b = D.BLEND.decode(aspace.read(dcd.blend + _BLEND_SIZE * i, _BLEND_SIZE))
        _blend_checked(b, f"{where} Blend {i}")
        blends.append(b)
    fau = np.frombuffer(aspace.read(dcd.shader_fau, 8 * dcd.shader_fau_count), "<u4").copy() \
        if dcd.shader_fau_count else np.zeros(0, np.uint32)
    specials = {(1, 7): np.uint64(dcd.shader_resources & ~0x3F)}
    for i, b in enumerate(blends):
        specials[(0, 8 + i)] = np.uint64(b.raw >> 64 & ((1 << 64) - 1))
    ys, xs = np.mgrid[rect.y0:rect.y1, rect.x0:rect.x1]
    xs, ys = xs.ravel().astype(np.uint32), ys.ravel().astype(np.uint32)
    written = 0
    memory = LaneMemory(aspace)
    program = Program(aspace, spd.binary)
    for start in range(0, xs.size, MAX_LANES):
        x, y = xs[start:start + MAX_LANES], ys[start:start + MAX_LANES]
        n = x.size
        specials[(3, 1)] = (np.arange(n) % 16).astype(np.uint64)      # lane_id
        t = Threads(program, n, memory, fau, specials, ftz=spd.flush_to_zero_mode != 0)
        values = {59: x | y << np.uint32(16), 60: np.full(n, dcd.flags_1_sample_mask & 1, np.uint32),
                  61: np.zeros(n, np.uint32)}
        for r in preload:
            t.regs[r] = values[r]

        def sink(desc, idx, colour, coverage):
            nonlocal written
            if desc >= len(blends):
                raise ShaderFault(DATA_INVALID, desc, f"BLEND: blend_descriptor_{desc} past the "
                                                                   f"DCD's {len(blends)} Blend descriptors")
            written += int(np.count_nonzero(coverage & 1))
        t.blend = sink
        try:
            finished = t.run(MAX_INSTRUCTIONS)
        except ShaderFault as e:
            raise FragmentFault(f"{where}: shader core: {e.why}", e.info, e.exception_type) from None
        if not finished:
            raise FragmentFault(f"{where}: the frame shader ran {MAX_INSTRUCTIONS} instructions without ending")
    return written
