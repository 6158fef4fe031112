"""Valhall enums, in encoding order (facts from Mesa's ISA.xml).

A value spelled "-" is reserved (decoding it is an error); a trailing "*" marks the default,
which the disassembler leaves out, as Mesa's does.
"""

from __future__ import annotations

from types import MappingProxyType


class Enum:
    __slots__ = ("name", "values", "default")

    def __init__(self, name: str, spec: str):
        self.name = name
        vals, self.default = [], None
        for i, v in enumerate(spec.split()):
            if v.endswith("*"):
                v, self.default = v[:-1], i
            vals.append(None if v == "-" else v)
        self.values = tuple(vals)

    def text(self, i: int) -> str:
        """Disassembly suffix: '' for the default, '.value' otherwise."""
        return "" if i == self.default else "." + self.values[i]


_SPECS = {
    "flow": "none* wait0 wait1 wait01 wait2 wait02 wait12 wait012 wait0126 wait reconverge - - discard - end",
    "widen": "none* h0 h1 - - - - -",
    "swizzles_8_bit": "b0123* - b0101 b2323 b0000 b1111 b2222 b3333 b2301 b1032 b0011 b2233 - - - -",
    "swizzles_16_bit": "h00 h10 h01* h11 b00 b20 b02 b22 b11 b31 b13 b33 b01 b23 - -",
    "swizzles_32_bit": "none* - h0 h1 b0 b1 b2 b3",
    "swizzles_64_bit": "none* - h0 h1 b0 b1 b2 b3 w0 - - - - - - -",
    "lanes_8_bit": "- - - - b00 b11 b22 b33 - - - - - - - -",
    "half_swizzles_8_bit": "b00 b10 b20 b30 b01 b11 b21 b31 b02 b12 b22 b32 b03 b13 b23 b33",
    "lane_8_bit": "b0 b1 b2 b3",
    "lane_16_bit": "h0 h1",
    "combine": "none* h0 h1 and lowbits - - -",
    "load_lane_8_bit": "b0* b1 b2 b3 h0 h1 w0 d0",
    "load_lane_16_bit": "h0* h1 w0 d0 - - - -",
    "load_lane_24_bit": "identity* - - - - - - -",
    "load_lane_32_bit": "w0* d0 - - - - - -",
    "load_lane_48_bit": "- - - - identity* - - -",
    "load_lane_64_bit": "- - - - - - - identity*",
    "load_lane_96_bit": "- - - - - - identity* -",
    "load_lane_128_bit": "- - - - - - - identity*",
    "round_mode": "rte* rtp rtn rtz",
    "result_type": "i1 f1 m1 u1",
    "clamp": "none* clamp_0_inf clamp_m1_1 clamp_0_1",
    "condition": "eq gt ge ne lt le gtlt total",
    "dimension": "1d 2d 3d cube",
    "lod_mode": "zero computed - - explicit computed_bias grdesc -",
    "register_format": "auto - f32 f16 s32 s16 u32 u16",
    "write_mask": "- r g rg b rb gb rgb a ra ga rga ba rba gba rgba*",
    "fetch_component": "gather4_r gather4_g gather4_b gather4_a",
    # 0 is reserved in ISA.xml, yet Mesa 26.2.6 packs it into every TEX_FETCH (f32 and u32 alike;
    # tests/unit/data/mesa-vk-meta-copy-image-to-buffer.txt); its disassembler prints ".reserved"
    "register_type": "reserved f u s",
    "register_width": "16 32",
    "varying_texture_register_width": "16 32 16.32 32.32",
    "vector_size": "none* v2 v3 v4",
    "slot": "slot0 slot1 slot2 - - - - slot7",
    "memory_access": "none* istream estream force - - - -",
    "subgroup_size": "subgroup2 subgroup4 subgroup8 subgroup16* - - - - - - - - - - - -",
    "lane_operation": "none* xor accumulate shift",
    "inactive_result": "zero* umax i1 v2i1 smin smax v2smin v2smax v4smin v4smax f1 v2f1 infn inf v2infn v2inf",
    "mux": "neg int_zero* fp_zero bit",
    "sample_mode": "center centroid sample explicit",
    "update_mode": "store retrieve - clobber",
    "sample_and_update_mode": "center_store centroid_store sample_store explicit_store center_clobber - "
                              "sample_clobber retrieve",
    "source_format": "src_flat32 src_flat16 src_f32 src_f16 - - - - - - - - - - - -",
    "atomic_operation": "- - aadd - - - - - asmin asmax aumin aumax aand aor axor axchg",
    "atomic_operation_with_1": "ainc adec aumax1 asmax1 aor1 - - - - - - - - - - -",
    "nan_mode": "none flush_nan quiet_nan -",
}

ENUMS: MappingProxyType = MappingProxyType({n: Enum(n, s) for n, s in _SPECS.items()})

# The 32 constants every source can name without a register or uniform (ISA.xml "Immediates").
IMMEDIATES = (
    0x00000000, 0xFFFFFFFF, 0x7FFFFFFF, 0xFAFCFDFE, 0x01000000, 0x80002000, 0x70605030, 0xC0B0A090,
    0x03020100, 0x07060504, 0x0B0A0908, 0x0F0E0D0C, 0x13121110, 0x17161514, 0x1B1A1918, 0x1F1E1D1C,
    0x3F800000, 0x3DCCCCCD, 0x3EA2F983, 0x3F317218, 0x40490FDB, 0x00000000, 0x477FFF00, 0x5C005BF8,
    0x2E660000, 0x34000000, 0x38000000, 0x3C000000, 0x40000000, 0x44000000, 0x48000000, 0x42480000,
)

# Special FAU values per FAU page (entry index -> name); a missing entry is reserved.
SPECIAL_FAU = MappingProxyType({
    0: {2: "warp_id", 4: "framebuffer_size", 5: "atest_datum", 6: "sample",
        **{8 + i: f"blend_descriptor_{i}" for i in range(8)}},
    1: {1: "thread_local_pointer", 3: "workgroup_local_pointer", 7: "resource_table_pointer"},
    3: {1: "lane_id", 3: "core_id", 15: "program_counter"},
})
