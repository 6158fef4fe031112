"""The Mali CSF firmware the guest's panthor loads, as an initramfs layer.

panthor requests `arm/mali/arch<major>.<minor>/mali_csffw.bin` for the GPU it finds
(`mali_regs.profiles.GpuProfile.firmware_path`).  `mali-vdev boot --firmware` chooses what
is found there:

- `generated` (default): our own free image, built by `firmware_loader.builder` with the
  shared-section layout for the profile's CSF interface (CSG slots, streams per group);
  no Arm file enters the guest.
- `arm`: Arm's image from Debian's `firmware-misc-nonfree` (the whole `arm/mali` tree, so
  its arch symlinks resolve), for comparing our emulation with the real blob.
- `none`: no firmware file at all (panthor's probe then fails; for testing that path).

`--corrupt-firmware MODE` (a guest-side fault, `corrupt_archive`) puts a spoiled copy of
the chosen image at the firmware path and the good one under `mali-good/` with the same
relative path, so the guest can recover without a reboot:

    cp -r /lib/firmware/mali-good/* /lib/firmware/
    echo 10000000.gpu > /sys/bus/platform/drivers/panthor/bind

Modes and what panthor 7.2 says when it loads the image (`panthor_fw_load`):
`magic` ("Invalid firmware magic"), `version` (header major 1: "Unsupported firmware binary
header version 1.x (expected 0.x)"), `truncate` (the file ends inside the entry area:
"Firmware image is truncated"), `flags` (an unknown bit in the first IFACE entry's flags:
"Firmware contains interface with unsupported flags (0x...)").

Each layer is a small cached cpio placed at `usr/lib/firmware/...` (`/lib` is a symlink to
`usr/lib` in the guest).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mali_regs.profiles import GpuProfile
from qemu import cache
from qemu.assets import FIRMWARE, GuestAssets
from qemu.cpio import CpioWriter

CHOICES = ("generated", "arm", "none")
DEFAULT = "generated"
GUEST_FIRMWARE_DIR = "usr/lib/firmware"
ARM_SUBDIR = "arm/mali"
CORRUPT_MODES = ("magic", "version", "truncate", "flags")
#: where a corrupting layer keeps the good image (the same relative path below it)
GOOD_SUBDIR = "mali-good"
#: an IFACE flag bit neither panthor nor Tyr knows (reserved bits [29:6])
UNKNOWN_IFACE_FLAG = 1 << 20


def generated_image(profile: GpuProfile) -> bytes:
    """Our firmware image for `profile` (built in memory; takes milliseconds)."""
    from firmware_loader.builder import build_image, shared_section_template

    # Arm's arch11+ images report prfcnt_features 2; arch10 ones 1 (see the builder).
    shared = shared_section_template(
        group_num=profile.csg_slots, stream_num=profile.cs_per_csg,
        prfcnt_features=2 if profile.arch_major >= 11 else 1)
    return build_image(shared)


def _arm_tree(assets: GuestAssets) -> Path:
    tree = assets.firmware_dir / ARM_SUBDIR
    if not tree.is_dir():
        raise RuntimeError(f"no {ARM_SUBDIR} firmware in {assets.firmware_dir}")
    return tree


def firmware_archive(choice: str, profile: GpuProfile, assets: GuestAssets) -> Path | None:
    """The cached firmware layer for this choice and GPU (None for `none`)."""
    if choice not in CHOICES:
        raise ValueError(f"unknown firmware choice {choice!r}; choose one of {', '.join(CHOICES)}")
    if choice == "none":
        return None
    w = CpioWriter()
    if choice == "arm":
        tree = _arm_tree(assets)
        wanted = assets.firmware_dir / profile.firmware_path
        if not wanted.resolve().is_file():
            have = sorted(p.parent.name for p in tree.glob("*/mali_csffw.bin"))
            raise RuntimeError(
                f"{FIRMWARE} {assets.packages.get(FIRMWARE, '')} has no {profile.firmware_path} "
                f"for {profile.name} (it has {', '.join(have)}); use --firmware generated")
        key = cache.key_of("arm", assets.packages.get(FIRMWARE), str(tree))
        name = f"firmware-arm-{key}.cpio"
        build = lambda: w.add_tree(tree, f"{GUEST_FIRMWARE_DIR}/{ARM_SUBDIR}")  # noqa: E731
    else:
        image = generated_image(profile)
        key = cache.key_of("generated", profile.firmware_path, hashlib.sha256(image).hexdigest())
        name = f"firmware-generated-{key}.cpio"
        build = lambda: w.add_file(f"{GUEST_FIRMWARE_DIR}/{profile.firmware_path}", image)  # noqa: E731
    out = cache.cache_root() / "initramfs" / name
    if out.exists():
        return out
    build()
    with cache.atomic_file(out) as tmp:
        tmp.write_bytes(w.to_bytes())
    _prune(out.parent, "firmware-", keep=out)
    return out


def image_bytes(choice: str, profile: GpuProfile, assets: GuestAssets) -> bytes:
    """The firmware image a boot with `choice` puts at the profile's firmware path."""
    if choice == "generated":
        return generated_image(profile)
    if choice == "arm":
        _arm_tree(assets)
        path = (assets.firmware_dir / profile.firmware_path).resolve()
        if not path.is_file():
            raise RuntimeError(f"no {profile.firmware_path} in {assets.firmware_dir}")
        return path.read_bytes()
    raise ValueError(f"no firmware image to corrupt with --firmware {choice}")


