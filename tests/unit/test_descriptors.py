"""mali_regs.descriptors against Mesa's src/panfrost/genxml/v10.xml (facts typed from the XML).

Each fact is (layout, field attribute, word, bit, size, modifier): the test packs one field
alone and checks which bits of which word are set, so a wrong start, size or modifier in
the table fails here.  Round trips cover every field of every layout with random values.
"""

from __future__ import annotations

import random
import struct

import pytest

from mali_regs import descriptors as d

# (layout, attr, word, bit, size, modifier) — v10.xml <field start="word:bit" size=.. modifier=..>
XML_FACTS = [
    (d.SHADER_PROGRAM, "type", 0, 0, 4, None),
    (d.SHADER_PROGRAM, "stage", 0, 4, 4, None),
    (d.SHADER_PROGRAM, "suppress_nan", 0, 16, 1, None),
    (d.SHADER_PROGRAM, "flush_to_zero_mode", 0, 17, 2, None),
    (d.SHADER_PROGRAM, "suppress_inf", 0, 19, 1, None),
    (d.SHADER_PROGRAM, "requires_helper_threads", 0, 28, 1, None),
    (d.SHADER_PROGRAM, "shader_contains_jump_ex", 0, 29, 1, None),
    (d.SHADER_PROGRAM, "register_allocation", 0, 30, 2, None),
    (d.SHADER_PROGRAM, "preload", 1, 0, 16, None),
    (d.SHADER_PROGRAM, "binary", 2, 0, 64, None),
    (d.LOCAL_STORAGE, "tls_size", 0, 0, 5, None),
    (d.LOCAL_STORAGE, "wls_instances", 1, 0, 5, "log2"),
    (d.LOCAL_STORAGE, "wls_size_base", 1, 5, 2, None),
    (d.LOCAL_STORAGE, "wls_size_scale", 1, 8, 5, None),
    (d.LOCAL_STORAGE, "tls_base_pointer", 2, 0, 48, None),
    (d.LOCAL_STORAGE, "tls_address_mode", 3, 28, 4, None),
    (d.LOCAL_STORAGE, "wls_base_pointer", 4, 0, 64, None),
    (d.TEXTURE, "type", 0, 0, 4, None),
    (d.TEXTURE, "dimension", 0, 4, 3, None),
    (d.TEXTURE, "sample_corner_position", 0, 8, 1, None),
    (d.TEXTURE, "normalize_coordinates", 0, 9, 1, None),
    (d.TEXTURE, "format", 0, 10, 22, None),
    (d.TEXTURE, "width", 1, 0, 16, "minus(1)"),
    (d.TEXTURE, "height", 1, 16, 16, "minus(1)"),
    (d.TEXTURE, "swizzle", 2, 0, 12, None),
    (d.TEXTURE, "texel_interleave", 2, 12, 1, None),
    (d.TEXTURE, "levels", 2, 16, 5, "minus(1)"),
    (d.TEXTURE, "minimum_level", 2, 24, 5, None),
    (d.TEXTURE, "minimum_lod", 3, 0, 13, None),
    (d.TEXTURE, "sample_count", 3, 13, 3, "log2"),
    (d.TEXTURE, "maximum_lod", 3, 16, 13, None),
    (d.TEXTURE, "surfaces", 4, 0, 64, None),
    (d.TEXTURE, "array_size", 6, 0, 16, "minus(1)"),
    (d.TEXTURE, "depth", 7, 0, 16, "minus(1)"),
    (d.GENERIC_PLANE, "type", 0, 0, 4, None),
    (d.GENERIC_PLANE, "plane_type", 0, 4, 4, None),
    (d.GENERIC_PLANE, "clump_ordering", 0, 8, 4, None),
    (d.GENERIC_PLANE, "clump_format", 0, 24, 8, None),
    (d.GENERIC_PLANE, "size", 1, 0, 32, None),
    (d.GENERIC_PLANE, "pointer", 2, 0, 64, None),
    (d.GENERIC_PLANE, "row_stride", 4, 0, 32, None),
    (d.GENERIC_PLANE, "slice_stride", 6, 0, 32, None),
    (d.GENERIC_PLANE, "width", 7, 0, 16, "minus(1)"),
    (d.GENERIC_PLANE, "height", 7, 16, 16, "minus(1)"),
    (d.AFBC_PLANE, "superblock_size", 0, 8, 3, None),
    (d.AFBC_PLANE, "ytr", 0, 16, 1, None),
    (d.AFBC_PLANE, "split_block", 0, 17, 1, None),
    (d.AFBC_PLANE, "alpha_hint", 0, 18, 1, None),
    (d.AFBC_PLANE, "tiled_header", 0, 19, 1, None),
    (d.AFBC_PLANE, "prefetch", 0, 20, 1, None),
    (d.AFBC_PLANE, "compression_mode", 0, 26, 6, None),
    (d.AFBC_PLANE, "size", 1, 0, 32, None),
    (d.AFBC_PLANE, "pointer", 2, 0, 64, None),
    (d.AFBC_PLANE, "header_row_stride", 4, 0, 32, None),
    (d.AFBC_PLANE, "header_slice_size", 5, 0, 32, None),
    (d.AFBC_PLANE, "header_slice_stride", 6, 0, 32, None),
    (d.AFBC_PLANE, "width", 7, 0, 16, "minus(1)"),
    (d.AFBC_PLANE, "height", 7, 16, 16, "minus(1)"),
    (d.BLEND, "load_destination", 0, 0, 1, None),
    (d.BLEND, "enable", 0, 9, 1, None),
    (d.BLEND, "round_to_fb_precision", 0, 11, 1, None),
    (d.BLEND, "blend_constant", 0, 16, 16, None),
    (d.BLEND, "equation_rgb_a", 1, 0, 2, None),
    (d.BLEND, "equation_rgb_b", 1, 4, 2, None),
    (d.BLEND, "equation_rgb_c", 1, 8, 3, None),
    (d.BLEND, "equation_alpha_a", 1, 12, 2, None),
    (d.BLEND, "equation_alpha_invert_c", 1, 23, 1, None),
    (d.BLEND, "equation_color_mask", 1, 28, 4, None),
    (d.BLEND, "internal_mode", 2, 0, 2, None),
    (d.BLEND, "internal_fixed_function_num_comps", 2, 3, 2, "minus(1)"),
    (d.BLEND, "internal_fixed_function_rt", 2, 16, 4, None),
    (d.BLEND, "internal_fixed_function_conversion", 3, 0, 32, None),
    (d.DRAW, "flags_1_sample_mask", 1, 0, 16, None),
    (d.DRAW, "flags_1_render_target_mask", 1, 16, 8, None),
    (d.DRAW, "blend_count", 12, 0, 4, None),
    (d.DRAW, "blend", 12, 4, 60, "shr(4)"),
    (d.DRAW, "shader_fau_count", 17, 0, 8, None),
    (d.DRAW, "shader_resources", 24, 0, 64, None),
    (d.DRAW, "shader_shader", 26, 0, 64, None),
    (d.DRAW, "shader_thread_storage", 28, 0, 64, None),
    (d.DRAW, "shader_fau", 30, 0, 64, None),
    (d.RESOURCE, "address", 0, 0, 56, None),
    (d.RESOURCE, "contains_descriptors", 1, 24, 1, None),
    (d.RESOURCE, "size", 2, 0, 64, None),
    (d.BUFFER, "type", 0, 0, 4, None),
    (d.BUFFER, "buffer_type", 0, 4, 4, None),
    (d.BUFFER, "size", 1, 0, 32, None),
    (d.BUFFER, "address", 2, 0, 64, None),
    (d.BUFFER, "stride", 4, 0, 32, None),
    (d.COMPUTE_SIZE_WORKGROUP, "workgroup_size_x", 0, 0, 10, "minus(1)"),
    (d.COMPUTE_SIZE_WORKGROUP, "workgroup_size_y", 0, 10, 10, "minus(1)"),
    (d.COMPUTE_SIZE_WORKGROUP, "workgroup_size_z", 0, 20, 10, "minus(1)"),
    (d.COMPUTE_SIZE_WORKGROUP, "allow_merging_workgroups", 0, 31, 1, None),
    (d.FRAMEBUFFER_POINTER, "type", 0, 0, 1, None),
    (d.FRAMEBUFFER_POINTER, "zs_crc_extension_present", 0, 1, 1, None),
    (d.FRAMEBUFFER_POINTER, "render_target_count", 0, 2, 4, "minus(1)"),
    (d.FRAMEBUFFER_POINTER, "pointer", 0, 6, 58, "shr(6)"),
    (d.FRAMEBUFFER_PARAMETERS, "pre_frame_0", 0, 0, 3, None),
    (d.FRAMEBUFFER_PARAMETERS, "pre_frame_1", 0, 3, 3, None),
    (d.FRAMEBUFFER_PARAMETERS, "post_frame", 0, 6, 3, None),
    (d.FRAMEBUFFER_PARAMETERS, "internal_layer_index", 0, 24, 8, None),
    (d.FRAMEBUFFER_PARAMETERS, "frame_argument", 2, 0, 64, None),
    (d.FRAMEBUFFER_PARAMETERS, "sample_locations", 4, 0, 64, None),
    (d.FRAMEBUFFER_PARAMETERS, "frame_shader_dcds", 6, 0, 64, None),
    (d.FRAMEBUFFER_PARAMETERS, "width", 8, 0, 16, "minus(1)"),
    (d.FRAMEBUFFER_PARAMETERS, "height", 8, 16, 16, "minus(1)"),
    (d.FRAMEBUFFER_PARAMETERS, "bound_min_x", 9, 0, 16, None),
    (d.FRAMEBUFFER_PARAMETERS, "bound_min_y", 9, 16, 16, None),
    (d.FRAMEBUFFER_PARAMETERS, "bound_max_x", 10, 0, 16, None),
    (d.FRAMEBUFFER_PARAMETERS, "bound_max_y", 10, 16, 16, None),
    (d.FRAMEBUFFER_PARAMETERS, "sample_count", 11, 0, 3, "log2"),
    (d.FRAMEBUFFER_PARAMETERS, "sample_pattern", 11, 3, 3, None),
    (d.FRAMEBUFFER_PARAMETERS, "tie_break_rule", 11, 6, 3, None),
    (d.FRAMEBUFFER_PARAMETERS, "effective_tile_size", 11, 9, 4, "log2"),
    (d.FRAMEBUFFER_PARAMETERS, "first_provoking_vertex", 11, 14, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "point_sprite_coord_origin_max_y", 11, 15, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "render_target_count", 11, 19, 4, "minus(1)"),
    (d.FRAMEBUFFER_PARAMETERS, "color_buffer_allocation", 11, 24, 8, "shr(10)"),
    (d.FRAMEBUFFER_PARAMETERS, "s_clear", 12, 0, 8, None),
    (d.FRAMEBUFFER_PARAMETERS, "s_write_enable", 12, 8, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "s_preload_enable", 12, 9, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "s_unload_enable", 12, 10, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "z_internal_format", 12, 16, 2, None),
    (d.FRAMEBUFFER_PARAMETERS, "z_write_enable", 12, 18, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "z_preload_enable", 12, 19, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "z_unload_enable", 12, 20, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "has_zs_crc_extension", 12, 21, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "empty_tile_read_enable", 12, 28, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "empty_tile_write_enable", 12, 29, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "crc_read_enable", 12, 30, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "crc_write_enable", 12, 31, 1, None),
    (d.FRAMEBUFFER_PARAMETERS, "tiler", 14, 0, 64, None),
    (d.CRC, "render_target", 0, 13, 3, None),
    (d.CRC, "row_stride", 1, 0, 32, None),
    (d.CRC, "clear_color", 2, 0, 64, None),
    (d.CRC, "base", 4, 0, 64, None),
    (d.ZS_TARGET, "write_format", 0, 0, 4, None),
    (d.ZS_TARGET, "block_format", 0, 4, 4, None),
    (d.ZS_TARGET, "msaa", 0, 8, 2, None),
    (d.ZS_TARGET, "clean_pixel_write_enable", 0, 31, 1, None),
    (d.ZS_TARGET, "base", 8, 0, 64, None),
    (d.ZS_TARGET, "row_stride", 10, 0, 32, None),
    (d.ZS_TARGET, "surface_stride", 11, 0, 32, None),
    (d.AFBC_ZS_TARGET, "reverse_issue_order", 0, 30, 1, None),
    (d.AFBC_ZS_TARGET, "header", 8, 0, 64, None),
    (d.AFBC_ZS_TARGET, "header_row_stride", 10, 0, 32, None),
    (d.AFBC_ZS_TARGET, "body_offset", 11, 0, 32, None),
    (d.S_TARGET, "write_format", 0, 16, 4, None),
    (d.S_TARGET, "block_format", 0, 20, 4, None),
    (d.S_TARGET, "msaa", 0, 24, 2, None),
    (d.S_TARGET, "base", 12, 0, 64, None),
    (d.S_TARGET, "row_stride", 14, 0, 32, None),
    (d.S_TARGET, "surface_stride", 15, 0, 32, None),
    (d.AFBC_S_TARGET, "header", 12, 0, 64, None),
    (d.AFBC_S_TARGET, "body_offset", 15, 0, 32, None),
    (d.RGB_RENDER_TARGET, "writeback_mode", 0, 0, 4, None),
    (d.RGB_RENDER_TARGET, "internal_buffer_offset", 0, 4, 12, "shr(4)"),
    (d.RGB_RENDER_TARGET, "yuv_enable", 0, 24, 1, None),
    (d.RGB_RENDER_TARGET, "dithered_clear", 0, 25, 1, None),
    (d.RGB_RENDER_TARGET, "internal_format", 0, 26, 6, None),
    (d.RGB_RENDER_TARGET, "write_enable", 1, 0, 1, None),
    (d.RGB_RENDER_TARGET, "writeback_format", 1, 3, 5, None),
    (d.RGB_RENDER_TARGET, "writeback_block_format", 1, 8, 4, None),
    (d.RGB_RENDER_TARGET, "writeback_msaa", 1, 12, 2, None),
    (d.RGB_RENDER_TARGET, "srgb", 1, 14, 1, None),
    (d.RGB_RENDER_TARGET, "dithering_enable", 1, 15, 1, None),
    (d.RGB_RENDER_TARGET, "swizzle", 1, 16, 12, None),
    (d.RGB_RENDER_TARGET, "clean_pixel_write_enable", 1, 31, 1, None),
    (d.RGB_RENDER_TARGET, "writeback_buffer_base", 8, 0, 64, None),
    (d.RGB_RENDER_TARGET, "writeback_buffer_row_stride", 10, 0, 32, None),
    (d.RGB_RENDER_TARGET, "writeback_buffer_surface_stride", 11, 0, 32, None),
    (d.RGB_RENDER_TARGET, "clear_color_0", 12, 0, 32, None),
    (d.RGB_RENDER_TARGET, "clear_color_3", 15, 0, 32, None),
    (d.AFBC_RGB_RENDER_TARGET, "yuv_transform", 2, 0, 1, None),
    (d.AFBC_RGB_RENDER_TARGET, "split_block", 2, 1, 1, None),
    (d.AFBC_RGB_RENDER_TARGET, "wide_block", 2, 2, 1, None),
    (d.AFBC_RGB_RENDER_TARGET, "compression_mode", 2, 10, 6, None),
    (d.AFBC_RGB_RENDER_TARGET, "header", 8, 0, 64, None),
    (d.AFBC_RGB_RENDER_TARGET, "row_stride", 10, 0, 32, None),
    (d.AFBC_RGB_RENDER_TARGET, "body_offset", 11, 0, 32, None),
]


