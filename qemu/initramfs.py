"""The guest initramfs: busybox, our /init and the GPU drivers' modules, plus appended layers.

The base archive depends only on the kernel's modules, busybox and /init, so it is built
once per set of inputs and cached.  Everything else is a separate archive appended per
boot (the kernel unpacks concatenated cpio archives in order, later files replacing
earlier ones): the Mali firmware of the chosen kind (`qemu/firmware.py`), the guest tools
(`qemu/tools.py`), extra Debian packages (`qemu/guest_packages.py`) and a tiny archive
holding the guest command, so no quoting or command-line length limits apply to it and
no cached archive is rebuilt for it.

The layout is Debian's merged /usr: `bin`, `sbin` and `lib` are symlinks into `usr/`, so
unpacked Debian packages land where their ELF interpreters and library paths expect.
Archives appended later must therefore never contain `bin/`, `sbin/` or `lib/` as
directories (the kernel would replace the symlink): write below `usr/` instead.
"""

from __future__ import annotations

from pathlib import Path

from qemu import cache, kmodules
from qemu.assets import GuestAssets
from qemu.cpio import CpioWriter
from qemu.share import MODULES as SHARE_MODULES

INIT_SCRIPT = Path(__file__).with_name("guest_init.sh")
DRIVER_SCRIPT = Path(__file__).with_name("guest_driver.sh")
CMD_PATH = "mali-vdev/cmd.sh"
# Top-level directories that are symlinks into usr/ (merged /usr).
MERGED_DIRS = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib"}
# Linked at build time so /init's "#!/bin/sh" works; /init installs the other applets.
CORE_APPLETS = ("sh", "mount", "mkdir", "cat", "echo", "poweroff", "insmod")


def build_base(assets: GuestAssets, drivers=kmodules.DRIVERS) -> Path:
    """The cached base initramfs (uncompressed newc) for these assets (no firmware).

    Every GPU driver of `drivers` the module tree has (panthor always; tyr on a kernel
    built with it) goes in with its dependencies, each with a `load-order.<driver>` list
    that /init and `mali-driver` (the guest's driver switch) insmod in order."""
    init = INIT_SCRIPT.read_bytes()
    helper = DRIVER_SCRIPT.read_bytes()
    key = cache.key_of(assets.inputs(), sorted(drivers.items()), init, helper, CORE_APPLETS,
                       SHARE_MODULES, cache.file_digest(Path(__file__)), "v4")
    out = cache.cache_root() / "initramfs" / f"base-{key}.cpio"
    if out.exists():
        return out
    cache.step(f"building initramfs for kernel {assets.kernel_version}")
    w = CpioWriter()
    for d in ("usr/bin", "usr/sbin", "usr/lib", "proc", "sys", "dev", "tmp", "etc", "run"):
        w.add_dir(d)
    for link, target in MERGED_DIRS.items():
        w.add_symlink(link, target)
    w.add_chardev("dev/console", 5, 1)  # the kernel opens it before /init mounts devtmpfs
    w.add_chardev("dev/null", 1, 3, 0o666)
    w.add_file("usr/bin/busybox", assets.busybox.read_bytes(), 0o755)
    for a in CORE_APPLETS:
        w.add_symlink(f"usr/bin/{a}", "busybox")
    w.add_file("init", init, 0o755)
    w.add_file("usr/bin/mali-driver", helper, 0o755)

    moddir = f"usr/lib/modules/{assets.kernel_version}"
    present = kmodules.index(assets.modules_dir)
    written: set[str] = set()

    def add_closure(list_name: str, order) -> list[str]:
        """The modules of `order` (each written once) and their load-order.<list_name>."""
        for name, _src, data in order:
            if name not in written:
                w.add_file(f"{moddir}/{name}.ko", data)
                written.add(name)
        names = [n for n, _, _ in order]
        w.add_file(f"{moddir}/load-order.{list_name}", "".join(f"{n}\n" for n in names).encode())
        return names

    loaded: dict[str, list[str]] = {}
    for driver, modules in drivers.items():
        if driver != kmodules.DEFAULT_DRIVER and kmodules.canonical(driver) not in present:
            continue  # e.g. Debian's kernel has no tyr.ko
        order = kmodules.closure(assets.modules_dir, modules)
        if not order or order[-1][0] != kmodules.canonical(modules[-1]):
            raise RuntimeError(f"{modules[-1]} not found below {assets.modules_dir}")
        loaded[driver] = add_closure(driver, order)
    # 9p for --share, where the kernel has it as modules (built in otherwise: no list)
    share = [m for m in SHARE_MODULES if kmodules.canonical(m) in present]
    if share:
        add_closure("share", kmodules.closure(assets.modules_dir, share, builtin_ok=share))
    # the name /init used before there was a choice of drivers
    w.add_file(f"{moddir}/load-order",
               "".join(f"{n}\n" for n in loaded[kmodules.DEFAULT_DRIVER]).encode())

    with cache.atomic_file(out) as tmp:
        with open(tmp, "wb") as f:
            w.write(f)
    cache.prune(out.parent, "base-*.cpio", keep=out, max_kept=3)
    cache.step(f"initramfs ready: {out} ({out.stat().st_size >> 10} KiB, drivers: "
               + "; ".join(f"{d} ({' '.join(m)})" for d, m in loaded.items()) + ")")
    return out




def command_archive(guest_cmd: str) -> bytes:
    w = CpioWriter()
    w.add_file(CMD_PATH, guest_cmd.encode() + b"\n", 0o755)
    return w.to_bytes()


def write_boot_initrd(base: Path, guest_cmd: str, dest: Path,
                      layers: list[Path] | tuple[Path, ...] = ()) -> Path:
    """base archive + `layers` (in order) + the per-boot command archive, concatenated."""
    with open(dest, "wb") as f:
        for part in (base, *layers):
            with open(part, "rb") as src:
                while chunk := src.read(1 << 20):
                    f.write(chunk)
        f.write(command_archive(guest_cmd))
    return dest
