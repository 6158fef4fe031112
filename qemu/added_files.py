"""`mali-vdev boot --add HOST_PATH:GUEST_PATH`: the user's files and trees as one initramfs
layer, modes and symlinks kept, and how much guest RAM the initramfs needs.

The guest's root is the initramfs itself (no disk): the kernel unpacks the archive into
rootfs, a tmpfs capped at half of the RAM left beside the kernel and the archive itself, and
the files stay. So the RAM a boot needs follows from the size of what it carries: three
times the archive (archive + twice the files for the tmpfs cap) plus the rest.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from qemu import cache
from qemu.cpio import CpioWriter
from qemu.initramfs import MERGED_DIRS

MIB = 1 << 20
MIN_MEMORY_MB = 1024
# The kernel, busybox, page cache and the guest's own processes, beyond the initramfs.
BASE_MEMORY_MB = 384
MEMORY_STEP_MB = 256


def parse_spec(spec: str) -> tuple[Path, str]:
    """`HOST_PATH:GUEST_PATH` -> (host path, guest path below / without the leading /)."""
    host, sep, guest = spec.rpartition(":")
    if not sep or not host or not guest.startswith("/"):
        raise ValueError(f"--add {spec!r}: expected HOST_PATH:/GUEST/PATH")
    src = Path(host).expanduser()
    if not (src.is_file() or src.is_dir()) or src.is_symlink() and not src.exists():
        raise ValueError(f"--add {spec!r}: no file or directory {src}")
    rel = guest.strip("/")
    if not rel or ".." in Path(rel).parts:
        raise ValueError(f"--add {spec!r}: the guest path must name a place below /")
    return src.resolve(), merged(rel)


def merged(rel: str) -> str:
    """bin/x -> usr/bin/x: the initramfs's bin, sbin and lib are symlinks into usr/, and an
    appended archive holding them as directories would replace the links."""
    top, _, rest = rel.partition("/")
    return f"{MERGED_DIRS[top]}/{rest}".rstrip("/") if top in MERGED_DIRS else rel


def _digest(specs: list[tuple[Path, str]]) -> str:
    parts = []
    for src, dest in specs:
        paths = [src] + (sorted(src.rglob("*")) if src.is_dir() else [])
        for p in paths:
            st = p.lstat()
            parts.append((str(p), dest, st.st_size, st.st_mtime_ns, st.st_mode))
    return cache.key_of(parts, cache.file_digest(Path(__file__)))


def added_archive(specs: list[str]) -> Path | None:
    """The cpio layer of `--add` specs (cached by the files' names, sizes, times, modes)."""
    if not specs:
        return None
    pairs = [parse_spec(s) for s in specs]
    out = cache.cache_root() / "initramfs" / f"added-{_digest(pairs)}.cpio"
    if out.exists():
        return out
    w = CpioWriter()
    for src, dest in pairs:     # the writer adds the parents (the kernel creates none)
        if src.is_dir():
            w.add_tree(src, dest)
        else:
            w.add_file(dest, src.read_bytes(), stat.S_IMODE(os.stat(src).st_mode))
    with cache.atomic_file(out) as tmp:
        with open(tmp, "wb") as f:
            w.write(f)
    cache.prune(out.parent, "added-*.cpio", keep=out, max_kept=4)
    cache.step(f"added files: {out} ({out.stat().st_size / MIB:.1f} MiB)")
    return out


def memory_needed_mb(initrd_bytes: int) -> int:
    """Guest RAM for an initramfs of this size: the archive, plus twice its files (rootfs's
    tmpfs may fill half of what is left), plus the rest."""
    return BASE_MEMORY_MB + -(-3 * initrd_bytes // MIB)


def guest_memory_mb(initrd_bytes: int, requested: int | None = None) -> int:
    """`--memory`, checked against what the initramfs needs; by default enough for it."""
    need = memory_needed_mb(initrd_bytes)
    if requested is not None:
        if requested < need:
            raise ValueError(
                f"the guest's initramfs is {initrd_bytes / MIB:.0f} MiB, which needs at least "
                f"{need} MiB of guest RAM to unpack and keep; --memory {requested} is too "
                f"small: pass --memory {need} or more")
        return requested
    return max(MIN_MEMORY_MB, -(-need // MEMORY_STEP_MB) * MEMORY_STEP_MB)
