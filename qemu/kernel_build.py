"""Building an arm64 guest kernel with panthor and Tyr as modules (`mali-vdev kernel build`).

Tyr needs `CONFIG_DRM=y` (the Rust `kernel` crate declares its DRM bindings only then) and a
Rust module links against the crate metadata of its very build, so no tyr.ko can be built
against Debian's kernel (DRM=m): we build a whole, small kernel.

Everything comes from Debian by package name and is cached:
- the toolchain: a Debian sid root made with mmdebstrap (rustc + rust-src of one version,
  bindgen, clang/lld/llvm; bookworm's are too old), entered with `chroot` inside a private
  mount namespace (`unshare -m`) so nothing stays mounted when a build ends;
- the source: `linux-source-<version>` from sid or experimental (or the user's own tree);
- the configuration: `tinyconfig` + `kernel_config.fragment` (+ the user's fragment),
  merged with the tree's own `merge_config.sh`, then checked: panthor and Tyr must be `m`.

The source is always mounted read-only at /src and the build directory at /out inside the
root, so a build directory made from one tree is valid for a copy of it: a first build of a
user's tree starts from a copy of the Debian build of the same kernel version and config,
and `make` rebuilds only what differs (timestamps, as kbuild always does).
"""

from __future__ import annotations

import fcntl
import filecmp
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from debian.deb822 import Deb822

from qemu import cache, debian, kmodules

TOOLCHAIN_PACKAGES = (
    "make", "bc", "bison", "flex", "libssl-dev", "libelf-dev", "rustc", "rust-src", "rustfmt",
    "bindgen", "clang", "lld", "llvm", "xz-utils", "cpio", "kmod", "python3", "libc6-dev",
    "file", "zstd", "perl")
FRAGMENT = Path(__file__).with_name("kernel_config.fragment")
# What a guest kernel of ours must have after olddefconfig, whatever the user's fragment.
REQUIRED = {"CONFIG_RUST": "y", "CONFIG_DRM": "y", "CONFIG_DRM_PANTHOR": "m",
            "CONFIG_DRM_TYR": "m", "CONFIG_NVMEM": "y", "CONFIG_BLK_DEV_INITRD": "y",
            "CONFIG_PCI_HOST_GENERIC": "y", "CONFIG_SERIAL_AMBA_PL011_CONSOLE": "y"}
# Debian suites holding linux-source-<version>, searched in this order.
SUITES = ("sid", "experimental")
VERSIONS = ("7.2", "7.3")
DEFAULT_VERSION = "7.2"
MAKE_ARGS = ("ARCH=arm64", "LLVM=1")
TARGETS = ("Image", "modules")
PROGRESS_EVERY_S = 30.0       # progress lines when stderr is not a terminal


class KernelBuildError(RuntimeError):
    """A build step failed; says which and where its log is."""

    def __init__(self, step: str, message: str, log: Path | None = None):
        where = f"; the full log: {log}" if log else ""
        super().__init__(f"kernel build failed at step '{step}': {message}{where}")
        self.step, self.log = step, log


@dataclass
class BuiltKernel:
    """One finished build in the cache (`build.json` beside its Image)."""
    name: str                      # cache entry name, e.g. 7.2.13-1-1a2b3c4d
    version: str                   # 7.2 / 7.3 (major.minor)
    release: str                   # uname -r in the guest
    source: str                    # "linux-source-7.2 7.2.13-1" or a user's directory
    config_digest: str
    kernelversion: str             # VERSION.PATCHLEVEL.SUBLEVEL+EXTRAVERSION of the tree
    built_at: str
    build_seconds: float           # wall time of the make steps of the first build
    seeded_from: str = ""          # a user tree's first build started from this entry
    fragments: list[str] = field(default_factory=list)

    @property
    def dir(self) -> Path:
        return kernels_dir() / self.name

    @property
    def image(self) -> Path:
        return self.dir / "Image"

    @property
    def modules(self) -> Path:
        return self.dir / "modules" / "lib" / "modules" / self.release

    @property
    def log(self) -> Path:
        return self.dir / "build.log"

    @property
    def has_tyr(self) -> bool:
        return "tyr" in kmodules.index(self.modules)


