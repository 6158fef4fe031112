"""Finding a qemu-system-aarch64 that has the vfio-user-pci client (QEMU >= 10.1).

Debian 12 ships QEMU 7.2, so unless the host already has a suitable QEMU we build (once,
cached) a Debian sid rootfs with mmdebstrap that contains `qemu-system-arm`.  That QEMU is
run straight from the host through the rootfs's own dynamic loader, which keeps every
path a host path; chroot into the rootfs is the fallback if that does not work.  Callers
only see a `QemuBinary`: it builds argv and maps host paths to what QEMU sees.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from qemu import cache, debian

MIN_VERSION = (10, 1)
SYSTEM_QEMU = "qemu-system-aarch64"
ROOTFS_PACKAGES = ("qemu-system-arm",)
LOADER = "lib64/ld-linux-x86-64.so.2"
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")


@dataclass
class QemuBinary:
    mode: str                     # "system", "loader" or "chroot"
    prefix: list[str]             # argv up to (and including) the QEMU program
    rootfs: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    version: str = ""

    def argv(self, *args: str) -> list[str]:
        return [*self.prefix, *args]

    def path(self, host_path: Path | str) -> str:
        """The name under which QEMU sees a host file or socket."""
        p = Path(host_path).resolve()
        if self.mode != "chroot":
            return str(p)
        try:
            return "/" + str(p.relative_to(self.rootfs))
        except ValueError:
            raise ValueError(f"{p} is outside the QEMU chroot {self.rootfs}") from None

    def stage(self, host_path: Path, scratch: Path) -> str:
        """`path()`, after linking (or copying) the file into `scratch` if QEMU could
        not otherwise see it (chroot mode)."""
        try:
            return self.path(host_path)
        except ValueError:
            dest = scratch / Path(host_path).name
            try:
                os.link(host_path, dest)
            except OSError:
                shutil.copyfile(host_path, dest)
            return self.path(dest)

    def scratch_parent(self) -> Path | None:
        """Where run directories must live so QEMU can reach them (None: anywhere)."""
        if self.mode == "chroot":
            d = self.rootfs / "tmp"
            d.mkdir(exist_ok=True)
            return d
        return None

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env={**os.environ, **self.env}, text=True,
                              capture_output=True, timeout=timeout)

    def describe(self) -> str:
        where = f" from {self.rootfs}" if self.rootfs else ""
        return f"QEMU {self.version} ({self.mode}{where})"


def parse_version(text: str) -> tuple[int, ...] | None:
    m = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(x or 0) for x in m.groups()) if m else None


def _probe(q: QemuBinary) -> bool:
    """True if this QEMU runs, is new enough and lists vfio-user-pci."""
    try:
        ver = q.run("-version")
        dev = q.run("-machine", "none", "-device", "help")
    except (OSError, subprocess.SubprocessError):
        return False
    v = parse_version(ver.stdout)
    if ver.returncode != 0 or v is None or v[:2] < MIN_VERSION:
        return False
    q.version = ".".join(map(str, v))
    return '"vfio-user-pci"' in dev.stdout


def system_qemu() -> QemuBinary | None:
    exe = shutil.which(SYSTEM_QEMU)
    if not exe:
        return None
    q = QemuBinary("system", [exe])
    return q if _probe(q) else None


def rootfs_dir() -> Path:
    return cache.cache_root() / "qemu-sid-rootfs"


def build_rootfs(root: Path | None = None) -> Path:
    """mmdebstrap a sid rootfs with QEMU into the cache (once)."""
    root = root or rootfs_dir()
    if (root / "usr/bin/qemu-system-aarch64").exists():
        return root
    if not shutil.which("mmdebstrap"):
        raise RuntimeError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    cache.clean_stale_temps(root.parent, max_age_s=0)
    mirror = debian.debian_mirror()
    log = root.parent / "logs" / "mmdebstrap.log"
    log.parent.mkdir(exist_ok=True)
    cache.step(f"building Debian sid rootfs with {', '.join(ROOTFS_PACKAGES)} from {mirror} "
               f"(~30 s, ~300 MB); log: {log}")
    with cache.atomic_dir(root) as tmp, open(log, "w") as logf:
        r = subprocess.run(
            ["mmdebstrap", "--variant=apt", "--aptopt=Acquire::Check-Valid-Until \"false\"",
             "--aptopt=Acquire::Check-Date \"false\"",
             "--include=" + ",".join(ROOTFS_PACKAGES), "sid", str(tmp), mirror],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed (exit {r.returncode}); see {log}")
    cache.step(f"rootfs ready: {root}")
    return root


def rootfs_qemu(root: Path) -> QemuBinary | None:
    """The rootfs's QEMU, preferably through its loader, else through chroot."""
    exe = root / "usr/bin/qemu-system-aarch64"
    share = root / "usr/share/qemu"
    libpath = ":".join(str(root / d) for d in LIB_DIRS)
    loader = QemuBinary(
        "loader", [str(root / LOADER), "--library-path", libpath, str(exe), "-L", str(share)],
        rootfs=root,
        # Debian builds some devices/UI parts as loadable modules; point QEMU at them.
        env={"QEMU_MODULE_DIR": str(root / "usr/lib/x86_64-linux-gnu/qemu")})
    if _probe(loader):
        return loader
    if os.geteuid() == 0:
        chroot = QemuBinary("chroot", [shutil.which("chroot") or "chroot", str(root),
                                       "/usr/bin/qemu-system-aarch64"], rootfs=root)
        if _probe(chroot):
            return chroot
    return None


def find_qemu(build: bool = True) -> QemuBinary:
    """A usable QEMU: the system one if it qualifies, else the cached sid one."""
    q = system_qemu()
    if q is None:
        root = rootfs_dir()
        if not (root / "usr/bin/qemu-system-aarch64").exists():
            if not build:
                raise RuntimeError("no QEMU >= 10.1 with vfio-user-pci; run the setup step")
            build_rootfs(root)
        q = rootfs_qemu(root)
        if q is None:
            raise RuntimeError(f"the QEMU in {root} does not run here (neither via its "
                               f"loader nor via chroot)")
    cache.update_manifest("qemu", {"mode": q.mode, "version": q.version,
                                   "rootfs": str(q.rootfs or "")})
    return q