def _logical_for_raw(modifier, raw):
    """The logical value whose packing is `raw`, computed from the XML modifier alone."""
    if modifier is None:
        return raw
    if modifier == "log2":
        return 1 << raw
    kind, n = modifier.split("(")
    n = int(n[:-1])
    return raw + n if kind == "minus" else raw << n


def _isolated(layout, attr):
    """Values that pack every field but `attr` to raw 0 (genxml defaults overridden)."""
    return {fd.attr: (False if fd.type == "bool" else _logical_for_raw(fd.modifier, 0))
            for fd in layout.fields if fd.attr != attr and fd.default is not None}


@pytest.mark.parametrize("layout,attr,word,bit,size,modifier", XML_FACTS,
                         ids=[f"{x[0].name}.{x[1]}" for x in XML_FACTS])
def test_field_sits_where_v10_xml_says(layout, attr, word, bit, size, modifier):
    fd = layout.field(attr)
    assert (fd.word, fd.bit, fd.size, fd.modifier) == (word, bit, size, modifier)
    raw = max(fd.enum) if fd.enum is not None else (1 << size) - 1   # a named value, or all ones
    values = _isolated(layout, attr)
    values[attr] = _logical_for_raw(modifier, raw) if fd.type != "bool" else True
    data = layout.encode(**values)
    assert len(data) == layout.words * 4
    got = int.from_bytes(data, "little")
    assert got == raw << (word * 32 + bit), f"{layout.name}.{fd.name}: {got:#x}"