def kernels_dir() -> Path:
    return cache.cache_root() / "kernels"


def toolchain_dir() -> Path:
    return cache.cache_root() / "kernel-toolchain-sid"


def list_built() -> list[BuiltKernel]:
    out = []
    root = kernels_dir()
    if root.is_dir():
        for meta in sorted(root.glob("*/build.json")):
            try:
                out.append(BuiltKernel(**json.loads(meta.read_text())))
            except (ValueError, TypeError):
                continue
    return sorted(out, key=lambda k: k.built_at)


def find_built(spec: str = "") -> BuiltKernel:
    """`--kernel built[:VERSION|:NAME]`: `built` is the kernel built last; `built:7.3` the
    Debian build of 7.3 (else the newest 7.3 build, e.g. of a user's tree); `built:NAME`
    that cache entry (`mali-vdev kernel list` names them)."""
    want = spec.split(":", 1)[1] if ":" in spec else ""
    built = [k for k in list_built() if k.image.is_file() and k.modules.is_dir()]
    match = [k for k in built if not want or want in (k.name, k.version, k.release)]
    if not match:
        have = ", ".join(f"{k.name} ({k.version})" for k in built) or "none"
        raise RuntimeError(f"no built kernel matches {spec!r} (built: {have}); run "
                           f"`mali-vdev kernel build --version {want or DEFAULT_VERSION}` first")
    if want and want not in (k.name for k in match):
        # a version: Debian's source is the reference, a user's tree only if it is all there is
        match.sort(key=lambda k: (k.source.startswith("linux-source"), k.built_at))
    return match[-1]


# --- the toolchain root ---------------------------------------------------------------

def ensure_toolchain(root: Path | None = None) -> Path:
    """mmdebstrap a sid root with the kernel toolchain into the cache (once)."""
    root = root or toolchain_dir()
    if (root / "usr/bin/rustc").exists() and (root / ".complete").exists():
        return root
    if not shutil.which("mmdebstrap"):
        raise KernelBuildError("toolchain", "mmdebstrap is not installed (apt-get install "
                                            "mmdebstrap)")
    cache.clean_stale_temps(root.parent, max_age_s=0)
    mirror = debian.debian_mirror()
    log = cache.cache_root() / "logs" / "kernel-toolchain.log"
    log.parent.mkdir(exist_ok=True)
    cache.step(f"building the kernel toolchain root (Debian sid: rustc, bindgen, clang, lld; "
               f"~2 min, ~2 GB) from {mirror}; log: {log}")
    with cache.atomic_dir(root) as tmp, open(log, "w") as logf:
        r = _run_with_progress(
            ["mmdebstrap", "--variant=apt", "--aptopt=Acquire::Check-Valid-Until \"false\"",
             "--aptopt=Acquire::Check-Date \"false\"",
             "--aptopt=APT::Install-Recommends \"false\"",
             "--include=" + ",".join(TOOLCHAIN_PACKAGES), "sid", str(tmp), mirror],
            logf, "toolchain root")
        if r != 0:
            raise KernelBuildError("toolchain", f"mmdebstrap exited {r}", log)
        for d in ("src", "out", "frag"):
            (tmp / d).mkdir(exist_ok=True)
        (tmp / ".complete").write_text(json.dumps(toolchain_versions(tmp)) + "\n")
    cache.step(f"toolchain ready: {root} ({_versions_line(root)})")
    return root


def toolchain_versions(root: Path) -> dict[str, str]:
    """Versions of the packages that decide what the build produces (from dpkg's status)."""
    out = {}
    with open(root / "var/lib/dpkg/status", errors="replace") as f:
        for stanza in Deb822.iter_paragraphs(f):
            if stanza.get("Package") in ("rustc", "rust-src", "bindgen", "clang", "lld", "llvm"):
                out[stanza["Package"]] = stanza["Version"]
    return out