def corrupt(image: bytes, mode: str) -> bytes:
    """`image` spoiled the way `mode` says (see the module docstring)."""
    from firmware_loader.image import HEADER_SIZE, parse

    fw = parse(image)
    out = bytearray(image)
    if mode == "magic":
        out[0:4] = (fw.header.magic ^ 0xFFFFFFFF).to_bytes(4, "little")
    elif mode == "version":
        out[5] = fw.header.major + 1                      # u8 major after u32 magic, u8 minor
    elif mode == "truncate":
        # Keep the header, cut inside the entry area: header.size is past the end of the file.
        return bytes(out[:max(HEADER_SIZE, fw.header.size - 16)])
    elif mode == "flags":
        if not fw.sections:
            raise ValueError("the image has no IFACE entry whose flags could be spoiled")
        at = fw.sections[0].offset + 4                    # flags follow the entry header
        flags = int.from_bytes(out[at:at + 4], "little") | UNKNOWN_IFACE_FLAG
        out[at:at + 4] = flags.to_bytes(4, "little")
    else:
        raise ValueError(f"unknown firmware corruption {mode!r}; choose one of "
                         f"{', '.join(CORRUPT_MODES)}")
    return bytes(out)


def corrupt_archive(mode: str, choice: str, profile: GpuProfile, assets: GuestAssets) -> Path:
    """A layer (appended after the firmware layer) with the spoiled image at the firmware path
    and the good one at `mali-good/<firmware path>`."""
    if mode not in CORRUPT_MODES:
        raise ValueError(f"unknown firmware corruption {mode!r}; choose one of "
                         f"{', '.join(CORRUPT_MODES)}")
    good = image_bytes(choice, profile, assets)
    bad = corrupt(good, mode)
    key = cache.key_of("corrupt", mode, profile.firmware_path, hashlib.sha256(good).hexdigest())
    out = cache.cache_root() / "initramfs" / f"firmware-corrupt-{key}.cpio"
    if out.exists():
        return out
    w = CpioWriter()
    w.add_file(f"{GUEST_FIRMWARE_DIR}/{profile.firmware_path}", bad)
    w.add_file(f"{GUEST_FIRMWARE_DIR}/{GOOD_SUBDIR}/{profile.firmware_path}", good)
    with cache.atomic_file(out) as tmp:
        tmp.write_bytes(w.to_bytes())
    _prune(out.parent, "firmware-corrupt-", keep=out)
    return out


def _prune(directory: Path, prefix: str, keep: Path, max_kept: int = 24) -> None:
    """One generated layer per profile is normal; only drop the oldest beyond that."""
    old = sorted((p for p in directory.glob(prefix + "*.cpio") if p != keep),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for p in old[max_kept - 1:]:
        p.unlink(missing_ok=True)