def _random_raw(rng, fd):
    if fd.enum is not None:
        return rng.choice(sorted(fd.enum))
    return rng.getrandbits(fd.size)


@pytest.mark.parametrize("layout", list(d.LAYOUTS.values()), ids=list(d.LAYOUTS))
def test_round_trip_every_field(layout):
    rng = random.Random(layout.name)
    for _ in range(50):
        # overlapping fields (stage-dependent ones): give each bit range one owner
        taken = 0
        values = {}
        for fd in layout.fields:
            if taken & fd.mask:
                continue
            taken |= fd.mask
            raw = _random_raw(rng, fd)
            if fd.type == "float":
                raw = struct.unpack("<I", struct.pack("<f", rng.uniform(-1e6, 1e6)))[0]
            values[fd.attr] = fd.logical(raw)
        desc = layout.decode(layout.encode(**values))
        for attr, v in values.items():
            assert getattr(desc, attr) == v, attr
        assert layout.decode(desc.to_bytes()).raw == desc.raw


def test_enum_names_accepted_and_reported():
    rt = d.RGB_RENDER_TARGET.decode(d.RGB_RENDER_TARGET.encode(
        internal_format="R8G8B8A8", writeback_format="R8G8B8A8", writeback_block_format="Tiled U-Interleaved",
        swizzle="RGBA", write_enable=True))
    assert rt.internal_format == d.COLOR_BUFFER_INTERNAL_FORMAT["R8G8B8A8"] == 1
    assert rt.writeback_format == 19 and rt.writeback_block_format == 1
    assert rt.name("writeback_block_format") == "Tiled U-Interleaved"
    assert rt.raw_field("swizzle") == 0 | 1 << 3 | 2 << 6 | 3 << 9     # Channel R G B A, 3 bits each
    assert rt.to_dict()["Writeback Block Format"] == "Tiled U-Interleaved"
    assert rt.reserved() == []


