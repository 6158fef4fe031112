"""Guest tools built on the host: `panthor-client` and `mesa-cases`, cross-compiled for arm64.

The sources live in `qemu/guest_tools/`.  panthor-client is compiled statically with
Debian's cross compiler (host packages `gcc-aarch64-linux-gnu` and `libc6-dev-arm64-cross`),
so it runs in the busybox guest without any shared library.  mesa-cases (the Mesa guest
tests' program) is linked dynamically against the guest's glibc, which Debian's Mesa brings
(`--guest-packages`), and opens libvulkan/libEGL/libGLESv2 with dlopen: it needs only their
headers, taken from the sid arm64 packages of the guest's own Mesa stack, and its SPIR-V is
compiled at build time by the host's glslangValidator (`glslang-tools`).  Binaries are
cached under `<cache>/guest-tools/` keyed by the hash of every input; `tools_archive()`
and `mesa_tools_archive()` wrap them in small cached cpios appended to the boot initramfs
(`/usr/bin/...`); boot.setup() adds mesa-cases when the guest packages name Mesa's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
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

MESA_SOURCE = SOURCE_DIR / "mesa_cases.c"
MESA_SHADERS = SOURCE_DIR / "mesa_shaders"
MESA_GUEST_PATH = "usr/bin/mesa-cases"
MESA_CFLAGS = ("-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-s")
MESA_LIBS = ("-ldl",)
GLSLANG = "glslangValidator"
GLSLANG_PACKAGE = "glslang-tools"
SPIRV_TARGET = ("--target-env", "vulkan1.1")
# Headers only (Vulkan, EGL, GLES 3.1, KHR): sid arm64 packages, unpacked, never installed.
HEADER_PACKAGES = ("libvulkan-dev", "libegl-dev", "libgles-dev", "libgl-dev")


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
        _cross_compile(cc, [cc, *CFLAGS, "-o", str(tmp), str(source)], source, tmp)
    _prune(out.parent, "panthor-client-", keep=out)
    return out


def _glslang() -> str:
    glslang = shutil.which(GLSLANG)
    if glslang is None:
        raise ToolBuildError(f"cannot build mesa-cases: no {GLSLANG} on PATH (install the "
                             f"Debian package {GLSLANG_PACKAGE}, e.g. with scripts/install-deps)")
    return glslang


def _spirv_headers(out_dir: Path) -> list[Path]:
    """Each mesa_shaders/NAME.comp as SPIR-V in out_dir/spv_NAME.h (`uint32_t spv_NAME[]`)."""
    glslang = _glslang()
    made = []
    for src in sorted(MESA_SHADERS.glob("*.comp")):
        header = out_dir / f"spv_{src.stem}.h"
        r = subprocess.run([glslang, "-V", *SPIRV_TARGET, "--vn", f"spv_{src.stem}", "-o",
                            str(header), str(src)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise ToolBuildError(f"{GLSLANG} failed on {src}:\n{r.stdout}{r.stderr}")
        made.append(header)
    return made


def _header_trees(apt=None) -> tuple[list[Path], list[str]]:
    """The include dirs of HEADER_PACKAGES (sid arm64, unpacked in the cache) and their
    name=version, fetched on first use."""
    from qemu import debian
    from qemu.assets import unpacked
    apt = apt or debian.AptRoot.default()
    if not lists_present(apt):
        apt.ensure_updated()
    pkgs = [apt.package(n) for n in HEADER_PACKAGES]
    debs = apt.download(pkgs)
    return ([unpacked(apt, p, debs[p.name]) / "usr/include" for p in pkgs],
            [f"{p.name}={p.version}" for p in pkgs])


def lists_present(apt) -> bool:
    """Whether the apt root has package lists (a boot refreshes them; a build needs none)."""
    return (apt.root / "updated.stamp").exists()


def _tool_id(program: str) -> str:
    r = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60)
    return " ".join(r.stdout.splitlines()[:1]) if r.returncode == 0 else program


def build_mesa_cases(apt=None) -> Path:
    """The cached arm64 mesa-cases (dynamically linked; dlopens Mesa), built if its inputs
    changed: the C source, the shaders, the compilers, the header packages' versions."""
    cc = cross_compiler()
    if cc is None:
        raise ToolBuildError(f"cannot build mesa-cases: no {CROSS_CC} on PATH (install "
                             f"{' '.join(HOST_PACKAGES)}, e.g. with scripts/install-deps)")
    glslang = _glslang()
    includes, versions = _header_trees(apt)
    sources = [MESA_SOURCE, *sorted(MESA_SHADERS.glob("*.comp"))]
    key = cache.key_of([(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in sources],
                       _compiler_id(cc), _tool_id(glslang), versions, MESA_CFLAGS, SPIRV_TARGET)
    out = cache.cache_root() / "guest-tools" / f"mesa-cases-{key}"
    if out.exists():
        return out
    cache.step(f"building mesa-cases for arm64: {len(sources) - 1} shaders to SPIR-V "
               f"({GLSLANG}), {MESA_SOURCE.name} ({Path(cc).name}, headers of "
               f"{', '.join(versions)})")
    with tempfile.TemporaryDirectory() as spv_dir, cache.atomic_file(out) as tmp:
        _spirv_headers(Path(spv_dir))
        _cross_compile(cc, [cc, *MESA_CFLAGS, "-I", spv_dir, *(f"-I{d}" for d in includes),
                            "-o", str(tmp), str(MESA_SOURCE), *MESA_LIBS], MESA_SOURCE, tmp)
    _prune(out.parent, "mesa-cases-", keep=out)
    return out


def _cross_compile(cc: str, argv: list[str], source: Path, out: Path) -> None:
    """Run the cross compiler; `out` must come out an arm64 executable."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise ToolBuildError(f"{cc} failed on {source}:\n{r.stdout}{r.stderr}")
    _check_arm64(out, cc)
    out.chmod(0o755)


def _check_arm64(path: Path, cc: str) -> None:
    head = path.read_bytes()[:20]
    # ELF64, little endian, e_machine 183 = AArch64
    if head[:4] != b"\x7fELF" or head[4] != 2 or int.from_bytes(head[18:20], "little") != 183:
        raise ToolBuildError(f"{cc} did not produce an arm64 ELF64 executable")


def tools_archive() -> Path:
    """A cached newc archive holding /usr/bin/panthor-client."""
    return _archive("tools-", {CLIENT_GUEST_PATH: build_client().read_bytes()})


def mesa_tools_archive() -> Path:
    """A cached newc archive holding /usr/bin/mesa-cases (boots with Debian's Mesa)."""
    return _archive("mesa-tools-", {MESA_GUEST_PATH: build_mesa_cases().read_bytes()})


def _archive(prefix: str, files: dict[str, bytes]) -> Path:
    key = cache.key_of(sorted((path, hashlib.sha256(data).hexdigest())
                              for path, data in files.items()))
    out = cache.cache_root() / "initramfs" / f"{prefix}{key}.cpio"
    if out.exists():
        return out
    w = CpioWriter()
    for path, data in files.items():
        w.add_file(path, data, 0o755)
    with cache.atomic_file(out) as tmp:
        tmp.write_bytes(w.to_bytes())
    _prune(out.parent, prefix, keep=out)
    return out


def _prune(directory: Path, prefix: str, keep: Path, max_kept: int = 3) -> None:
    old = sorted((p for p in directory.glob(prefix + "*") if p != keep and not
                  p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in old[max_kept - 1:]:
        p.unlink(missing_ok=True)
