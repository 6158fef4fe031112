"""TEX_FETCH through the real path: Mesa's own copy-image-to-buffer kernel (captured from the
guest, tests/unit/data/mesa-vk-meta-copy-image-to-buffer.txt) reading Texture / Generic Plane
descriptors (v10.xml) from the resource table, texels from memory laid out by the formulas
written out here, and hand-made TEX_FETCH words for the formats and faults.

The kernel's FAU words, read off its code: u0/u1.w0 the workgroup base (x, y in units of 16,
z), u2 the buffer address, u3 the buffer row and layer pitches, u4/u5.w0 the image offset
(x, y, layer), u5.w1..u6 the region's first (x, y, z), u7..u8.w0 its end, u9.w0 the image
handle, u9.w1 the channel clamp; each texel is stored as 4 bytes (channels clamped, packed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mali_regs.descriptors import AFBC_PLANE, GENERIC_PLANE, RESOURCE, TEXTURE
from shader import isa
from shader.interp import ShaderFault
from tests.unit.shader_harness import BASE, FlatAspace, dispatch, hi, lo

DATA = Path(__file__).parent / "data" / "mesa-vk-meta-copy-image-to-buffer.txt"
SRT, DESCS, PLANES, IMG = BASE + 0x9000, BASE + 0x9400, BASE + 0x9800, BASE + 0x20000
OUT = BASE + 0x60000
RGBA8UI, RGBA8_UNORM, R32F = 155, 187, 167      # v10.xml enum "Format"
RGBA = 0                                        # "RGB Component Order"
IDENTITY = 0 | 1 << 3 | 2 << 6 | 3 << 9         # Component Swizzle R G B A


def _words():
    for line in DATA.read_text().splitlines():
        if line and not line.startswith("#"):
            yield int.from_bytes(bytes.fromhex(line[:23]), "little"), line[23:].strip()


def place(img: np.ndarray, tiled: bool, row_stride: int) -> bytes:
    """One layer (h, w, Bpp) as the hardware lays it out: linear rows, or rows of 16x16 tiles
    with pixel index bit 2k+1 = y_k, bit 2k = x_k ^ y_k."""
    h, w, bpp = img.shape
    rows = -(-h // 16) if tiled else h
    out = np.zeros(rows * row_stride, np.uint8)
    for y in range(h):
        for x in range(w):
            if tiled:
                i = 0
                for k in range(4):
                    i |= (((x >> k) ^ (y >> k)) & 1) << (2 * k) | ((y >> k) & 1) << (2 * k + 1)
                off = (y // 16) * row_stride + (x // 16) * 256 * bpp + i * bpp
            else:
                off = y * row_stride + x * bpp
            out[off:off + bpp] = img[y, x]
    return out.tobytes()


def texture(a: FlatAspace, layers: list[np.ndarray], fmt: int, tiled: bool, index: int = 1, table: int = 2,
            plane_type: int = 1) -> int:
    """Write the texture's planes, its descriptor (descriptor `index` of resource table entry
    `table`) and the resource table; returns the image handle."""
    h, w, bpp = layers[0].shape
    stride = (16 * 16 * bpp * -(-w // 16)) if tiled else w * bpp + 16
    va = IMG
    for n, img in enumerate(layers):
        data = place(img, tiled, stride)
        a.write(va, data)
        plane = GENERIC_PLANE.encode(plane_type=plane_type, clump_ordering=1 if tiled else 2, clump_format="RAW32",
                                     size=len(data), pointer=va, row_stride=stride, width=w, height=h)
        a.write(PLANES + 32 * n, plane)
        va += (len(data) + 0xFFF) & ~0xFFF
    tex = TEXTURE.encode(dimension="2D", format=fmt << 12 | RGBA, width=w, height=h, swizzle=IDENTITY,
                         surfaces=PLANES, array_size=len(layers))
    a.write(DESCS + 32 * index, tex)
    a.write(SRT + 16 * table, RESOURCE.encode(address=DESCS, size=32 * (index + 1)))
    return table << 27 | index << 16


def copy(a, handle, region, offset=(0, 0, 0), clamp=255, pitches=None):
    """Run Mesa's kernel over region (x0, y0, z0, x1, y1, z1) of the image (from `offset`)."""
    code = b"".join(raw.to_bytes(8, "little") for raw, _ in _words())
    x0, y0, z0, x1, y1, z1 = region
    w, h = x1 - x0, y1 - y0
    row, layer = pitches or (4 * w, 4 * w * h)
    fau = [0, 0, 0, 0, lo(OUT), hi(OUT), row, layer, offset[0], offset[1], offset[2], x0, y0, z0, x1, y1, z1, 0,
           handle, clamp]
    groups = (-(-x1 // 16), -(-y1 // 16), z1)
    a.write(OUT, b"\xee" * (layer * (z1 - z0)))
    srt_fau = a
    a, job = dispatch(code, fau, wg=(16, 16, 1), groups=groups, preload=0xFF << 7, aspace=srt_fau, srt=SRT)
    return a.read(OUT, layer * (z1 - z0))


@pytest.fixture
def images():
    rng = np.random.default_rng(13)
    return [rng.integers(0, 256, (37, 61, 4), dtype=np.uint8) for _ in range(2)]


def test_every_word_decodes_to_the_instruction_mesa_names():
    for raw, text in _words():
        assert isa.decode(raw).name.split(".")[0] == text.split()[0].split(".")[0], text


@pytest.mark.parametrize("tiled", [True, False], ids=["u-interleaved", "linear"])
def test_mesa_copy_kernel_reads_every_texel_of_an_array_texture(images, tiled):
    a = FlatAspace()
    handle = texture(a, images, RGBA8UI, tiled)
    out = copy(a, handle, (0, 0, 0, 61, 37, 2))
    want = np.stack(images).tobytes()           # RGBA8UI through u32 registers, repacked as bytes
    assert out == want


def test_mesa_copy_kernel_region_offset_and_clamp(images):
    a = FlatAspace()
    handle = texture(a, images, RGBA8UI, True)
    # image offset (5, 7, layer 1), region 20x9 starting at buffer texel (3, 2): rows of 20 texels
    out = np.frombuffer(copy(a, handle, (3, 2, 0, 23, 11, 1), offset=(5, 7, 1), clamp=200,
                             pitches=(4 * 20, 4 * 20 * 9)), np.uint8).reshape(9, 20, 4)
    src = images[1][7:7 + 9, 5:5 + 20]
    assert (out == np.minimum(src, 200)).all()


def _tex_fetch_program(write_mask_bits: int = 0xF) -> bytes:
    """Mesa's fb-load TEX_FETCH word (r0:r1 coords, r2:r3 image) with the write mask set,
    then r0..r3 stored to u0's address and the end."""
    w = isa.decode(0x4925403413C00042)
    raw = (w.raw & ~(0xF << 22) & ~(0xF << 59)) | write_mask_bits << 22 | 1 << 59   # flow wait0
    head = isa.assemble_program("""
        MOV.i32 r0, r60
        MOV.i32 r1, r61
        MOV.i32 r2, u2
        MOV.i32 r3, 0x0
    """)
    tail = isa.assemble_program("""
        IMUL.i32 r4, r61, u3
        IADD.u32 r4, r4, r60
        SHADDX.u64 r6, u0, r4.w0, shift:0x4
        STORE.i128.slot0.end @r0:r1:r2:r3, r6, offset:0
    """)
    return head + raw.to_bytes(8, "little") + tail


def test_unorm_texels_read_as_floats(images):
    a = FlatAspace()
    handle = texture(a, images[:1], RGBA8_UNORM, True)
    try:
        code = _tex_fetch_program()
    except Exception as e:          # the assembler's syntax is ours: say so rather than skip silently
        pytest.fail(f"assembling the test program: {e}")
    fau = [lo(OUT), hi(OUT), handle, 61]
    a, _ = dispatch(code, fau, wg=(61, 1, 1), groups=(1, 37, 1), aspace=a, srt=SRT)
    out = np.frombuffer(a.read(OUT, 61 * 37 * 16), np.float32).reshape(37, 61, 4)
    assert (out == images[0].astype(np.float32) / np.float32(255)).all()


def afbc_texture(a: FlatAspace, colours: np.ndarray, tiled_headers: bool, split: bool = False,
                 payload: bool = False) -> int:
    """A one-layer AFBC texture of solid superblocks: colours[sy, sx] (4 bytes) in header bytes
    8-15 with subblock 0 size 0 (the convention fragment/afbc.py writes); headers row-major,
    or in 8x8 tiles of row-major headers. `payload`: one header claims a compressed subblock."""
    ny, nx, _ = colours.shape
    row = (-(-nx // 8) * 8 * 8 * 16) if tiled_headers else nx * 16
    for sy in range(ny):
        for sx in range(nx):
            if tiled_headers:
                off = (sy // 8) * row + (sx // 8) * 1024 + ((sy % 8) * 8 + sx % 8) * 16
            else:
                off = sy * row + sx * 16
            header = bytearray(16)
            header[8:12] = colours[sy, sx].tobytes()
            if payload and (sx, sy) == (1, 1):
                header[4] = 5
            a.write(IMG + off, bytes(header))
    plane = AFBC_PLANE.encode(superblock_size="16x16", tiled_header=tiled_headers, split_block=split,
                              compression_mode="R8G8B8A8", pointer=IMG, header_row_stride=row,
                              width=16 * nx, height=16 * ny)
    a.write(PLANES, plane)
    a.write(DESCS + 32, TEXTURE.encode(dimension="2D", format=RGBA8UI << 12 | RGBA, width=16 * nx - 3,
                                       height=16 * ny - 5, swizzle=IDENTITY, surfaces=PLANES))
    a.write(SRT + 16 * 2, RESOURCE.encode(address=DESCS, size=64))
    return 2 << 27 | 1 << 16


@pytest.mark.parametrize("tiled_headers", [False, True], ids=["row-major", "tiled-headers"])
def test_afbc_solid_superblocks_read_back(tiled_headers):
    colours = np.random.default_rng(5).integers(0, 256, (3, 10, 4), dtype=np.uint8)   # 160x48 - (3, 5)
    a = FlatAspace()
    handle = afbc_texture(a, colours, tiled_headers)
    w, h = 16 * 10 - 3, 16 * 3 - 5
    out = np.frombuffer(copy(a, handle, (0, 0, 0, w, h, 1)), np.uint8).reshape(h, w, 4)
    ys, xs = np.mgrid[0:h, 0:w]
    assert (out == colours[ys // 16, xs // 16]).all()


def test_afbc_compressed_payload_and_split_blocks_fault_naming_them():
    colours = np.zeros((2, 2, 4), np.uint8)
    a = FlatAspace()
    handle = afbc_texture(a, colours, False, payload=True)
    with pytest.raises(ShaderFault, match="AFBC superblock with a compressed payload"):
        copy(a, handle, (0, 0, 0, 29, 27, 1))
    a = FlatAspace()
    handle = afbc_texture(a, colours, False, split=True)
    with pytest.raises(ShaderFault, match="Split block not implemented"):
        copy(a, handle, (0, 0, 0, 16, 16, 1))


def test_other_plane_types_fault_naming_them(images):
    a = FlatAspace()
    handle = texture(a, images, RGBA8UI, True, plane_type=10)         # AFRC
    with pytest.raises(ShaderFault, match="plane type AFRC not implemented"):
        copy(a, handle, (0, 0, 0, 16, 16, 1))


def test_unknown_format_faults_naming_it(images):
    a = FlatAspace()
    handle = texture(a, images, 237, True)            # "RGBA8 TB"
    with pytest.raises(ShaderFault, match="format 0xed not implemented"):
        copy(a, handle, (0, 0, 0, 16, 16, 1))


def test_texels_at_an_unmapped_address_are_an_mmu_fault(images):
    a = FlatAspace()
    handle = texture(a, images[:1], RGBA8UI, False)
    plane = GENERIC_PLANE.encode(plane_type="Generic", clump_ordering="Linear", pointer=0x7000_0000,
                                 row_stride=4 * 61, width=61, height=37)
    a.write(PLANES, plane)
    from mali_base.pagetable import MmuFault
    with pytest.raises(MmuFault):
        copy(a, handle, (0, 0, 0, 16, 16, 1))
    assert a.faults and a.faults[0].va >= 0x7000_0000


def test_descriptor_handle_past_the_table_faults(images):
    a = FlatAspace()
    handle = texture(a, images[:1], RGBA8UI, True)
    with pytest.raises(ShaderFault, match="texture 5 is past"):
        copy(a, (handle & ~(0x7FF << 16)) | 5 << 16, (0, 0, 0, 16, 16, 1))

