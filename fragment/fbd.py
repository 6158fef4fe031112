"""The framebuffer descriptor of a RUN_FRAGMENT, read through the group's address space.

Memory order (genxml aggregate "Framebuffer" and pan_emit_fbd): Framebuffer Parameters (64
bytes), padding (64), the ZS CRC Extension (64) when "Has ZS CRC Extension" says so, then
one Render Target (64) per RT.  SR40's low 6 bits are the "Framebuffer pointer" tag; the
descriptor itself is 64-byte aligned.

`check()` refuses, naming the field, what needs more than a clear pass: frame shaders other
than Pre Frame "Always" (frame_shader.py runs those), multisampling, YUV and AFRC targets, reserved enum values.  CRC
fields are accepted and no CRC buffer is written: only the GPU reads CRCs (to skip writing
back tiles that did not change), and this model always writes back.
"""

from __future__ import annotations

from dataclasses import dataclass

from mali_regs import descriptors as D

from .fault import FragmentFault, not_emulated

MAX_RENDER_TARGETS = 8  # pan_desc: MALI_BIFROST_BLEND_MAX_RT; the hardware's RT limit


@dataclass
class Framebuffer:
    va: int
    tag: D.Descriptor
    params: D.Descriptor
    ext: D.ZsCrcExtension | None
    rts: list[D.Descriptor]

    def lines(self) -> list[str]:
        """One line per descriptor, for traces and `mali-vdev status`."""
        out = [f"FBD 0x{self.va:x}: {self.params.text()}"]
        if self.ext is not None:
            out.append(f"  ZS CRC Extension: {self.ext.text()}")
        out += [f"  RT{i}: {rt.text()}" for i, rt in enumerate(self.rts)]
        return out


def read(aspace, fbd_pointer: int) -> Framebuffer:
    tag = D.FRAMEBUFFER_POINTER.decode_int(fbd_pointer)
    va = tag.pointer
    params = D.FRAMEBUFFER_PARAMETERS.decode(aspace.read(va, D.FBD_PARAMETERS_SIZE))
    pos = va + D.FBD_PARAMETERS_SIZE + D.FBD_PADDING_SIZE
    ext = None
    if params.has_zs_crc_extension:
        ext = D.decode_zs_crc_extension(aspace.read(pos, D.ZS_CRC_EXTENSION_SIZE))
        pos += D.ZS_CRC_EXTENSION_SIZE
    count = params.render_target_count
    if count > MAX_RENDER_TARGETS:
        raise FragmentFault(f"Framebuffer Parameters: Render Target Count={count}, the hardware has "
                            f"{MAX_RENDER_TARGETS}", count)
    data = aspace.read(pos, count * D.RENDER_TARGET_SIZE)
    rts = [D.decode_render_target(data[i * D.RENDER_TARGET_SIZE:(i + 1) * D.RENDER_TARGET_SIZE])
           for i in range(count)]
    return Framebuffer(va, tag, params, ext, rts)


def _refuse_reserved(where: str, desc: D.Descriptor) -> None:
    bad = desc.reserved()
    if bad:
        raise FragmentFault(f"{where}: reserved value {', '.join(bad)}", desc.raw & 0xFFFFFFFF)


_FRAME_SHADERS = ("pre_frame_0", "pre_frame_1", "post_frame")
PRE_FRAME_SHADERS = ("pre_frame_0", "pre_frame_1")


def check(fb: Framebuffer) -> None:
    p = fb.params
    _refuse_reserved("Framebuffer Parameters", p)
    for attr in _FRAME_SHADERS:
        mode = p.name(attr)
        if mode != "Never" and not (attr in PRE_FRAME_SHADERS and mode == "Always"):   # run by frame_shader.py
            name = p.layout.field(attr).name
            raise not_emulated(f"Framebuffer Parameters: {name}={mode} (a frame shader at "
                               f"0x{p.frame_shader_dcds:x} needs the shader core)", p.raw & 0xFFFFFFFF)
    if p.sample_count != 1:
        raise not_emulated(f"Framebuffer Parameters: Sample Count={p.sample_count} (multisampling)", p.sample_count)
    if p.downscale_geometry:
        raise not_emulated(f"Framebuffer Parameters: Downscale geometry={p.name('downscale_geometry')}")
    for i, rt in enumerate(fb.rts):
        if not writes_back(rt):
            continue  # Mesa's dummy RTs and targets not stored: nothing of them is used
        where = f"{rt.layout.name} {i}"
        _refuse_reserved(where, rt)
        if rt.writeback_mode != D.WRITEBACK_MODE["Compat"]:
            raise not_emulated(f"{where}: Writeback Mode={rt.name('writeback_mode')} (AFRC)", rt.writeback_mode)
        if rt.yuv_enable:
            raise not_emulated(f"{where}: YUV Enable (YUV render target)")
        if rt.writeback_msaa != D.MSAA["Single"]:
            raise not_emulated(f"{where}: Writeback MSAA={rt.name('writeback_msaa')}", rt.writeback_msaa)
    if (p.z_write_enable or p.s_write_enable) and fb.ext is None:
        raise FragmentFault("Framebuffer Parameters: Z/S Write Enable without a ZS CRC Extension", p.raw & 0xFFFFFFFF)
    if combined_stencil(fb) and fb.ext.zs.name("write_format") != "D24S8":
        raise FragmentFault(f"Framebuffer Parameters: S Write Enable with no S Target and ZS Target Write "
                            f"Format={fb.ext.zs.name('write_format')}", fb.ext.zs.write_format)
    for used, desc in ((writes_zs_target(fb), fb.ext and fb.ext.zs), (writes_s_target(fb), fb.ext and fb.ext.s)):
        if not used:
            continue
        _refuse_reserved(desc.layout.name, desc)
        if desc.block_format == D.BLOCK_FORMAT["No Write"]:
            raise FragmentFault(f"{desc.layout.name}: Block Format=No Write with the write enabled")
        if desc.msaa != D.MSAA["Single"]:
            raise not_emulated(f"{desc.layout.name}: MSAA={desc.name('msaa')}", desc.msaa)


def writes_back(rt: D.Descriptor) -> bool:
    """With no draws every tile is clean: only targets that write back clean pixels (Mesa sets
    Clean Pixel Write Enable on cleared targets) reach memory."""
    return bool(rt.write_enable and rt.clean_pixel_write_enable
                and rt.writeback_block_format != D.BLOCK_FORMAT["No Write"])


def _zs_written(fb: Framebuffer) -> bool:
    """With no draws only a cleared ZS/S view writes back: Mesa sets the (shared) Clean Pixel
    Write Enable of the extension when depth or stencil is cleared."""
    return fb.ext is not None and bool(fb.ext.zs.clean_pixel_write_enable)


def combined_stencil(fb: Framebuffer) -> bool:
    """Stencil written into the ZS target (D24S8): S Write Enable and no S Target format."""
    return bool(fb.params.s_write_enable and _zs_written(fb) and not fb.ext.s.write_format)


def writes_zs_target(fb: Framebuffer) -> bool:
    return _zs_written(fb) and bool(fb.ext.zs.write_format) and bool(fb.params.z_write_enable or combined_stencil(fb))


def writes_s_target(fb: Framebuffer) -> bool:
    return _zs_written(fb) and bool(fb.params.s_write_enable and fb.ext.s.write_format)
