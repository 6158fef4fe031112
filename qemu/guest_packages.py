"""Extra Debian arm64 packages in the guest (`mali-vdev boot --guest-packages PKG,...`).

The names are resolved with their dependencies by apt's own solver against the private
sid/arm64 apt root (an empty system, no recommends), downloaded into the cache, unpacked
once per exact version, and written into one cached cpio appended to the boot initramfs,
so users can run their own user-space tools against the GPU.

Only the packages' files are installed: no maintainer scripts run, so alternatives,
users, ld.so.cache and triggers are not set up.  Files under a top-level `bin/`, `sbin/`
or `lib/` are moved below `usr/` (those are symlinks in the merged-/usr guest), and
documentation, man pages and translations are left out, and so are the files of
`EXCLUDED` (Mesa's Vulkan drivers for GPUs a guest with a Mali cannot have: about 135 MiB
of the 290 MiB Mesa needs).
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from pathlib import Path

from qemu import cache, debian
from qemu.assets import unpacked
from qemu.cpio import CpioWriter
from qemu.initramfs import MERGED_DIRS

# Left out of the guest: large and useless without a pager or locales.
SKIP_PREFIXES = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/",
                 "usr/share/lintian/", "usr/share/bug/")
# Mesa's Vulkan drivers for other GPUs (mesa-vulkan-drivers ships them all in one package);
# panfrost (panvk) and lvp (lavapipe, the CPU oracle of the guest tests) stay.
OTHER_GPU_VULKAN = ("asahi", "broadcom", "freedreno", "gfxstream", "imagination", "intel",
                    "intel_hasvk", "nouveau", "powervr_mesa", "radeon", "virtio")
# Files left out of the guest (fnmatch patterns on the guest path): a driver and its ICD
# manifest go together, or the Vulkan loader complains about the missing library.
EXCLUDED = tuple(pattern for name in OTHER_GPU_VULKAN for pattern in (
    f"usr/lib/*/libvulkan_{name}.so", f"usr/share/vulkan/icd.d/{name}_icd.json",
    f"usr/share/vulkan/icd.d/{name}_vk_icd.json"))
# What Debian's Mesa needs in the guest: panvk and lavapipe (Vulkan, through the loader),
# panfrost and llvmpipe (GLES through libglvnd's EGL, surfaceless), as the guest tests use it.
MESA_PACKAGES = ("mesa-vulkan-drivers", "libvulkan1", "libegl-mesa0", "libegl1", "libgles2",
                 "libgbm1")
LARGE_ARCHIVE_MB = 256


def parse_names(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """`"a,b c"` or `["a", "b,c"]` -> `["a", "b", "c"]` (order kept, duplicates dropped)."""
    if not spec:
        return []
    parts = [spec] if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for part in parts:
        for n in part.replace(",", " ").split():
            if n not in names:
                names.append(n)
    return names


def guest_path(rel: str) -> str | None:
    """Where a package file goes in the guest (None: left out)."""
    top, _, rest = rel.partition("/")
    if top in MERGED_DIRS:
        rel = f"{MERGED_DIRS[top]}/{rest}" if rest else MERGED_DIRS[top]
    if any(rel.startswith(p) or rel + "/" == p for p in SKIP_PREFIXES):
        return None
    if any(fnmatch.fnmatchcase(rel, p) for p in EXCLUDED):
        return None
    return rel


def add_package_tree(w: CpioWriter, tree: Path) -> int:
    """Add one unpacked package; returns the number of bytes of file data added."""
    size = 0
    for root, dirs, files in os.walk(tree):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            p = Path(root) / name
            rel = guest_path(p.relative_to(tree).as_posix())
            # `usr/bin` & co. exist in the base; a package's own `bin -> usr/bin` symlink
            # (base-files ships them) must not replace them.
            if rel is None or rel in MERGED_DIRS.values():
                continue
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                w.add_symlink(rel, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                w.add_dir(rel, st.st_mode & 0o7777)
            elif stat.S_ISREG(st.st_mode):
                data = p.read_bytes()
                size += len(data)
                w.add_file(rel, data, st.st_mode & 0o7777)
    return size


def packages_archive(names: list[str], apt: debian.AptRoot | None = None) -> Path | None:
    """The cached cpio of `names` and their dependencies (None if `names` is empty)."""
    names = parse_names(names)
    if not names:
        return None
    apt = apt or debian.AptRoot.default()
    apt.ensure_updated()
    t0 = time.monotonic()
    try:
        pkgs, cached = apt.resolve_cached(names)
    except RuntimeError as e:
        raise RuntimeError(f"cannot resolve --guest-packages {','.join(names)} in Debian "
                           f"{apt.suite}/{apt.arch}: {e}") from None
    if not pkgs:
        raise RuntimeError(f"apt selected nothing to install for {names}")
    cache.step(f"guest packages {', '.join(names)}: {len(pkgs)} with dependencies, resolved "
               f"{'from the cache' if cached else 'by apt'} in {time.monotonic() - t0:.2f} s")
    key = cache.key_of(sorted((p.name, p.version, p.arch) for p in pkgs),
                       cache.file_digest(Path(__file__)))
    out = cache.cache_root() / "initramfs" / f"packages-{key}.cpio"
    if out.exists():
        return out
    cache.step(f"{len(pkgs)} packages with dependencies: "
               + " ".join(f"{p.name}={p.version}" for p in pkgs))
    debs = apt.download(pkgs)
    w = CpioWriter()
    total = 0
    for i, p in enumerate(pkgs, 1):
        tree = unpacked(apt, p, debs[p.name])
        total += add_package_tree(w, tree)
        if i % 10 == 0 or i == len(pkgs):
            cache.step(f"guest packages: {i}/{len(pkgs)} added ({total >> 20} MiB)")
    with cache.atomic_file(out) as tmp:
        with open(tmp, "wb") as f:
            w.write(f)
    mb = out.stat().st_size >> 20
    cache.step(f"guest packages archive ready: {out} ({mb} MiB)"
               + ("; warning: large archives slow the boot and use guest RAM"
                  if mb > LARGE_ARCHIVE_MB else ""))
    cache.prune(out.parent, "packages-*.cpio", keep=out, max_kept=4)
    return out
