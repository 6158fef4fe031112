"""Guest assets from Debian sid arm64, fetched by package name: kernel, modules, busybox,
firmware.  Each package is unpacked once into the cache under its exact version.

With `kernel=`/`modules=` (`mali-vdev boot --kernel IMAGE --modules DIR`) the user's own
kernel Image and modules replace Debian's; busybox and the firmware still come from Debian.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from qemu import cache, debian, kmodules

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
    modules_digest: str = ""                # user modules: digest of the files' names/sizes/times

    def inputs(self) -> dict:
        out = {"kernel_version": self.kernel_version, "packages": self.packages}
        if self.modules_digest:
            out["modules_digest"] = self.modules_digest
        return out


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


def modules_digest(modules_dir: Path) -> str:
    """Cheap identity of a module tree: every module's path, size and mtime."""
    h = hashlib.sha256()
    for name, path in sorted(kmodules.index(modules_dir).items()):
        st = path.stat()
        h.update(f"{name}\0{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def user_kernel(kernel: Path, modules: Path) -> tuple[Path, Path, str]:
    """Check a user's kernel Image and modules dir; returns (kernel, modules, release)."""
    kernel, modules = Path(kernel).resolve(), Path(modules).resolve()
    if not kernel.is_file():
        raise RuntimeError(f"--kernel {kernel}: no such file")
    if not modules.is_dir():
        raise RuntimeError(f"--modules {modules}: no such directory")
    release = kmodules.kernel_release(modules)
    return kernel, modules, release


def fetch_assets(apt: debian.AptRoot | None = None, update: bool = True,
                 kernel: Path | None = None, modules: Path | None = None) -> GuestAssets:
    apt = apt or debian.AptRoot.default()
    if (kernel is None) != (modules is None):
        raise RuntimeError("--kernel and --modules go together (the modules must match the kernel)")
    if update:
        apt.ensure_updated()
    if kernel is not None:
        return _user_kernel_assets(apt, kernel, modules)
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
    busybox, firmware = _userland_paths(trees)
    assets = GuestAssets(
        kernel_version=modules.name, kernel=kernel, modules_dir=modules, busybox=busybox,
        firmware_dir=firmware, packages={p.name: p.version for p in kpkgs + other})
    cache.update_manifest("guest", {**assets.inputs(), "kernel": str(kernel),
                                    "mirror": apt.mirror})
    return assets


def _userland_paths(trees: dict[str, Path]) -> tuple[Path, Path]:
    """busybox and the firmware tree inside the unpacked packages (merged /usr or not)."""
    busybox = trees[BUSYBOX] / "bin/busybox"
    if not busybox.exists():
        busybox = trees[BUSYBOX] / "usr/bin/busybox"
    firmware = trees[FIRMWARE] / "lib/firmware"
    if not firmware.exists():
        firmware = trees[FIRMWARE] / "usr/lib/firmware"
    return busybox, firmware


def _fetch_userland(apt: debian.AptRoot) -> tuple[Path, Path, dict[str, str]]:
    """busybox and the firmware tree from Debian (for a user's own kernel)."""
    other = [apt.package(BUSYBOX), apt.package(FIRMWARE)]
    debs = apt.download(other)
    trees = {p.name: unpacked(apt, p, debs[p.name]) for p in other}
    busybox, firmware = _userland_paths(trees)
    return busybox, firmware, {p.name: p.version for p in other}


def _user_kernel_assets(apt: debian.AptRoot, kernel: Path, modules: Path) -> GuestAssets:
    kernel, modules, release = user_kernel(kernel, modules)
    busybox, firmware, packages = _fetch_userland(apt)
    cache.step(f"using the kernel {kernel} and its modules {modules} (release {release})")
    return GuestAssets(kernel_version=release, kernel=kernel, modules_dir=modules,
                       busybox=busybox, firmware_dir=firmware, packages=packages,
                       modules_digest=modules_digest(modules))
