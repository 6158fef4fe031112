"""Debian's Mesa in the guest: what the package layer leaves out, and the cross-built
mesa-cases program (qemu/guest_tools/mesa_cases.c) the guest tests run."""

from __future__ import annotations

import io
import shutil
import stat

import pytest
from elftools.elf.elffile import ELFFile

from qemu import cache, debian, guest_packages, tools
from qemu.cpio import read_cpio

LIB = "usr/lib/aarch64-linux-gnu"


def test_other_gpus_vulkan_drivers_and_their_manifests_are_left_out():
    g = guest_packages.guest_path
    for name in ("radeon", "intel", "nouveau", "freedreno", "asahi", "powervr_mesa"):
        assert g(f"{LIB}/libvulkan_{name}.so") is None
        assert g(f"usr/share/vulkan/icd.d/{name}_icd.json") is None
    assert g("usr/share/vulkan/icd.d/gfxstream_vk_icd.json") is None
    # panvk, lavapipe and the loader stay, and so do GL's drivers
    for kept in (f"{LIB}/libvulkan_panfrost.so", f"{LIB}/libvulkan_lvp.so",
                 "usr/share/vulkan/icd.d/panfrost_icd.json", "usr/share/vulkan/icd.d/lvp_icd.json",
                 f"{LIB}/libvulkan.so.1", f"{LIB}/libgallium-26.2.6-1.so",
                 "usr/share/glvnd/egl_vendor.d/50_mesa.json"):
        assert g(kept) == kept


needs_compilers = pytest.mark.skipif(
    tools.cross_compiler() is None or shutil.which(tools.GLSLANG) is None,
    reason=f"needs {tools.CROSS_CC} and {tools.GLSLANG} (scripts/install-deps)")
# The build takes its headers from sid packages; unit tests do not create the apt root.
needs_apt_root = pytest.mark.skipif(
    not tools.lists_present(debian.AptRoot(cache.cache_root() / "apt-sid-arm64", "")),
    reason="no sid apt root in the cache yet (`mali-vdev setup` or a guest test makes it)")


@needs_compilers
@needs_apt_root
def test_mesa_cases_is_arm64_and_links_no_graphics_library():
    binary = tools.build_mesa_cases()
    elf = ELFFile(io.BytesIO(binary.read_bytes()))
    assert elf["e_machine"] == "EM_AARCH64" and elf.elfclass == 64
    interp = [s for s in elf.iter_segments() if s["p_type"] == "PT_INTERP"]
    assert interp and interp[0].get_interp_name() == "/lib/ld-linux-aarch64.so.1"
    needed = sorted(t.needed for t in elf.get_section_by_name(".dynamic").iter_tags()
                    if t.entry.d_tag == "DT_NEEDED")
    assert needed == ["libc.so.6"]       # Vulkan, EGL and GLES come through dlopen
    assert tools.build_mesa_cases() == binary   # cached by its inputs
    e = {x.name: x for x in read_cpio(tools.mesa_tools_archive().read_bytes())}
    assert e[tools.MESA_GUEST_PATH].data == binary.read_bytes()
    assert stat.S_IMODE(e[tools.MESA_GUEST_PATH].mode) == 0o755


@needs_compilers
def test_every_shader_compiles_to_spirv(tmp_path):
    headers = tools._spirv_headers(tmp_path)
    assert sorted(h.name for h in headers) == sorted(
        f"spv_{p.stem}.h" for p in tools.MESA_SHADERS.glob("*.comp"))
    for h in headers:     # SPIR-V magic number as the array's first word
        assert "0x07230203" in h.read_text()


@pytest.mark.skipif(tools.cross_compiler() is None, reason=f"needs {tools.CROSS_CC}")
def test_missing_glslang_names_the_package(monkeypatch):
    monkeypatch.setattr(tools, "GLSLANG", "no-such-glslangValidator")
    with pytest.raises(tools.ToolBuildError, match=tools.GLSLANG_PACKAGE):
        tools.build_mesa_cases()