def test_reserved_values_are_detectable():
    # Writeback Format 23 and Block Format 5 are not in v10.xml's tables
    raw = (23 << 3 | 5 << 8) << 32
    rt = d.RGB_RENDER_TARGET.decode(raw.to_bytes(64, "little"))
    assert rt.name("writeback_block_format") is None
    assert sorted(rt.reserved()) == ["Writeback Block Format=0x5", "Writeback Format=0x17"]
    assert "Writeback Format=0x17(reserved)" in rt.text()


def test_defaults_follow_genxml():
    # Shader Program Type defaults to Shader (8), Framebuffer pointer Type to true,
    # Sample Count to 1 (log2 0), Point sprite origin max Y to true, Resource contains descriptors
    assert d.SHADER_PROGRAM.decode(d.SHADER_PROGRAM.encode()).type == 8
    assert d.FRAMEBUFFER_POINTER.encode_int() == 1
    fb = d.FRAMEBUFFER_PARAMETERS.decode(d.FRAMEBUFFER_PARAMETERS.encode(width=16, height=16))
    assert fb.sample_count == 1 and fb.point_sprite_coord_origin_max_y
    assert d.RESOURCE.decode(d.RESOURCE.encode()).contains_descriptors
    assert d.LOCAL_STORAGE.decode(d.LOCAL_STORAGE.encode()).wls_instances == d.LOCAL_STORAGE_NO_WORKGROUP_MEM


