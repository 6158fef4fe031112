"""The initramfs layers of a boot, without QEMU: merged-/usr base, firmware choices,
guest packages, the cross-built panthor-client, user kernels' modules."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest

from mali_regs.profiles import get_profile
from qemu import assets as guest_assets
from qemu import firmware, guest_packages, initramfs, kmodules, tools
from qemu.assets import GuestAssets
from qemu.cpio import CpioWriter, read_cpio
from tests.unit.test_qemu_kmodules import fake_module

VERSION = "7.2.13+deb14-arm64"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MALI_VDEV_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def entries(path: Path) -> dict:
    return {e.name: e for e in read_cpio(path.read_bytes())}


def make_modules(root: Path, compress=lambda b: b, suffix=".ko", vermagic=VERSION) -> Path:
    mods = {"drm": "", "gpu-sched": "drm", "drm_exec": "drm", "drm_gpuvm": "drm,drm_exec",
            "panthor": "drm,gpu-sched,drm_gpuvm,drm_exec"}
    root.mkdir(parents=True, exist_ok=True)
    for name, deps in mods.items():
        data = fake_module(kmodules.canonical(name), deps, f"{vermagic} SMP mod_unload aarch64")
        (root / f"{name}{suffix}").write_bytes(compress(data))
    return root


@pytest.fixture
def assets(tmp_path) -> GuestAssets:
    mods = make_modules(tmp_path / "lib/modules" / VERSION / "kernel/drivers/gpu")
    fw = tmp_path / "fw/lib/firmware"
    (fw / "arm/mali/arch10.10").mkdir(parents=True)
    (fw / "arm/mali/arch10.10/mali_csffw.bin").write_bytes(b"ARM" * 100)
    (fw / "arm/mali/arch10.8").mkdir()
    (fw / "arm/mali/arch10.8/mali_csffw.bin").symlink_to("../arch10.10/mali_csffw.bin")
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF-busybox")
    (tmp_path / "Image").write_bytes(b"Image")
    return GuestAssets(VERSION, tmp_path / "Image", mods.parents[2], busybox, fw,
                       {"firmware-misc-nonfree": "20260916-1"})


# --- base -------------------------------------------------------------------------------

def test_base_is_merged_usr_with_modules_and_no_firmware(assets):
    base = initramfs.build_base(assets)
    e = entries(base)
    for link, target in initramfs.MERGED_DIRS.items():
        assert stat.S_ISLNK(e[link].mode) and e[link].data == target.encode()
    assert e["usr/bin/busybox"].data == b"\x7fELF-busybox"
    assert e["usr/bin/sh"].data == b"busybox" and stat.S_ISLNK(e["usr/bin/sh"].mode)
    moddir = f"usr/lib/modules/{VERSION}"
    order = e[f"{moddir}/load-order"].data.decode().split()
    assert order[-1] == "panthor" and set(order) == {"drm", "gpu_sched", "drm_exec",
                                                     "drm_gpuvm", "panthor"}
    assert all(f"{moddir}/{m}.ko" in e for m in order)
    assert not any("firmware" in n for n in e)
    assert initramfs.build_base(assets) == base  # cached
    # Debian's kernel has no tyr.ko: only panthor's list, and the driver switch script
    assert e[f"{moddir}/load-order.panthor"].data == e[f"{moddir}/load-order"].data
    assert f"{moddir}/load-order.tyr" not in e
    assert e["usr/bin/mali-driver"].mode & 0o111


def test_base_with_tyr_has_both_drivers_sharing_modules(assets):
    moddir_host = assets.modules_dir / "kernel/drivers/gpu"
    (moddir_host / "tyr.ko").write_bytes(
        fake_module("tyr", "drm_gpuvm,drm_exec", f"{VERSION} SMP mod_unload aarch64"))
    e = entries(initramfs.build_base(assets))
    moddir = f"usr/lib/modules/{VERSION}"
    tyr = e[f"{moddir}/load-order.tyr"].data.decode().split()
    assert tyr[-1] == "tyr" and tyr.index("drm") < tyr.index("drm_exec") < tyr.index("drm_gpuvm")
    assert e[f"{moddir}/load-order.panthor"].data.decode().split()[-1] == "panthor"
    names = [n for n in e if n.startswith(moddir) and n.endswith(".ko")]
    assert len(names) == len(set(names)) == 6   # shared modules written once


def test_boot_initrd_is_base_then_layers_then_command(tmp_path):
    parts = []
    for name in ("base", "fw", "tools"):
        w = CpioWriter()
        w.add_file(f"{name}.txt", name.encode())
        (tmp_path / f"{name}.cpio").write_bytes(w.to_bytes())
        parts.append(tmp_path / f"{name}.cpio")
    out = initramfs.write_boot_initrd(parts[0], "echo hi", tmp_path / "initrd", parts[1:])
    assert out.read_bytes() == b"".join(p.read_bytes() for p in parts) + \
        initramfs.command_archive("echo hi")


# --- firmware ---------------------------------------------------------------------------

def test_firmware_none_and_unknown(assets):
    assert firmware.firmware_archive("none", get_profile("g610"), assets) is None
    with pytest.raises(ValueError, match="generated, arm, none"):
        firmware.firmware_archive("blob", get_profile("g610"), assets)


def test_firmware_arm_copies_debian_tree_with_symlinks(assets):
    out = firmware.firmware_archive("arm", get_profile("g610"), assets)
    e = entries(out)
    assert e["usr/lib/firmware/arm/mali/arch10.10/mali_csffw.bin"].data == b"ARM" * 100
    link = e["usr/lib/firmware/arm/mali/arch10.8/mali_csffw.bin"]
    assert stat.S_ISLNK(link.mode) and link.data == b"../arch10.10/mali_csffw.bin"
    assert not any(n in ("lib", "lib/firmware") for n in e)  # never replaces /lib


def test_firmware_arm_missing_arch_is_explained(assets):
    with pytest.raises(RuntimeError, match=r"no arm/mali/arch11\.8/mali_csffw\.bin.*"
                                           r"arch10\.10, arch10\.8.*--firmware generated"):
        firmware.firmware_archive("arm", get_profile("g615"), assets)


@pytest.mark.parametrize("gpu", ["g610", "g615", "g725"])
def test_firmware_generated_sits_at_the_profile_path(assets, gpu):
    from firmware_loader.image import FirmwareImage
    profile = get_profile(gpu)
    out = firmware.firmware_archive("generated", profile, assets)
    e = entries(out)
    files = [n for n, x in e.items() if stat.S_ISREG(x.mode)]
    assert files == [f"usr/lib/firmware/{profile.firmware_path}"]
    FirmwareImage.parse(e[files[0]].data)  # a valid image for the driver's parser
    assert firmware.firmware_archive("generated", profile, assets) == out


def test_corruptions_break_what_panthor_checks():
    """Each mode spoils the one thing panthor_fw_load refuses, and nothing else."""
    from firmware_loader.image import FirmwareError, parse
    good = firmware.generated_image(get_profile("g610"))
    img = parse(good)
    assert img.validate() == []
    with pytest.raises(FirmwareError, match="bad magic"):
        parse(firmware.corrupt(good, "magic"))
    v = parse(firmware.corrupt(good, "version"))
    assert (v.header.major, v.header.minor) == (img.header.major + 1, img.header.minor)
    t = firmware.corrupt(good, "truncate")
    assert len(t) < img.header.size and t == good[:len(t)]
    with pytest.raises(FirmwareError, match="truncated"):
        parse(t)
    f = parse(firmware.corrupt(good, "flags"))
    assert f.sections[0].unknown_flags == firmware.UNKNOWN_IFACE_FLAG
    assert f.sections[0].flags == img.sections[0].flags | firmware.UNKNOWN_IFACE_FLAG
    with pytest.raises(FirmwareError, match="unknown flag bits 0x100000"):
        f.validate()
    for mode in ("magic", "version", "flags"):  # same length, one field changed
        bad = firmware.corrupt(good, mode)
        assert len(bad) == len(good) and sum(a != b for a, b in zip(bad, good)) <= 4
    with pytest.raises(ValueError, match="unknown firmware corruption"):
        firmware.corrupt(good, "shred")


def test_corrupt_layer_holds_the_bad_image_and_the_good_one(assets):
    profile = get_profile("g610")
    out = firmware.corrupt_archive("magic", "generated", profile, assets)
    e = entries(out)
    files = sorted(n for n, x in e.items() if stat.S_ISREG(x.mode))
    path = f"usr/lib/firmware/{profile.firmware_path}"
    assert files == sorted([path, f"usr/lib/firmware/mali-good/{profile.firmware_path}"])
    good = firmware.generated_image(profile)
    assert e[f"usr/lib/firmware/mali-good/{profile.firmware_path}"].data == good
    assert e[path].data == firmware.corrupt(good, "magic")
    assert firmware.corrupt_archive("magic", "generated", profile, assets) == out  # cached
    assert firmware.corrupt_archive("flags", "generated", profile, assets) != out
    with pytest.raises(ValueError, match="unknown firmware corruption"):
        firmware.corrupt_archive("shred", "generated", profile, assets)
    with pytest.raises(ValueError, match="no firmware image to corrupt"):
        firmware.corrupt_archive("magic", "none", profile, assets)


def test_boot_appends_the_corrupt_layer_after_the_firmware(assets):
    """The guest unpacks layers in order: the spoiled file must replace the good one."""
    from qemu import boot
    p = boot.Prepared(qemu=None, assets=assets, initramfs=Path("base.cpio"),
                      dtb=Path("virt.dtb"), machine=[], layers=[Path("tools.cpio")])
    plan = boot.plan_boot(boot.BootOptions("true", corrupt_firmware="truncate"), p)
    fw, bad, tools = plan.layers
    assert fw.name.startswith("firmware-generated-") and bad.name.startswith("firmware-corrupt-")
    assert tools == Path("tools.cpio")
    assert "mali.driver=panthor" in plan.cmdline.split()
    assert plan.server_args[-4:] == ["--gpu", "g610", "--timestamp-hz", "62500000"]


# --- guest packages ---------------------------------------------------------------------

def test_package_names_parse():
    assert guest_packages.parse_names("strace,libdrm-tests strace") == ["strace", "libdrm-tests"]
    assert guest_packages.parse_names(["a,b", "c"]) == ["a", "b", "c"]
    assert guest_packages.parse_names(None) == [] == guest_packages.parse_names("")


def test_package_paths_follow_merged_usr():
    g = guest_packages.guest_path
    assert g("bin/ls") == "usr/bin/ls" and g("sbin/x") == "usr/sbin/x"
    assert g("lib/aarch64-linux-gnu/libc.so.6") == "usr/lib/aarch64-linux-gnu/libc.so.6"
    assert g("usr/lib/libfoo.so") == "usr/lib/libfoo.so" and g("etc/foo.conf") == "etc/foo.conf"
    assert g("usr/share/doc/strace/copyright") is None and g("usr/share/man/man1/x.1.gz") is None


def test_package_tree_keeps_links_modes_and_never_replaces_merged_dirs(tmp_path):
    t = tmp_path / "pkg"
    (t / "usr/bin").mkdir(parents=True)
    (t / "usr/bin/tool").write_bytes(b"ELF")
    (t / "usr/bin/tool").chmod(0o4755)
    (t / "lib/aarch64-linux-gnu").mkdir(parents=True)
    (t / "lib/aarch64-linux-gnu/libx.so.1").write_bytes(b"lib")
    (t / "lib/aarch64-linux-gnu/libx.so").symlink_to("libx.so.1")
    (t / "usr/share/doc/pkg").mkdir(parents=True)
    (t / "usr/share/doc/pkg/copyright").write_text("c")
    os.symlink("usr/bin", t / "bin")  # like base-files
    w = CpioWriter()
    assert guest_packages.add_package_tree(w, t) == 6
    e = {x.name: x for x in read_cpio(w.to_bytes())}
    assert stat.S_IMODE(e["usr/bin/tool"].mode) == 0o4755
    assert e["usr/lib/aarch64-linux-gnu/libx.so"].data == b"libx.so.1"
    assert stat.S_ISDIR(e["usr/bin"].mode) and "bin" not in e and "lib" not in e
    assert not any(n.startswith("usr/share/doc") for n in e)


def test_packages_archive_uses_apt_resolution(tmp_path, monkeypatch):
    """Resolution/download are apt's; the archive holds every resolved package's files;
    the resolution is remembered for the same names and archive snapshot."""
    from qemu import debian

    class FakeApt(debian.AptRoot):
        resolved = 0

        def ensure_updated(self):
            pass

        def resolve(self, names):
            assert names == ["tool"]
            FakeApt.resolved += 1
            return [debian.Package("libdep", "1", "arm64", "pool/l/libdep_1_arm64.deb"),
                    debian.Package("tool", "2", "arm64", "pool/t/tool_2_arm64.deb")]

        def download(self, pkgs):
            return {p.name: tmp_path / f"{p.name}.deb" for p in pkgs}

    def fake_unpacked(apt, pkg, deb):
        d = tmp_path / "trees" / pkg.name / "usr/lib"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{pkg.name}.so").write_bytes(pkg.version.encode())
        return tmp_path / "trees" / pkg.name

    apt = FakeApt(tmp_path / "apt", "http://deb.example/debian")
    lists = tmp_path / "apt/var/lib/apt/lists"
    lists.mkdir(parents=True)
    (lists / "deb_dists_sid_InRelease").write_text("Date: Tue, 01 Dec 2026 08:00:00 UTC\n")
    monkeypatch.setattr(guest_packages, "unpacked", fake_unpacked)
    out = guest_packages.packages_archive(["tool"], apt=apt)
    e = entries(out)
    assert e["usr/lib/libdep.so"].data == b"1" and e["usr/lib/tool.so"].data == b"2"
    assert guest_packages.packages_archive([], apt=apt) is None
    assert guest_packages.packages_archive(["tool"], apt=apt) == out
    assert FakeApt.resolved == 1                      # the second boot asks apt nothing
    (lists / "deb_dists_sid_InRelease").write_text("Date: Wed, 02 Dec 2026 08:00:00 UTC\n")
    assert guest_packages.packages_archive(["tool"], apt=apt) == out
    assert FakeApt.resolved == 2                      # a new snapshot: apt decides again


# --- user kernels -----------------------------------------------------------------------

def test_flat_module_dir_gz_release_from_vermagic(tmp_path):
    d = make_modules(tmp_path / "flat", gzip.compress, ".ko.gz", vermagic="6.19.0-mine")
    assert kmodules.kernel_release(d) == "6.19.0-mine"
    order = [n for n, _, _ in kmodules.closure(d)]
    assert order[-1] == "panthor" and len(order) == 5


def test_builtin_drm_may_be_missing_but_panthor_not(tmp_path):
    d = tmp_path / "mods"
    d.mkdir()
    (d / "panthor.ko").write_bytes(fake_module("panthor", ""))  # drm & co. built in (=y)
    assert [n for n, _, _ in kmodules.closure(d)] == ["panthor"]
    (d / "panthor.ko").unlink()
    with pytest.raises(RuntimeError, match="panthor"):
        kmodules.closure(d)


def test_kernel_needs_its_modules(tmp_path):
    with pytest.raises(RuntimeError, match="--kernel and --modules go together"):
        guest_assets.fetch_assets(apt=object(), kernel=tmp_path / "Image")
    with pytest.raises(RuntimeError, match="no such file"):
        guest_assets.user_kernel(tmp_path / "Image", tmp_path)


def test_user_modules_digest_changes_with_the_files(tmp_path):
    d = make_modules(tmp_path / "m")
    a = guest_assets.modules_digest(d)
    (d / "panthor.ko").write_bytes((d / "panthor.ko").read_bytes() + b"\0")
    assert guest_assets.modules_digest(d) != a


# --- panthor-client ---------------------------------------------------------------------

def test_missing_cross_compiler_names_the_packages(monkeypatch):
    monkeypatch.setenv(tools.CROSS_CC_ENV, "/nonexistent/aarch64-gcc")
    with pytest.raises(tools.ToolBuildError, match="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"):
        tools.build_client()


@pytest.mark.skipif(tools.cross_compiler() is None, reason="no aarch64-linux-gnu-gcc")
def test_client_is_a_static_arm64_executable_in_a_cached_layer():
    binary = tools.build_client()
    elf = binary.read_bytes()
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183
    phoff, phentsize, phnum = (int.from_bytes(elf[32:40], "little"),
                               int.from_bytes(elf[54:56], "little"),
                               int.from_bytes(elf[56:58], "little"))
    types = [int.from_bytes(elf[phoff + i * phentsize:][:4], "little") for i in range(phnum)]
    assert 3 not in types  # no PT_INTERP: static, no dynamic loader needed in the guest
    assert tools.build_client() == binary  # keyed by source hash: cached
    e = entries(tools.tools_archive())
    assert e["usr/bin/panthor-client"].data == binary.read_bytes()
    assert stat.S_IMODE(e["usr/bin/panthor-client"].mode) == 0o755
