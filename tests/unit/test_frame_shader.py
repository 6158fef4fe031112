"""Pre-frame shaders on RUN_FRAGMENT, through the driver model: panvk's own fb-load shader
(captured from the guest, tests/unit/data/mesa-pan-fb-load-border.txt) named by a Draw
descriptor built with mali_regs.descriptors, run on the shader core for every pixel.

The shader keeps the pixels inside the render area (FAU u0) and reloads the others from the
texture; the oracle is the render area itself: with the area covering the framebuffer the
clear stands everywhere, with a smaller one the pixels outside it are the ones it writes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mali_regs import descriptors as D
from tests.unit.test_fragment import FB_VA, _fatal, check_surface, color_rt, fbd, linear_offset, run_pass, setup

DATA = Path(__file__).parent / "data" / "mesa-pan-fb-load-border.txt"
W, H = 61, 37
STRIDE = 4 * W
AREA = 0x80000                             # descriptors and code, after the surface in FB_VA's MiB
DCD, SPD, CODE, BLEND, FAU, RES, DESCS, PLANE = (AREA + o for o in
                                                 (0, 0x100, 0x1000, 0x200, 0x240, 0x280, 0x300, 0x380))
CLEAR = [0xFFCC66] * 4                     # the guest's clear words: bytes 66 cc ff 00
PIXEL = bytes([0x66, 0xCC, 0xFF, 0x00])


def code() -> bytes:
    lines = [ln for ln in DATA.read_text().splitlines() if ln and not ln.startswith("#")]
    return b"".join(bytes.fromhex(ln[:23]) for ln in lines)


def frame_shader(gpu, g, area_min: int, area_max: int, texture: bool = True) -> None:
    put = lambda off, data: gpu.ram.write(g.fb_pa + off, data)   # noqa: E731
    put(CODE, code())
    put(SPD, D.SHADER_PROGRAM.encode(stage="Fragment", preload=0x3800, binary=FB_VA + CODE,
                                     register_allocation="32 Per Thread"))
    put(BLEND, D.BLEND.encode(enable=True, round_to_fb_precision=True, equation_rgb_a="Src", equation_rgb_b="Src",
                              equation_rgb_c="Zero", equation_alpha_a="Src", equation_alpha_b="Src",
                              equation_alpha_c="Zero", equation_color_mask=15, internal_mode="Opaque",
                              internal_fixed_function_num_comps=4))
    put(FAU, (area_min | area_max << 32).to_bytes(8, "little"))
    put(RES, D.RESOURCE.encode(address=FB_VA + DESCS, size=64 if texture else 0))
    put(DESCS + 32, D.TEXTURE.encode(dimension="2D", format=187 << 12, width=W, height=H, surfaces=FB_VA + PLANE,
                                     swizzle="RGBA"))
    put(PLANE, D.GENERIC_PLANE.encode(plane_type="Generic", clump_ordering="Linear", clump_format="RAW32",
                                      pointer=FB_VA, row_stride=STRIDE, width=W, height=H))
    put(DCD, D.DRAW.encode(flags_1_sample_mask=0xFFFF, flags_1_render_target_mask=1, blend_count=1,
                           blend=FB_VA + BLEND, shader_fau_count=1, shader_resources=FB_VA + RES | 4,
                           shader_shader=FB_VA + SPD, shader_fau=FB_VA + FAU))


def test_render_area_covering_the_framebuffer_keeps_the_clear(booted):
    gpu, d, g = setup(booted)
    frame_shader(gpu, g, 0, (H - 1) << 16 | (W - 1))
    desc, tag = fbd(W, H, [color_rt(FB_VA, STRIDE, CLEAR)], pre_frame_0="Always", frame_shader_dcds=FB_VA + DCD)
    run_pass(gpu, g, desc, tag, W, H)
    assert _fatal(g)[0] == 0
    check_surface(gpu, g, 0, STRIDE * H, lambda x, y: linear_offset(x, y, STRIDE, 4), W, H, PIXEL)


def test_pixels_outside_a_smaller_render_area_are_the_ones_the_shader_writes(booted, caplog):
    gpu, d, g = setup(booted)
    x0, y0, x1, y1 = 8, 4, 28, 14                       # inclusive
    frame_shader(gpu, g, y0 << 16 | x0, y1 << 16 | x1)
    desc, tag = fbd(W, H, [color_rt(FB_VA, STRIDE, CLEAR)], pre_frame_0="Always", frame_shader_dcds=FB_VA + DCD)
    with caplog.at_level(logging.WARNING, logger="mali"):
        run_pass(gpu, g, desc, tag, W, H)
    outside = W * H - (x1 - x0 + 1) * (y1 - y0 + 1)
    assert _fatal(g)[0] == 0x58
    assert any(f"the frame shader wrote {outside} pixels" in r.getMessage() for r in caplog.records)


def test_a_texture_past_its_table_faults_naming_it(booted, caplog):
    gpu, d, g = setup(booted)
    frame_shader(gpu, g, 4, (H - 1) << 16 | (W - 1), texture=False)   # x < 4 reloads: texture needed
    desc, tag = fbd(W, H, [color_rt(FB_VA, STRIDE, CLEAR)], pre_frame_0="Always", frame_shader_dcds=FB_VA + DCD)
    with caplog.at_level(logging.WARNING, logger="mali"):
        run_pass(gpu, g, desc, tag, W, H)
    assert _fatal(g)[0] == 0x58
    assert any("Pre Frame 0 DCD: shader core: TEX_FETCH" in r.getMessage() and "past" in r.getMessage()
               for r in caplog.records)


def test_a_frame_shader_over_a_huge_pass_is_refused_before_it_runs(booted, caplog):
    gpu, d, g = setup(booted)
    desc, tag = fbd(4096, 2048, [color_rt(FB_VA, 4 * 4096, CLEAR)], pre_frame_0="Always",
                    frame_shader_dcds=0x7000_0000)         # unmapped: never read
    with caplog.at_level(logging.WARNING, logger="mali"):
        run_pass(gpu, g, desc, tag, 4096, 2048)
    assert _fatal(g)[0] == 0x58
    assert any("a frame shader over 8388608 pixels" in r.getMessage() for r in caplog.records)
