"""The guest initramfs: busybox, our /init, panthor's modules and the Mali firmware.

The base archive depends only on the guest packages and /init, so it is built once per
set of inputs and cached.  The guest command goes into a tiny second archive appended
per boot (the kernel unpacks concatenated cpio archives in order), so no quoting or
command-line length limits apply to it and the cached base is never rebuilt for it.
"""

from __future__ import annotations

from pathlib import Path

from qemu import cache, kmodules
from qemu.assets import GuestAssets
from qemu.cpio import CpioWriter

INIT_SCRIPT = Path(__file__).with_name("guest_init.sh")
FIRMWARE_SUBDIR = "arm/mali"
CMD_PATH = "mali-vdev/cmd.sh"
# Linked at build time so /init's "#!/bin/sh" works; /init installs the other applets.
CORE_APPLETS = ("sh", "mount", "mkdir", "cat", "echo", "poweroff", "insmod")


def build_base(assets: GuestAssets, modules=kmodules.PANTHOR_MODULES) -> Path:
    """The cached base initramfs (uncompressed newc) for these assets."""
    init = INIT_SCRIPT.read_bytes()
    key = cache.key_of(assets.inputs(), tuple(modules), init, FIRMWARE_SUBDIR, CORE_APPLETS,
                       cache.file_digest(Path(__file__)), "v1")
    out = cache.cache_root() / "initramfs" / f"base-{key}.cpio"
    if out.exists():
        return out
    cache.step(f"building initramfs for kernel {assets.kernel_version}")
    w = CpioWriter()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc"):
        w.add_dir(d)
    w.add_chardev("dev/console", 5, 1)  # the kernel opens it before /init mounts devtmpfs
    w.add_chardev("dev/null", 1, 3, 0o666)
    w.add_file("bin/busybox", assets.busybox.read_bytes(), 0o755)
    for a in CORE_APPLETS:
        w.add_symlink(f"bin/{a}", "busybox")
    w.add_file("init", init, 0o755)

    moddir = f"lib/modules/{assets.kernel_version}"
    order = kmodules.closure(assets.modules_dir, modules)
    for name, _src, data in order:
        w.add_file(f"{moddir}/{name}.ko", data)
    w.add_file(f"{moddir}/load-order", "".join(f"{n}\n" for n, _, _ in order).encode())

    fw = assets.firmware_dir / FIRMWARE_SUBDIR
    if not fw.is_dir():
        raise RuntimeError(f"no {FIRMWARE_SUBDIR} firmware in {assets.firmware_dir}")
    w.add_tree(fw, f"lib/firmware/{FIRMWARE_SUBDIR}")

    with cache.atomic_file(out) as tmp:
        with open(tmp, "wb") as f:
            w.write(f)
    _prune(out.parent, keep=out)
    cache.step(f"initramfs ready: {out} ({out.stat().st_size >> 10} KiB, "
               f"modules: {' '.join(n for n, _, _ in order)})")
    return out


def _prune(directory: Path, keep: Path, max_kept: int = 3) -> None:
    """Bases for older inputs (previous kernels, older /init) are dead weight."""
    old = sorted((p for p in directory.glob("base-*.cpio") if p != keep),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for p in old[max_kept - 1:]:
        p.unlink(missing_ok=True)


def command_archive(guest_cmd: str) -> bytes:
    w = CpioWriter()
    w.add_file(CMD_PATH, guest_cmd.encode() + b"\n", 0o755)
    return w.to_bytes()


def write_boot_initrd(base: Path, guest_cmd: str, dest: Path) -> Path:
    """base archive + the per-boot command archive, concatenated."""
    with open(dest, "wb") as f:
        f.write(base.read_bytes())
        f.write(command_archive(guest_cmd))
    return dest