def test_framebuffer_pointer_tag_as_mesa_builds_it():
    # panvk/GL: fbd address | tag; 2 RTs, ZS/CRC extension, type bit
    ptr = d.FRAMEBUFFER_POINTER.encode_int(pointer=0x12340000, render_target_count=2,
                                           zs_crc_extension_present=True)
    assert ptr == 0x12340000 | 1 << 2 | 1 << 1 | 1
    tag = d.FRAMEBUFFER_POINTER.decode_int(ptr)
    assert (tag.pointer, tag.render_target_count, tag.zs_crc_extension_present) == (0x12340000, 2, True)


def test_bad_values_are_refused_when_encoding():
    with pytest.raises(ValueError):
        d.FRAMEBUFFER_PARAMETERS.encode(width=0x10001)          # 16 bits, minus(1)
    with pytest.raises(ValueError):
        d.FRAMEBUFFER_POINTER.encode(pointer=0x1001)            # shr(6): 64-byte aligned
    with pytest.raises(ValueError):
        d.FRAMEBUFFER_PARAMETERS.encode(sample_count=3)         # log2
    with pytest.raises(ValueError):
        d.RGB_RENDER_TARGET.encode(writeback_format="R9G9B9")
    with pytest.raises(ValueError):
        d.RGB_RENDER_TARGET.encode(no_such_field=1)
    with pytest.raises(ValueError):
        d.RGB_RENDER_TARGET.decode(b"\0" * 63)


