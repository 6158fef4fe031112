"""`mali-vdev boot|shell --gdb [PORT] [--gdb-wait]`: QEMU's gdbstub on the guest kernel.

The stub listens on the loopback address only. `--gdb-wait` starts QEMU paused (`-S`): the
kernel runs once gdb continues. The symbols: a kernel of `mali-vdev kernel build` has its
own `vmlinux` in its build directory; for Debian's kernel the matching
`linux-image-<release>-dbg` package is fetched by name (once, cached: it is large) when
Debian has it. KASLR is turned off (`nokaslr`) so the symbols' addresses are the kernel's.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from qemu import cache, debian

DEFAULT_PORT = 1234
HOST = "127.0.0.1"


def qemu_args(port: int, wait: bool) -> list[str]:
    return ["-gdb", f"tcp:{HOST}:{port}", *(["-S"] if wait else [])]


def built_vmlinux(kernel: Path) -> Path | None:
    """The vmlinux beside an Image of `mali-vdev kernel build` (entry/Image, entry/out)."""
    v = Path(kernel).resolve().parent / "out" / "vmlinux"
    return v if v.is_file() else None


def debian_vmlinux(release: str, apt: debian.AptRoot | None = None) -> Path | None:
    """vmlinux with debug info from Debian's linux-image-<release>-dbg (only that file is
    unpacked: the package also holds every module's debug info, gigabytes), or None if
    Debian has no such package."""
    apt = apt or debian.AptRoot.default()
    name = f"linux-image-{release}-dbg"
    out = cache.cache_root() / "vmlinux" / f"vmlinux-{release}"
    if out.is_file():
        return out
    try:
        pkg = apt.package(name)
    except KeyError:
        cache.step(f"Debian has no {name}: gdb gets no symbols for this kernel")
        return None
    cache.step(f"fetching {name} {pkg.version} for gdb's symbols (large; once)")
    deb = apt.download([pkg])[pkg.name]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".vmlinux.", dir=out.parent) as t:
        tmp = Path(t)
        tar = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -x -C '{tmp}' --wildcards "
                             f"'./usr/lib/debug/boot/vmlinux-*' './usr/lib/debug/lib/modules/*/vmlinux'",
                             shell=True, capture_output=True, text=True)
        # boot/vmlinux-* is a symlink to the modules tree's file in newer packages
        found = [p for p in sorted(tmp.glob("usr/lib/debug/**/vmlinux*"))
                 if p.is_file() and not p.is_symlink()]
        if not found:
            cache.step(f"{name} holds no vmlinux ({tar.stderr.strip()[:200]}): no symbols")
            return None
        os.replace(found[0], out)
    return out


def symbols(kernel: Path, release: str, debian_kernel: bool) -> Path | None:
    if not debian_kernel:
        return built_vmlinux(kernel)
    return debian_vmlinux(release)


def command_line(port: int, vmlinux: Path | None) -> str:
    return (f"gdb-multiarch {vmlinux or ''} -ex 'target remote {HOST}:{port}'").replace("  ", " ")