def _versions_line(root: Path) -> str:
    try:
        return ", ".join(f"{k} {v}" for k, v in json.loads(
            (root / ".complete").read_text()).items())
    except (OSError, ValueError):
        return "?"


# --- sources --------------------------------------------------------------------------

@dataclass
class Source:
    tree: Path                     # the unpacked tree (has Makefile, drivers/gpu/drm/tyr)
    label: str                     # "linux-source-7.2 7.2.13-1" or the user's path
    version: str                   # major.minor from the Makefile
    kernelversion: str             # VERSION.PATCHLEVEL.SUBLEVEL+EXTRAVERSION
    debian: bool


def makefile_version(tree: Path) -> tuple[str, str]:
    """(major.minor, full kernelversion) read from a tree's top Makefile."""
    try:
        text = (tree / "Makefile").read_text(errors="replace")[:4000]
    except OSError as e:
        raise KernelBuildError("source", f"{tree} has no readable Makefile ({e})") from None
    f = {k: (re.search(rf"^{k}[ \t]*=[ \t]*(\S*)", text, re.M) or [None, ""])[1]
         for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION")}
    if not f["VERSION"] or not f["PATCHLEVEL"]:
        raise KernelBuildError("source", f"{tree}/Makefile names no VERSION/PATCHLEVEL: "
                                         "not a Linux source tree")
    return (f"{f['VERSION']}.{f['PATCHLEVEL']}",
            f"{f['VERSION']}.{f['PATCHLEVEL']}.{f['SUBLEVEL'] or 0}{f['EXTRAVERSION']}")


def apt_for(suite: str) -> debian.AptRoot:
    if suite == "sid":
        return debian.AptRoot.default()
    return debian.AptRoot(cache.cache_root() / f"apt-{suite}-arm64", debian.debian_mirror(),
                          suite=suite, components=("main",))


def debian_source(version: str) -> Source:
    """linux-source-<version> from the first suite that has it, unpacked once."""
    name = f"linux-source-{version}"
    pkg = apt = None
    for suite in SUITES:
        apt = apt_for(suite)
        try:
            apt.ensure_updated()
            pkg = apt.package(name)
            break
        except KeyError:
            continue
        except RuntimeError as e:
            raise KernelBuildError("source", str(e).splitlines()[0]) from None
    if pkg is None:
        raise KernelBuildError("source", f"no package {name} in Debian {' or '.join(SUITES)}")
    tree_root = cache.cache_root() / "kernel-src" / f"{pkg.name}_{pkg.version.replace(':', '%3a')}"
    if not (tree_root / ".complete").exists():
        deb = apt.download([pkg])[pkg.name]
        cache.step(f"unpacking {deb.name} (~1.8 GB, ~30 s)")
        shutil.rmtree(tree_root, ignore_errors=True)
        with cache.atomic_dir(tree_root) as tmp:
            debian.extract_deb(deb, tmp / "deb")
            tarballs = sorted((tmp / "deb").glob("usr/src/linux-source-*.tar.*"))
            if not tarballs:
                raise KernelBuildError("source", f"{deb.name} holds no /usr/src/linux-source-*"
                                                 " tarball")
            r = subprocess.run(["tar", "-xf", str(tarballs[0]), "-C", str(tmp)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise KernelBuildError("source", f"tar: {r.stderr.strip()[:400]}")
            shutil.rmtree(tmp / "deb")
            trees = [p for p in tmp.iterdir() if (p / "Makefile").exists()]
            if len(trees) != 1:
                raise KernelBuildError("source", f"{tarballs[0].name} unpacked to {trees}")
            trees[0].rename(tmp / "linux")
            (tmp / ".complete").write_text(f"{pkg.name} {pkg.version}\n")
    tree = tree_root / "linux"
    ver, full = makefile_version(tree)
    return Source(tree, f"{pkg.name} {pkg.version}", ver, full, debian=True)


def user_source(path: Path) -> Source:
    tree = Path(path).resolve()
    if not tree.is_dir():
        raise KernelBuildError("source", f"--source {path}: no such directory")
    ver, full = makefile_version(tree)
    if (tree / ".config").exists() or (tree / "include/config").is_dir():
        raise KernelBuildError("source", f"{tree} was configured in-tree (.config or "
                                         "include/config exists); kbuild needs a clean source "
                                         "tree for an O= build: run `make mrproper` there")
    if not (tree / "drivers/gpu/drm/tyr").is_dir():
        cache.step(f"warning: {tree} has no drivers/gpu/drm/tyr; the kernel gets panthor only")
    return Source(tree, str(tree), ver, full, debian=False)


# --- configuration ----------------------------------------------------------------------

def config_inputs(fragments: list[Path]) -> tuple[list[tuple[str, str]], str]:
    """[(name, text)] of the project's fragment and the user's, and their digest."""
    parts = [("mali-vdev.config", FRAGMENT.read_text())]
    for f in fragments:
        try:
            parts.append((f"user-{len(parts)}-{Path(f).name}", Path(f).read_text()))
        except OSError as e:
            raise KernelBuildError("config", f"--config-fragment {f}: {e}") from None
    digest = hashlib.sha256("\0".join(t for _, t in parts).encode()).hexdigest()[:12]
    return parts, digest


def parse_config(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2)
        m = re.match(r"^# (CONFIG_\w+) is not set$", line)
        if m:
            out[m.group(1)] = "n"
    return out


def check_config(config_text: str, fragment_texts: list[str]) -> list[str]:
    """Problems with the final .config: required options missing, and the fragments'
    options that olddefconfig dropped (an unmet dependency)."""
    final = parse_config(config_text)
    problems = [f"{k}={final.get(k, 'n')} (needs {v})" for k, v in REQUIRED.items()
                if final.get(k, "n") != v]
    for text in fragment_texts:
        for k, v in parse_config(text).items():
            if final.get(k, "n") != v and k not in REQUIRED:
                problems.append(f"{k}={final.get(k, 'n')} (the fragment asks {v})")
    return problems


# --- running steps in the root ----------------------------------------------------------

def _chroot_argv(root: Path, src: Path, out: Path, frag: Path, argv: list[str]) -> list[str]:
    """`argv` inside the root, with src (read-only), out and frag mounted, in a private
    mount namespace that disappears with the process."""
    q = lambda p: "'" + str(p).replace("'", "'\\''") + "'"  # noqa: E731
    script = (
        f"set -e; mount --bind {q(src)} {q(root / 'src')}; "
        f"mount -o remount,bind,ro {q(root / 'src')}; "
        f"mount --bind {q(out)} {q(root / 'out')}; mount --bind {q(frag)} {q(root / 'frag')}; "
        f"mount -t proc proc {q(root / 'proc')}; "
        f"mount --rbind /dev {q(root / 'dev')}; "
        f"exec chroot {q(root)} \"$@\"")
    env = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8",
           "TERM=dumb", "KBUILD_BUILD_USER=mali-vdev", "KBUILD_BUILD_HOST=mali-vdev"]
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            *env, *argv]


def _run_with_progress(argv: list[str], logf, what: str) -> int:
    """Run argv with its output in `logf`; one updating progress line on stderr."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    tty = sys.stderr.isatty()
    last = 0.0
    try:
        while proc.poll() is None:
            time.sleep(1.0)
            el = time.monotonic() - t0
            if tty:
                tail = _last_line(Path(logf.name))[:70]
                print(f"\r\033[K[mali-vdev] {what}: {int(el) // 60}:{int(el) % 60:02d} {tail}",
                      end="", file=sys.stderr, flush=True)
            elif el - last >= PROGRESS_EVERY_S:
                last = el
                cache.step(f"{what}: {int(el) // 60}:{int(el) % 60:02d} elapsed")
    except BaseException:
        os.killpg(proc.pid, 15)
        proc.wait()
        raise
    finally:
        if tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    return proc.returncode


def _last_line(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 400))
            lines = f.read().decode(errors="replace").strip().splitlines()
            return lines[-1].strip() if lines else ""
    except OSError:
        return ""


# --- the build --------------------------------------------------------------------------

def entry_name(src: Source, config_digest: str, tool_versions: dict[str, str]) -> str:
    key = cache.key_of(src.label, config_digest, sorted(tool_versions.items()), "v1")[:10]
    base = src.kernelversion if src.debian else f"{src.kernelversion}-{Path(src.label).name}"
    return re.sub(r"[^\w.+-]", "_", f"{base}-{key}")


def build(version: str | None = None, source: Path | None = None,
          fragments: list[Path] = (), jobs: int | None = None,
          force: bool = False) -> BuiltKernel:
    """Build (or find in the cache) a guest kernel; returns the cache entry."""
    if version is not None and version not in VERSIONS and source is None:
        cache.step(f"note: {version} is not one of the tested versions {', '.join(VERSIONS)}")
    root = ensure_toolchain()
    tools = json.loads((root / ".complete").read_text())
    src = user_source(source) if source else debian_source(version or DEFAULT_VERSION)
    if version and source and src.version != version:
        raise KernelBuildError("source", f"{src.tree} is Linux {src.kernelversion}, not "
                                         f"{version}")
    parts, digest = config_inputs(list(fragments))
    name = entry_name(src, digest, tools)
    entry = kernels_dir() / name
    entry.mkdir(parents=True, exist_ok=True)
    with open(entry / ".lock", "w") as lock:
        try:        # one build per entry at a time; a second run waits, then finds it built
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            cache.step(f"another build of {name} is running; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(src, parts, digest, name, entry, tools, root, fragments, jobs,
                             force)


def _build_locked(src: Source, parts, digest: str, name: str, entry: Path, tools: dict,
                  root: Path, fragments, jobs: int | None, force: bool) -> BuiltKernel:
    meta = entry / "build.json"
    if meta.exists() and src.debian and not force:
        k = BuiltKernel(**json.loads(meta.read_text()))
        if k.image.is_file() and k.modules.is_dir():
            cache.step(f"kernel {k.release} is built: {k.dir} (cached)")
            return k
    out, frag = entry / "out", entry / "frag"
    seeded = ""
    if not (out / ".config").exists():
        seeded = _seed(out, src, digest)
    frag.mkdir(exist_ok=True)
    for fname, text in parts:
        (frag / fname).write_text(text)
    out.mkdir(exist_ok=True)
    log = entry / "build.log"
    jobs = jobs or os.cpu_count() or 2
    t0 = time.monotonic()
    with open(log, "w") as logf:
        logf.write(f"# mali-vdev kernel build: {src.label} ({src.kernelversion}), config "
                   f"{digest}, toolchain {tools}\n")
        logf.flush()

        def step(name: str, argv: list[str], what: str) -> None:
            logf.write(f"\n# step {name}: {' '.join(argv)}\n")
            logf.flush()
            r = _run_with_progress(_chroot_argv(root, src.tree, out, frag, argv), logf, what)
            if r != 0:
                raise KernelBuildError(name, f"exit status {r}; last line: "
                                             f"{_last_line(log)!r}", log)

        make = ["make", "-C", "/src", "O=/out", *MAKE_ARGS]
        label = f"kernel {src.kernelversion}"
        if not (out / ".config").exists() or force:
            step("config", [*make, "tinyconfig"], f"{label}: tinyconfig")
            step("config", ["sh", "-c", "cd /out && ARCH=arm64 LLVM=1 "
                 "/src/scripts/kconfig/merge_config.sh -m -O /out /out/.config "
                 + " ".join(f"/frag/{n}" for n, _ in parts)], f"{label}: merge fragments")
            step("config", [*make, "olddefconfig"], f"{label}: olddefconfig")
        problems = check_config((out / ".config").read_text(), [t for _, t in parts])
        if problems:
            raise KernelBuildError("config", "the configuration lacks what the guest needs: "
                                   + "; ".join(problems[:12]), log)
        step("rustavailable", [*make, "rustavailable"], f"{label}: checking Rust")
        cache.step(f"building {label} ({' '.join(TARGETS)}, -j{jobs}; 7-15 min on 2 cores "
                   f"the first time); log: {log}")
        step("build", ["nice", "-n", "10", *make, f"-j{jobs}", *TARGETS], f"{label}: build")
        shutil.rmtree(out / "_install", ignore_errors=True)
        step("install", [*make, "INSTALL_MOD_PATH=/out/_install", "INSTALL_MOD_STRIP=1",
                         "DEPMOD=/sbin/depmod", "modules_install"], f"{label}: modules_install")
    elapsed = round(time.monotonic() - t0, 1)
    release = (out / "include/config/kernel.release").read_text().strip()
    shutil.rmtree(entry / "modules", ignore_errors=True)
    (entry / "modules").mkdir()
    shutil.move(str(out / "_install" / "lib"), str(entry / "modules" / "lib"))
    shutil.copyfile(out / "arch/arm64/boot/Image", entry / "Image")
    shutil.copyfile(out / ".config", entry / "config")
    old = None
    if meta.exists():
        try:
            old = BuiltKernel(**json.loads(meta.read_text()))
        except (ValueError, TypeError):
            old = None
    k = BuiltKernel(name=name, version=src.version, release=release, source=src.label,
                    config_digest=digest, kernelversion=src.kernelversion, built_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                    build_seconds=old.build_seconds if old else elapsed,
                    seeded_from=seeded or (old.seeded_from if old else ""),
                    fragments=[str(Path(f).resolve()) for f in fragments])
    meta.write_text(json.dumps(asdict(k), indent=2) + "\n")
    cache.step(f"kernel {release} built in {elapsed:.0f} s: {entry / 'Image'}, modules "
               f"{k.modules}{'; tyr.ko included' if k.has_tyr else ''}")
    return k


# Files whose change kbuild's recorded dependencies do not cover: such a tree is built whole.
STRUCTURAL = re.compile(r"(^|/)(Makefile[^/]*|Kbuild[^/]*|Kconfig[^/]*|[^/]*\.mk|scripts/.*)$")


def tree_changes(tree: Path, base: Path) -> list[str]:
    """Paths (relative) whose contents differ between a user's tree and the Debian tree it
    came from, new and deleted files included. Same size and mtime counts as the same file
    (a copy made with cp -a or -al); otherwise the contents are compared."""
    changed: list[str] = []
    for top, other in ((tree, base), (base, tree)):
        for root, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d != ".git"]
            for f in files:
                p = Path(root) / f
                rel = str(p.relative_to(top))
                q = other / rel
                if top is base:
                    if not q.exists() and not q.is_symlink():
                        changed.append(rel)      # deleted in the user's tree
                    continue
                try:
                    st, qt = p.stat(), q.stat()
                except (FileNotFoundError, NotADirectoryError):
                    changed.append(rel)          # new in the user's tree (or a dead link)
                    continue
                if (st.st_size, st.st_mtime_ns) == (qt.st_size, qt.st_mtime_ns):
                    continue
                if st.st_size != qt.st_size or not filecmp.cmp(p, q, shallow=False):
                    changed.append(rel)
    return changed


def _outdate(out: Path, changed: list[str]) -> int:
    """Delete every target whose recorded dependencies (kbuild's .*.cmd files) name a changed
    source: a seeded build directory's objects are newer than any file of the user's tree,
    so make's timestamps alone would keep them. Returns how many targets went."""
    if not changed:
        return 0
    pats = [arg for rel in changed for arg in ("-e", f"/src/{rel}")]
    r = subprocess.run(["grep", "-rlF", "--include=.*.cmd", *pats, str(out)],
                       capture_output=True, text=True)
    n = 0
    for cmd in r.stdout.split():
        c = Path(cmd)
        target = c.parent / c.name[1:-len(".cmd")]
        for p in (target, c):
            if p.exists():
                p.unlink()
                n += p is target
    return n


def _seed(out: Path, src: Source, digest: str) -> str:
    """A user tree's first build starts from the Debian build of the same kernel version
    and config: same /src and /out paths inside the root, so kbuild's recorded commands
    match; the targets that depend on files the user changed are removed first (their
    objects would look newer than the change). A change kbuild's dependencies cannot follow
    (a Makefile, Kconfig, scripts/) means a whole build."""
    if src.debian:
        return ""
    for k in reversed(list_built()):
        base = k.dir / "out"
        if not (k.source.startswith("linux-source") and k.config_digest == digest
                and k.kernelversion == src.kernelversion and (base / ".config").exists()):
            continue
        pkg, _, version = k.source.partition(" ")
        debian_tree = cache.cache_root() / "kernel-src" / f"{pkg}_{version.replace(':', '%3a')}" / "linux"
        if not debian_tree.is_dir():
            continue
        changed = tree_changes(src.tree, debian_tree)
        structural = [c for c in changed if STRUCTURAL.search(c)]
        if structural:
            cache.step(f"{src.tree} changes {structural[0]}"
                       + (f" (and {len(structural) - 1} more)" if len(structural) > 1 else "")
                       + ": building it whole")
            return ""
        shutil.rmtree(out, ignore_errors=True)
        r = subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(out)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(out, ignore_errors=True)
            return ""
        shutil.rmtree(out / "_install", ignore_errors=True)
        n = _outdate(out, changed)
        cache.step(f"starting the build of {src.tree} from the build of {k.name}: "
                   f"{len(changed)} files differ from {pkg}, {n} targets to rebuild")
        return k.name
    return ""


def describe(k: BuiltKernel) -> str:
    tyr = "panthor+tyr" if k.has_tyr else "panthor"
    seeded = f", started from {k.seeded_from}" if k.seeded_from else ""
    return (f"{k.name:<34} {k.release:<28} {tyr:<12} {k.source} "
            f"(built {k.built_at}, first build {k.build_seconds:.0f} s{seeded}); "
            f"build directory {k.dir / 'out'}")


# --- CLI ------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="kernel_cmd", required=True)
    b = sub.add_parser("build", help="build an arm64 guest kernel with panthor and Tyr as "
                                     "modules (cached by source and config)")
    b.add_argument("--version", choices=VERSIONS, default=None,
                   help=f"Debian's linux-source-VERSION (default {DEFAULT_VERSION}; with "
                        "--source: checked against the tree)")
    b.add_argument("--source", type=Path, metavar="DIR",
                   help="your own kernel tree (e.g. a Tyr branch) instead of Debian's; built "
                        "incrementally, starting from the Debian build of the same version")
    b.add_argument("--config-fragment", type=Path, action="append", default=[],
                   metavar="FILE", help="Kconfig options merged after the project's minimal "
                                        "config (repeatable)")
    b.add_argument("--jobs", "-j", type=int, help="make -j (default: the number of cores)")
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    sub.add_parser("list", help="the kernels built so far")


def run(args) -> int:
    if args.kernel_cmd == "list":
        built = list_built()
        if not built:
            print("no kernels built yet: mali-vdev kernel build [--version 7.2|7.3]")
        for k in built:
            print(describe(k))
        return 0
    try:
        k = build(args.version, args.source, args.config_fragment, args.jobs, args.force)
    except KernelBuildError as e:
        print(f"mali-vdev kernel: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mali-vdev kernel: interrupted", file=sys.stderr)
        return 130
    print(describe(k))
    print(f"boot it: mali-vdev boot --kernel built:{k.name} --driver tyr")
    return 0
