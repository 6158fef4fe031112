"""RUN_FRAGMENT clears through the driver model: an FBD built with mali_regs.descriptors'
encoder, a ring that runs it as Mesa does (SET_SB_ENTRY, RUN_FRAGMENT, a SYNC_ADD64 deferred
on the endpoint slot), and the pixels read back from guest memory.

Expected memory is computed here independently of fragment/: pixel bytes from the colour
channels and the format's own byte order, offsets from the layout formulas (the u-interleave
bit formula of Mesa's pan_tiling.c, written out per pixel), clear words from Mesa's
src/panfrost/lib/tests/test-clear.c.
"""

from __future__ import annotations

import logging
import struct

import pytest

from mali_regs import descriptors as D
from scheduler.isa import Op, encode
from tests.driver_model import BUF_VA, SYNC_VA, USER_AS, Group, mov32, mov48

FB_VA = 0x80_0000            # surfaces: 1 MiB mapped in the group's VM
FB_SIZE = 0x10_0000
FBD_VA = BUF_VA + 0x1000     # the framebuffer descriptor (64-byte aligned)
FILL = 0xEE                  # what the surfaces hold before the pass
ITER_SB, DEFERRED_SB = 2, 5  # panvk's iteration and deferred-sync slots (any two do)

RGBA = "RGBA"


def rt(**kw) -> bytes:
    return D.RGB_RENDER_TARGET.encode(**kw)


def color_rt(base, stride, words, block="Linear", internal="R8G8B8A8", writeback="R8G8B8A8",
             swizzle=RGBA, **kw) -> bytes:
    """A cleared colour target as Mesa's pan_emit_*_color_attachment emits it."""
    values = dict(internal_format=internal, writeback_format=writeback, writeback_block_format=block,
                  swizzle=swizzle, write_enable=True, clean_pixel_write_enable=True, dithering_enable=True,
                  writeback_buffer_base=base, writeback_buffer_row_stride=stride)
    values.update({f"clear_color_{i}": w for i, w in enumerate(words)})
    values.update(kw)
    return rt(**values)


def fbd(width, height, rts, ext: bytes | None = None, **params) -> tuple[bytes, int]:
    """The descriptor bytes and the SR40 value (pointer | tag)."""
    p = dict(width=width, height=height, bound_max_x=width - 1, bound_max_y=height - 1,
             render_target_count=len(rts), effective_tile_size=256, has_zs_crc_extension=ext is not None)
    p.update(params)
    data = D.FRAMEBUFFER_PARAMETERS.encode(**p) + bytes(64) + (ext or b"") + b"".join(rts)
    tag = D.FRAMEBUFFER_POINTER.encode_int(pointer=FBD_VA, render_target_count=len(rts),
                                           zs_crc_extension_present=ext is not None)
    return data, tag


def setup(booted):
    gpu, d = booted
    g = Group(gpu, d)
    fb_pa = gpu.ram.alloc(FB_SIZE)
    g.pt.map(FB_VA, fb_pa, FB_SIZE)
    gpu.ram.write(fb_pa, bytes([FILL]) * FB_SIZE)
    g.fb_pa = fb_pa
    return gpu, d, g


def fragment_pass(g, tag, width, height, bbox=None, extra=()):
    """panvk's issue_fragment_jobs shape: SR40/42/43, the endpoint slot, RUN_FRAGMENT, then
    the subqueue's sync object incremented by a SYNC_ADD64 deferred on that slot."""
    x0, y0, x1, y1 = bbox or (0, 0, width - 1, height - 1)
    return [mov48(40, tag), mov32(42, y0 << 16 | x0), mov32(43, y1 << 16 | x1), mov48(44, 0), mov32(46, 0),
            encode(Op.SET_SB_ENTRY, endpoint_entry=ITER_SB, other_entry=0),
            encode(Op.RUN_FRAGMENT, tile_order=0), *extra,
            mov48(60, SYNC_VA), mov48(62, 1),
            encode(Op.SYNC_ADD64, addr=60, data=62, scope=2, wait_mask=1 << ITER_SB, signal_slot=DEFERRED_SB),
            encode(Op.WAIT, wait_mask=1 << DEFERRED_SB)]


