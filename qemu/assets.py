"""Guest assets from Debian sid arm64, fetched by package name: kernel, modules, busybox,
firmware.  Each package is unpacked once into the cache under its exact version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from qemu import cache, debian

KERNEL_META = "linux-image-arm64"
BUSYBOX = "busybox-static"
FIRMWARE = "firmware-misc-nonfree"


@dataclass
class GuestAssets:
    kernel_version: str                     # uname -r, e.g. 7.2.13+deb14-arm64
    kernel: Path                            # uncompressed arm64 Image
    modules_dir: Path                       # .../lib/modules/<kernel_version> (no modules.dep)
    busybox: Path
    firmware_dir: Path                      # .../lib/firmware
    packages: dict[str, str]                # package name -> version used

    def inputs(self) -> dict:
        return {"kernel_version": self.kernel_version, "packages": self.packages}


def unpacked(apt: debian.AptRoot, pkg: debian.Package, deb: Path) -> Path:
    """The package's files, extracted under the cache once per exact version."""
    dest = cache.cache_root() / "unpacked" / f"{pkg.name}_{pkg.version.replace(':', '%3a')}"
    if not dest.exists():
        cache.step(f"unpacking {deb.name}")
        with cache.atomic_dir(dest) as tmp:
            debian.extract_deb(deb, tmp)
    return dest


def kernel_packages(apt: debian.AptRoot) -> list[debian.Package]:
    """Follow the metapackage to the versioned image and the packages holding its files.

    In 2026 sid `linux-image-<ver>` depends on `linux-binary-<ver>` (vmlinuz) and
    `linux-modules-<ver>`; older layouts kept everything in the image package itself, so
    the image package is included too and the files are searched for in all of them.
    """
    image = next((alts[0] for alts in apt.depends(KERNEL_META)
                  if re.match(r"linux-image-\d", alts[0])), None)
    if image is None:
        raise RuntimeError(f"{KERNEL_META} does not depend on a versioned linux-image-*")
    names = [image] + [alts[0] for alts in apt.depends(image)
                       if re.match(r"linux-(binary|modules)-\d", alts[0])]
    return [apt.package(n) for n in names]


def fetch_assets(apt: debian.AptRoot | None = None, update: bool = True) -> GuestAssets:
    apt = apt or debian.AptRoot.default()
    if update:
        apt.ensure_updated()
    kpkgs = kernel_packages(apt)
    other = [apt.package(BUSYBOX), apt.package(FIRMWARE)]
    debs = apt.download(kpkgs + other)
    trees = {p.name: unpacked(apt, p, debs[p.name]) for p in kpkgs + other}

    kernel = modules = None
    for p in kpkgs:  # files moved between packages and from / to /usr over time
        tree = trees[p.name]
        for pattern in ("boot/vmlinuz-*", "usr/lib/modules/*/vmlinuz", "lib/modules/*/vmlinuz"):
            kernel = kernel or next(iter(sorted(tree.glob(pattern))), None)
        for pattern in ("usr/lib/modules/*/kernel", "lib/modules/*/kernel"):
            modules = modules or next((k.parent for k in sorted(tree.glob(pattern))), None)
    if kernel is None or modules is None:
        raise RuntimeError(f"kernel Image or modules not found in {[p.name for p in kpkgs]}")
    busybox = trees[BUSYBOX] / "bin/busybox"
    if not busybox.exists():
        busybox = trees[BUSYBOX] / "usr/bin/busybox"
    firmware = trees[FIRMWARE] / "lib/firmware"
    if not firmware.exists():
        firmware = trees[FIRMWARE] / "usr/lib/firmware"
    assets = GuestAssets(
        kernel_version=modules.name, kernel=kernel, modules_dir=modules, busybox=busybox,
        firmware_dir=firmware, packages={p.name: p.version for p in kpkgs + other})
    cache.update_manifest("guest", {**assets.inputs(), "kernel": str(kernel),
                                    "mirror": apt.mirror})
    return assets