def test_unions_pick_the_afbc_views():
    ext = d.ZS_TARGET.encode_int(block_format="AFBC", write_format="D24S8") | \
        d.S_TARGET.encode_int(block_format="Linear", write_format="S8", base=0x8000)
    z = d.decode_zs_crc_extension(ext.to_bytes(64, "little"))
    assert z.zs.layout is d.AFBC_ZS_TARGET and z.s.layout is d.S_TARGET and z.s.base == 0x8000
    rt = d.decode_render_target(d.AFBC_RGB_RENDER_TARGET.encode(writeback_block_format="AFBC", header=0x4000))
    assert rt.layout is d.AFBC_RGB_RENDER_TARGET and rt.header == 0x4000
    rt = d.decode_render_target(d.RGB_RENDER_TARGET.encode(writeback_block_format="Linear"))
    assert rt.layout is d.RGB_RENDER_TARGET


def test_z_clear_is_a_float_and_text_is_one_line():
    fb = d.FRAMEBUFFER_PARAMETERS.decode(d.FRAMEBUFFER_PARAMETERS.encode(z_clear=0.5, width=64, height=32))
    assert fb.z_clear == 0.5 and fb.raw_field("z_clear") == 0x3F000000
    t = fb.text()
    assert "\n" not in t and "Width=64" in t and "Height=32" in t and "Z Clear=0.5" in t