def run_pass(gpu, g, desc, tag, width, height, bbox=None, extra=()):
    gpu.ram.write(g.pa[BUF_VA] + (FBD_VA - BUF_VA), desc)
    g.submit(fragment_pass(g, tag, width, height, bbox, extra))
    g.run()


def surface(gpu, g, off, n) -> bytes:
    return gpu.ram.read(g.fb_pa + off, n)


# --- the layouts, independently -------------------------------------------------------------

def u_interleaved_offset(x, y, row_stride, bpp):
    """Mesa pan_tiling.c / digest §5.7: bit 2k+1 of the in-tile index is y_k, bit 2k x_k ^ y_k."""
    index = 0
    for k in range(4):
        xk, yk = (x >> k) & 1, (y >> k) & 1
        index |= ((xk ^ yk) << (2 * k)) | (yk << (2 * k + 1))
    return (y // 16) * row_stride + ((x // 16) * 256 + index) * bpp


def linear_offset(x, y, row_stride, bpp):
    return y * row_stride + x * bpp


def check_surface(gpu, g, base_off, size, offset_of, width, height, pixel, inside=lambda x, y: True):
    """Every pixel of the surface: `pixel` where written, FILL elsewhere (padding included)."""
    mem = surface(gpu, g, base_off, size)
    bpp = len(pixel)
    seen = set()
    for y in range(height):
        for x in range(width):
            off = offset_of(x, y)
            want = pixel if inside(x, y) else bytes([FILL]) * bpp
            assert mem[off:off + bpp] == want, (x, y)
            seen.update(range(off, off + bpp))
    assert all(mem[i] == FILL for i in range(size) if i not in seen)  # nothing outside the image


# --- colour targets -------------------------------------------------------------------------

def test_linear_rgba8_clear_writes_every_pixel_and_no_padding(booted):
    gpu, d, g = setup(booted)
    w, h, stride = 40, 24, 192                  # 160 bytes of pixels, 32 bytes of row padding
    desc, tag = fbd(w, h, [color_rt(FB_VA, stride, [0xFF0000FF] * 4)])    # test-clear: RGBA8 (1,0,0,1)
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    check_surface(gpu, g, 0, stride * h, lambda x, y: linear_offset(x, y, stride, 4), w, h, b"\xff\x00\x00\xff")
    assert g.sync() == 1 and g.sync(8, 4) == 0   # the deferred sync fired after the pass


def test_u_interleaved_clear_with_partial_edge_tiles(booted):
    gpu, d, g = setup(booted)
    w, h = 40, 24                                # 3x2 tiles, the right and bottom ones partial
    stride = 16 * 48 * 4                         # a row of tiles of the 48-pixel aligned width
    desc, tag = fbd(w, h, [color_rt(FB_VA, stride, [0x000000A9] * 4, block="Tiled U-Interleaved")])
    run_pass(gpu, g, desc, tag, w, h)            # test-clear: RGBA8 (0.664, 0, 0, 0) -> 0xA9
    assert g.out()["CS_FATAL"] == 0
    check_surface(gpu, g, 0, stride * 2, lambda x, y: u_interleaved_offset(x, y, stride, 4), w, h,
                  b"\xa9\x00\x00\x00")


@pytest.mark.parametrize("block, offset_of", [
    ("Linear", lambda x, y: linear_offset(x, y, 64 * 4, 4)),
    ("Tiled U-Interleaved", lambda x, y: u_interleaved_offset(x, y, 16 * 64 * 4, 4)),
])
def test_only_the_bounding_box_is_written(booted, block, offset_of):
    gpu, d, g = setup(booted)
    w, h = 64, 48
    stride = 64 * 4 if block == "Linear" else 16 * 64 * 4
    desc, tag = fbd(w, h, [color_rt(FB_VA, stride, [0x11223344] * 4, block=block)])
    bbox = (5, 7, 37, 30)                       # inclusive, as Mesa writes BBOX_MAX
    run_pass(gpu, g, desc, tag, w, h, bbox)
    check_surface(gpu, g, 0, stride * (h if block == "Linear" else 3), offset_of, w, h, b"\x44\x33\x22\x11",
                  inside=lambda x, y: 5 <= x <= 37 and 7 <= y <= 30)


# Mesa test-clear.c: (format, clear words) -> the RT as Mesa's get_rt_formats sets it up, and
# the pixel as the format stores it (channel values in the format's own order).
CLEAR_VECTORS = [
    # B8G8R8A8_UNORM (1, 0, 0, 1): same words as RGBA8, swizzle BGRA; memory B, G, R, A
    ("B8G8R8A8_UNORM", [0xFF0000FF] * 4, dict(swizzle="BGRA"), bytes([0x00, 0x00, 0xFF, 0xFF])),
    # R8G8B8A8_UINT (0xCA, 0xFE, 0xBA, 0xBE): raw, RAW32
    ("R8G8B8A8_UINT", [0xBEBAFECA] * 4, dict(internal="RAW32", writeback="RAW32"), bytes([0xCA, 0xFE, 0xBA, 0xBE])),
    # B8G8R8A8_UINT (0xCA, 0xFE, 0xBA, 0xBE): raw words are already in memory order B G R A
    ("B8G8R8A8_UINT", [0xBECAFEBA] * 4, dict(internal="RAW32", writeback="RAW32"), bytes([0xBA, 0xFE, 0xCA, 0xBE])),
    # R16G16B16A16_UINT (0xCAFE, 0xBABE, 0xABAD, 0x1DEA): RAW64
    ("R16G16B16A16_UINT", [0xBABECAFE, 0x1DEAABAD] * 2, dict(internal="RAW64", writeback="RAW64"),
     struct.pack("<4H", 0xCAFE, 0xBABE, 0xABAD, 0x1DEA)),
    # R32G32B32A32_UINT: RAW128
    ("R32G32B32A32_UINT", [0xCAFEBABE, 0xABAD1DEA, 0xDEADBEEF, 0xABCDEF01], dict(internal="RAW128", writeback="RAW128"),
     struct.pack("<4I", 0xCAFEBABE, 0xABAD1DEA, 0xDEADBEEF, 0xABCDEF01)),
    # R8G8B8_UINT: 24 bits -> internal RAW32 (rounded up), writeback RAW24 (pan_desc get_rt_formats)
    ("R8G8B8_UINT", [0x00BAFECA] * 4, dict(internal="RAW32", writeback="RAW24"), bytes([0xCA, 0xFE, 0xBA])),
    # R8G8_UNORM (1, 0.664): blendable, writeback R8G8
    ("R8G8_UNORM", [0x0000A9FF] * 4, dict(writeback="R8G8"), bytes([0xFF, 0xA9])),
]


@pytest.mark.parametrize("name, words, fmt, pixel", CLEAR_VECTORS, ids=[v[0] for v in CLEAR_VECTORS])
def test_clear_words_of_mesa_test_clear_reach_memory_in_the_format(booted, name, words, fmt, pixel):
    gpu, d, g = setup(booted)
    w, h = 20, 18
    bpp = len(pixel)
    stride = 16 * 32 * bpp
    desc, tag = fbd(w, h, [color_rt(FB_VA, stride, words, block="Tiled U-Interleaved", **fmt)])
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    check_surface(gpu, g, 0, stride * 2, lambda x, y: u_interleaved_offset(x, y, stride, bpp), w, h, pixel)


def _unorm(v, bits):
    return round(min(max(v, 0.0), 1.0) * ((1 << bits) - 1))


def _srgb(v):
    v = min(max(v, 0.0), 1.0)
    return round(255 * (12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055))


def _pack(*channels):
    """(value, bits) per memory channel, from bit 0."""
    out, pos = 0, 0
    for v, bits in channels:
        out |= v << pos
        pos += bits
    return out.to_bytes(pos // 8, "little")


C = (0.718, 0.18, 1.0, 2.0)   # test-clear's second colour
# test-clear's undithered words for C (tile-buffer values; extra-precision bits zero), the RT as
# Mesa's blendable-format table sets it up, and the pixel quantised here from C itself.
BLENDABLE_VECTORS = [
    ("R4G4B4A4_UNORM", 0xF0F030B0, dict(internal="R4G4B4A4", writeback="R4G4B4A4"),
     _pack(*((_unorm(c, 4), 4) for c in C))),
    ("R5G6B5_UNORM", 0x3E02C2C0, dict(internal="R5G6B5A0", writeback="R5G6B5"),
     _pack((_unorm(C[0], 5), 5), (_unorm(C[1], 6), 6), (_unorm(C[2], 5), 5))),
    ("B5G6R5_UNORM", 0x3E02C2C0, dict(internal="R5G6B5A0", writeback="R5G6B5", swizzle="BGRA"),
     _pack((_unorm(C[2], 5), 5), (_unorm(C[1], 6), 6), (_unorm(C[0], 5), 5))),
    ("R5G5B5A1_UNORM", 0xBE0302C0, dict(internal="R5G5B5A1", writeback="R5G5B5A1"),
     _pack((_unorm(C[0], 5), 5), (_unorm(C[1], 5), 5), (_unorm(C[2], 5), 5), (_unorm(C[3], 1), 1))),
    ("R10G10B10A2_UNORM", 0xFFF2E2DF, dict(internal="R10G10B10A2", writeback="R10G10B10A2"),
     _pack((_unorm(C[0], 10), 10), (_unorm(C[1], 10), 10), (_unorm(C[2], 10), 10), (_unorm(C[3], 2), 2))),
    # sRGB: the words are already encoded (pan_pack_color), alpha stays linear
    ("R8G8B8A8_SRGB", 0xFFFF76DC, dict(srgb=True), bytes([_srgb(C[0]), _srgb(C[1]), _srgb(C[2]), _unorm(C[3], 8)])),
    ("B8G8R8A8_SRGB", 0xFFFF76DC, dict(srgb=True, swizzle="BGRA"),
     bytes([_srgb(C[2]), _srgb(C[1]), _srgb(C[0]), _unorm(C[3], 8)])),
]


@pytest.mark.parametrize("name, word, fmt, pixel", BLENDABLE_VECTORS, ids=[v[0] for v in BLENDABLE_VECTORS])
def test_blendable_formats_from_mesa_test_clear(booted, name, word, fmt, pixel):
    gpu, d, g = setup(booted)
    w, h = 16, 8
    bpp = len(pixel)
    desc, tag = fbd(w, h, [color_rt(FB_VA, w * bpp, [word] * 4, **fmt)])
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    assert surface(gpu, g, 0, w * h * bpp) == pixel * (w * h)


def test_a_dithered_clear_is_refused(booted, caplog):
    """test-clear: R5G6B5 dithered (0.718, 0.18, 1, 2) -> 0x3E02D6C8, extra precision the
    hardware dithers per pixel."""
    gpu, d, g = setup(booted)
    desc, tag = fbd(16, 16, [color_rt(FB_VA, 32, [0x3E02D6C8] * 4, internal="R5G6B5A0", writeback="R5G6B5",
                                      dithered_clear=True)])
    with caplog.at_level(logging.WARNING, logger="mali"):
        run_pass(gpu, g, desc, tag, 16, 16)
    assert g.out()["CS_FATAL"] & 0xFF == 0x58
    assert any("Dithered Clear=True" in r.getMessage() for r in caplog.records)


def test_two_render_targets_and_an_uncleared_one(booted):
    """RT1 is stored but not cleared (no Clean Pixel Write Enable): with no draws its tiles are
    clean, so it keeps its contents; RT2 is Mesa's dummy (No Write)."""
    gpu, d, g = setup(booted)
    w, h = 16, 16
    rts = [color_rt(FB_VA, 64, [0x01020304] * 4),
           color_rt(FB_VA + 0x1000, 64, [0x05060708] * 4, clean_pixel_write_enable=False),
           rt(internal_format="R8G8B8A8", writeback_block_format="No Write")]
    desc, tag = fbd(w, h, rts)
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    assert surface(gpu, g, 0, 64 * 16) == b"\x04\x03\x02\x01" * 256
    assert surface(gpu, g, 0x1000, 64 * 16) == bytes([FILL]) * 1024


# --- depth and stencil ----------------------------------------------------------------------

def zs_ext(**zs) -> bytes:
    return D.ZS_TARGET.encode(**zs)


def test_d24s8_depth_and_stencil_clear(booted):
    gpu, d, g = setup(booted)
    w, h = 24, 20
    stride = 16 * 32 * 4
    ext = zs_ext(write_format="D24S8", block_format="Tiled U-Interleaved", clean_pixel_write_enable=True,
                 base=FB_VA, row_stride=stride)
    desc, tag = fbd(w, h, [color_rt(FB_VA + 0x8000, 64 * 4, [0] * 4)], ext, z_clear=0.5, s_clear=0x5A,
                    z_internal_format="D24", z_write_enable=True, s_write_enable=True)
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    depth = round(0.5 * 0xFFFFFF)                # unorm24, ties to even: 0x800000
    check_surface(gpu, g, 0, stride * 2, lambda x, y: u_interleaved_offset(x, y, stride, 4), w, h,
                  struct.pack("<I", depth | 0x5A << 24))


def test_d32_depth_and_separate_s8_stencil(booted):
    gpu, d, g = setup(booted)
    w, h = 16, 8
    ext = (D.ZS_TARGET.encode_int(write_format="D32", block_format="Linear", clean_pixel_write_enable=True,
                                  base=FB_VA, row_stride=w * 4)
           | D.S_TARGET.encode_int(write_format="S8", block_format="Linear", base=FB_VA + 0x4000, row_stride=w))
    desc, tag = fbd(w, h, [rt(internal_format="R8G8B8A8", writeback_block_format="No Write")],
                    ext.to_bytes(64, "little"), z_clear=0.25, s_clear=0xC3, z_internal_format="D32",
                    z_write_enable=True, s_write_enable=True)
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    assert surface(gpu, g, 0, w * h * 4) == struct.pack("<f", 0.25) * (w * h)
    assert surface(gpu, g, 0x4000, w * h) == b"\xc3" * (w * h)


def test_d24s8_depth_only_keeps_the_stencil(booted):
    gpu, d, g = setup(booted)
    w, h = 16, 4
    ext = zs_ext(write_format="D24S8", block_format="Linear", clean_pixel_write_enable=True, base=FB_VA,
                 row_stride=w * 4)
    desc, tag = fbd(w, h, [rt(internal_format="R8G8B8A8", writeback_block_format="No Write")], ext,
                    z_clear=1.0, z_write_enable=True)
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    assert surface(gpu, g, 0, w * h * 4) == (b"\xff\xff\xff" + bytes([FILL])) * (w * h)


# --- AFBC -----------------------------------------------------------------------------------

@pytest.mark.parametrize("block", ["AFBC", "AFBC Tiled"])
def test_afbc_clear_writes_a_solid_header_per_superblock(booted, block):
    """Header positions from Mesa's AFBC layout facts: 16 bytes per 16x16 superblock, "Row
    stride" the bytes between header rows, 8x8 superblocks per header tile when tiled.  The
    solid-colour encoding (subblock 0 of size 0, colour in bytes 8-15) is this model's
    reading, documented in fragment/afbc.py as not verified."""
    gpu, d, g = setup(booted)
    w, h = 64, 48                                 # 4 x 3 superblocks
    tiled = block == "AFBC Tiled"
    row_stride = (128 // 16) * 8 * 16 if tiled else (w // 16) * 16
    desc_rt = D.AFBC_RGB_RENDER_TARGET.encode(
        internal_format="R8G8B8A8", writeback_format="R8G8B8A8", writeback_block_format=block, swizzle=RGBA,
        write_enable=True, clean_pixel_write_enable=True, yuv_transform=True, compression_mode="R8G8B8A8",
        header=FB_VA, row_stride=row_stride, body_offset=0x1000, **{f"clear_color_{i}": 0xFF804020 for i in range(4)})
    desc, tag = fbd(w, h, [desc_rt])
    run_pass(gpu, g, desc, tag, w, h)
    assert g.out()["CS_FATAL"] == 0
    mem = surface(gpu, g, 0, 0x1000)
    written = set()
    for sy in range(3):
        for sx in range(4):
            if tiled:
                off = (sy // 8) * row_stride + (sx // 8) * 1024 + ((sy % 8) * 8 + sx % 8) * 16
            else:
                off = sy * row_stride + sx * 16
            header = mem[off:off + 16]
            subblock0 = int.from_bytes(header[4:8], "little") & 0x3F
            assert subblock0 == 0 and header[8:12] == b"\x20\x40\x80\xff" and header[12:] == bytes(4)
            written.update(range(off, off + 16))
    assert all(mem[i] == FILL for i in range(len(mem)) if i not in written)   # no body written


# --- what faults ----------------------------------------------------------------------------

def _fatal(g):
    out = g.out()
    return out["CS_FATAL"] & 0xFF, out["CS_FATAL_INFO"]


@pytest.mark.parametrize("params, rt_kw, names", [
    (dict(pre_frame_0="Intersect"), {}, "Pre Frame 0=Intersect"),
    (dict(post_frame="Always"), {}, "Post Frame=Always"),
    (dict(post_frame="Intersect"), {}, "Post Frame=Intersect"),
    (dict(sample_count=4), {}, "Sample Count=4"),
    ({}, dict(writeback_msaa="Average"), "Writeback MSAA=Average"),
    ({}, dict(writeback_mode="AFRC RGB"), "Writeback Mode=AFRC RGB"),
    ({}, dict(internal="R8G8B8A2"), "Internal Format=R8G8B8A2"),
    ({}, dict(writeback="A2B10G10R10"), "Writeback Format=A2B10G10R10"),
    ({}, dict(yuv_enable=True), "YUV Enable"),
])
def test_what_needs_more_than_a_clear_faults_the_queue_naming_the_field(booted, caplog, params, rt_kw, names):
    gpu, d, g = setup(booted)
    desc, tag = fbd(16, 16, [color_rt(FB_VA, 64, [1] * 4, **rt_kw)], **params)
    with caplog.at_level(logging.WARNING, logger="mali"):
        run_pass(gpu, g, desc, tag, 16, 16)
    assert _fatal(g)[0] == 0x58                                     # DATA_INVALID_FAULT
    assert any(names in r.getMessage() and "RUN_FRAGMENT" in r.getMessage() for r in caplog.records)
    assert g.sync() == 0                                            # the deferred sync never fired
    assert surface(gpu, g, 0, 64 * 16) == bytes([FILL]) * 1024


def test_reserved_block_format_is_named(booted, caplog):
    gpu, d, g = setup(booted)
    raw = bytearray(color_rt(FB_VA, 64, [1] * 4))
    word1 = int.from_bytes(raw[4:8], "little") & ~(0xF << 8) | (5 << 8)   # Block Format 5: not in v10.xml
    raw[4:8] = word1.to_bytes(4, "little")
    desc, tag = fbd(16, 16, [bytes(raw)])
    with caplog.at_level(logging.WARNING, logger="mali"):
        run_pass(gpu, g, desc, tag, 16, 16)
    assert _fatal(g)[0] == 0x58
    assert any("Writeback Block Format=0x5" in r.getMessage() for r in caplog.records)


def test_render_target_at_an_unmapped_address_is_an_mmu_fault(booted):
    gpu, d, g = setup(booted)
    gpu.write("MMU_IRQ_MASK", 0xFFFF)
    desc, tag = fbd(16, 16, [color_rt(0x7700_0000, 64, [1] * 4)])
    run_pass(gpu, g, desc, tag, 16, 16)
    assert gpu.read("MMU_IRQ_RAWSTAT") == 1 << USER_AS
    assert gpu.read(f"AS_FAULTADDRESS[{USER_AS}]") == 0x7700_0000
    code, info = _fatal(g)
    assert code & 0xF8 == 0xC0 and info == 0x7700_0000             # TRANSLATION_FAULT_n
    assert g.sync() == 0


def test_fbd_at_an_unmapped_address_is_an_mmu_fault(booted):
    gpu, d, g = setup(booted)
    g.submit(fragment_pass(g, D.FRAMEBUFFER_POINTER.encode_int(pointer=0x6600_0000), 16, 16))
    g.run()
    assert _fatal(g)[0] & 0xF8 == 0xC0 and _fatal(g)[1] == 0x6600_0000


def test_tile_enable_map_is_refused(booted):
    gpu, d, g = setup(booted)
    desc, tag = fbd(16, 16, [color_rt(FB_VA, 64, [1] * 4)])
    gpu.ram.write(g.pa[BUF_VA] + (FBD_VA - BUF_VA), desc)
    g.submit([mov48(40, tag), encode(Op.RUN_FRAGMENT, enable_tem=1)])
    g.run()
    assert _fatal(g)[0] == 0x49


def test_a_huge_framebuffer_is_refused_before_anything_is_written(booted):
    gpu, d, g = setup(booted)
    desc, tag = fbd(0x10000, 0x10000, [color_rt(FB_VA, 0x40000, [1] * 4)])
    run_pass(gpu, g, desc, tag, 0x10000, 0x10000)
    assert _fatal(g)[0] == 0x58
    assert surface(gpu, g, 0, 4096) == bytes([FILL]) * 4096


# --- scoreboards ----------------------------------------------------------------------------

def test_finish_fragment_waits_for_the_pass_and_signals_its_slot(booted):
    gpu, d, g = setup(booted)
    desc, tag = fbd(16, 16, [color_rt(FB_VA, 64, [0xAABBCCDD] * 4)])
    finish = [mov48(64, 0), encode(Op.FINISH_FRAGMENT, wait_mask=1 << ITER_SB, last_heap_chunk=64,
                                   first_heap_chunk=64, signal_slot=ITER_SB)]
    run_pass(gpu, g, desc, tag, 16, 16, extra=finish)
    assert g.out()["CS_FATAL"] == 0
    assert surface(gpu, g, 0, 4) == b"\xdd\xcc\xbb\xaa" and g.sync() == 1


def test_last_fragment_descriptors_are_kept_decoded(booted):
    gpu, d, g = setup(booted)
    desc, tag = fbd(16, 16, [color_rt(FB_VA, 64, [1] * 4, block="Tiled U-Interleaved")])
    run_pass(gpu, g, desc, tag, 16, 16)
    lines = gpu.dev.csg_slots.slots[0].streams[0].last_fragment
    assert lines[0].startswith(f"FBD 0x{FBD_VA:x}: Framebuffer Parameters:") and "Width=16" in lines[0]
    assert "Writeback Block Format=Tiled U-Interleaved" in lines[1]


# --- hostile descriptors --------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(40))
def test_random_descriptors_end_in_a_clear_or_a_named_fault_never_an_internal_error(booted, seed):
    """Random FBD, extension and RT words around a valid clear (random bits flipped), random
    bboxes: the queue either completes or gets a DATA_INVALID/MMU fault; CS_UNRECOVERABLE
    would mean an exception of ours."""
    import random
    rng = random.Random(seed)
    gpu, d, g = setup(booted)
    w, h = rng.choice([(16, 16), (40, 24), (64, 48)])
    ext = zs_ext(write_format=rng.choice(["D16", "D24S8", "D32", "D24X8"]),
                 block_format=rng.choice(["Linear", "Tiled U-Interleaved", "AFBC"]),
                 clean_pixel_write_enable=True, base=FB_VA + 0x80000, row_stride=16 * 64 * 4)
    desc, tag = fbd(w, h, [color_rt(FB_VA, 16 * 64 * 4, [rng.getrandbits(32) for _ in range(4)],
                                    block=rng.choice(["Linear", "Tiled U-Interleaved", "AFBC"]))],
                    ext, z_write_enable=True, s_write_enable=rng.random() < 0.5, z_clear=rng.random())
    data = bytearray(desc)
    for _ in range(rng.randint(0, 12)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    bbox = (rng.randrange(80), rng.randrange(80), rng.randrange(80), rng.randrange(80))
    run_pass(gpu, g, bytes(data), tag, w, h, bbox)
    code = g.out()["CS_FATAL"] & 0xFF
    assert code in (0, 0x58) or code & 0xF8 == 0xC0, hex(code)
    assert code != 0 or g.sync() == 1
