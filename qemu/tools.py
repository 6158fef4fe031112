"""Guest tools built on the host: `panthor-client`, cross-compiled for arm64.

The source lives in `qemu/guest_tools/`.  It is compiled statically with Debian's
cross compiler (host packages `gcc-aarch64-linux-gnu` and `libc6-dev-arm64-cross`), so
it runs in the busybox guest without any shared library.  The binary is cached under
`<cache>/guest-tools/` keyed by the hash of the source, the compiler version and the
flags; `tools_archive()` wraps it in a small cached cpio that is appended to the boot
initramfs, installing it as `/usr/bin/panthor-client`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from qemu import cache
from qemu.cpio import CpioWriter

SOURCE_DIR = Path(__file__).with_name("guest_tools")
CLIENT_SOURCE = SOURCE_DIR / "panthor_client.c"
CLIENT_GUEST_PATH = "usr/bin/panthor-client"
CROSS_CC_ENV = "MALI_VDEV_CROSS_CC"
CROSS_CC = "aarch64-linux-gnu-gcc"
CFLAGS = ("-static", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-s")
# What to tell users when the compiler is missing (also listed by scripts/install-deps).
HOST_PACKAGES = ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross")


class ToolBuildError(RuntimeError):
    pass


def cross_compiler() -> str | None:
    """`$MALI_VDEV_CROSS_CC`, else aarch64-linux-gnu-gcc from PATH; None if absent."""
    cc = os.environ.get(CROSS_CC_ENV) or CROSS_CC
    return shutil.which(cc)


def _compiler_id(cc: str) -> str:
    r = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60)
    return r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else cc


def build_client(source: Path = CLIENT_SOURCE) -> Path:
    """The cached static arm64 panthor-client, compiled now if its inputs changed."""
    cc = cross_compiler()
    if cc is None:
        raise ToolBuildError(
            f"cannot build panthor-client: no {CROSS_CC} on PATH (install the Debian "
            f"packages {' '.join(HOST_PACKAGES)}, e.g. with scripts/install-deps, or set "
            f"{CROSS_CC_ENV})")
    src = source.read_bytes()
    key = cache.key_of(hashlib.sha256(src).hexdigest(), _compiler_id(cc), CFLAGS)
    out = cache.cache_root() / "guest-tools" / f"panthor-client-{key}"
    if out.exists():
        return out
    cache.step(f"cross-compiling {source.name} for arm64 ({Path(cc).name}, static)")
    with cache.atomic_file(out) as tmp:
        r = subprocess.run([cc, *CFLAGS, "-o", str(tmp), str(source)],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise ToolBuildError(f"{cc} failed on {source}:\n{r.stdout}{r.stderr}")
        head = tmp.read_bytes()[:20]
        # ELF64, little endian, e_machine 183 = AArch64
        if head[:4] != b"\x7fELF" or head[4] != 2 or int.from_bytes(head[18:20], "little") != 183:
            raise ToolBuildError(f"{cc} did not produce an arm64 ELF64 executable")
        tmp.chmod(0o755)
    _prune(out.parent, "panthor-client-", keep=out)
    return out


def tools_archive() -> Path:
    """A cached newc archive holding /usr/bin/panthor-client."""
    binary = build_client()
    data = binary.read_bytes()
    key = cache.key_of(hashlib.sha256(data).hexdigest(), CLIENT_GUEST_PATH)
    out = cache.cache_root() / "initramfs" / f"tools-{key}.cpio"
    if out.exists():
        return out
    w = CpioWriter()
    w.add_file(CLIENT_GUEST_PATH, data, 0o755)
    with cache.atomic_file(out) as tmp:
        tmp.write_bytes(w.to_bytes())
    _prune(out.parent, "tools-", keep=out)
    return out


def _prune(directory: Path, prefix: str, keep: Path, max_kept: int = 3) -> None:
    old = sorted((p for p in directory.glob(prefix + "*") if p != keep and not
                  p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in old[max_kept - 1:]:
        p.unlink(missing_ok=True)
