"""Kernel module dependency closure for the initramfs.

Debian's linux-modules package ships no modules.dep (depmod runs at install time), so the
dependencies are read from each module's own `.modinfo` ELF section (`depends=a,b`, read
with pyelftools), which is what depmod itself uses.  Modules are `.ko.xz`; busybox insmod needs them
decompressed, so `closure()` returns them in load order ready to be written out raw.

A user's own kernel (`mali-vdev boot --kernel IMAGE --modules DIR`) brings its modules as
a `lib/modules/<release>` tree or as a flat directory of `.ko`/`.ko.xz`/`.ko.gz` files;
`index()` accepts both, and `kernel_release()` reads the release the modules were built
for from panthor's `vermagic`, which is what `uname -r` prints in the guest.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

# Panthor and what it needs, in the order they must be loaded (deps first are computed).
PANTHOR_MODULES = ("drm", "gpu-sched", "drm_exec", "drm_gpuvm", "panthor")
# Tyr needs DRM built in; what else it uses comes from its .modinfo.
TYR_MODULES = ("tyr",)
# The guest's GPU drivers (`mali-vdev boot --driver`), by platform-driver name.
DRIVERS = {"panthor": PANTHOR_MODULES, "tyr": TYR_MODULES}
DEFAULT_DRIVER = "panthor"
# Of those, the ones a kernel may have built in (=y): missing files are then not an error.
BUILTIN_OK = ("drm", "gpu-sched", "drm_exec", "drm_gpuvm")
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")

def canonical(name: str) -> str:
    """Module names treat '-' and '_' alike (gpu-sched.ko is module gpu_sched)."""
    return name.replace("-", "_")


def module_name(filename: str) -> str | None:
    """`gpu-sched.ko.xz` -> `gpu_sched`; None for a file that is not a module."""
    for suffix in MODULE_SUFFIXES:
        if filename.endswith(suffix):
            return canonical(filename[:-len(suffix)])
    return None


def read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        raise RuntimeError(f"{path}: zstd-compressed modules are not supported; "
                           f"decompress them first (zstd -d) or build with xz/gzip")
    return data


def modinfo(elf: bytes) -> dict[str, str]:
    """key=value strings of the `.modinfo` section of a module (pyelftools reads the ELF)."""
    try:
        section = ELFFile(io.BytesIO(elf)).get_section_by_name(".modinfo")
        data = section.data() if section is not None else b""
    except (ELFError, ValueError, OSError) as e:
        raise ValueError(f"not an ELF module: {e}") from None
    info: dict[str, str] = {}
    for entry in data.split(b"\0"):
        k, sep, v = entry.decode(errors="replace").partition("=")
        if sep:
            info.setdefault(k, v)
    return info


def index(modules_dir: Path) -> dict[str, Path]:
    """Module name -> file, for every module below `modules_dir` (a `lib/modules/<ver>`
    tree or any directory of modules; symlinked directories such as `build` are not
    followed).  The first file in sorted path order wins for a duplicated name."""
    out: dict[str, Path] = {}
    for root, dirs, files in os.walk(modules_dir):
        dirs.sort()
        for f in sorted(files):
            name = module_name(f)
            if name is not None:
                out.setdefault(name, Path(root) / f)
    return out


def kernel_release(modules_dir: Path, module: str = "panthor") -> str:
    """The kernel release `module` was built for (first word of its vermagic)."""
    idx = index(modules_dir)
    name = canonical(module)
    if name not in idx:
        raise RuntimeError(f"no {module}.ko below {modules_dir}")
    vermagic = modinfo(read_module(idx[name])).get("vermagic", "").split()
    if not vermagic:
        raise RuntimeError(f"{idx[name]} has no vermagic in its .modinfo")
    return vermagic[0]


def closure(modules_dir: Path, wanted=PANTHOR_MODULES,
            builtin_ok=BUILTIN_OK) -> list[tuple[str, Path, bytes]]:
    """(name, source file, decompressed bytes) for `wanted` and their deps, deps first.

    A name of `wanted` that is also in `builtin_ok` may be missing (built into the
    kernel); dependencies named by a module's `.modinfo` must exist."""
    idx = index(modules_dir)
    order: list[tuple[str, Path, bytes]] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        name = canonical(name)
        if name in done:
            return
        if name in chain:
            raise RuntimeError(f"module dependency cycle: {' -> '.join(chain + (name,))}")
        if name not in idx:
            raise RuntimeError(f"module {name} not found below {modules_dir}")
        data = read_module(idx[name])
        for dep in filter(None, modinfo(data).get("depends", "").split(",")):
            visit(dep, chain + (name,))
        done.add(name)
        order.append((name, idx[name], data))

    optional = {canonical(n) for n in builtin_ok}
    for w in wanted:
        if canonical(w) in optional and canonical(w) not in idx:
            continue
        visit(w, ())
    return order
