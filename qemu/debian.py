"""Debian package access for the guest: mirror discovery and a private sid/arm64 apt root.

The host runs Debian 12 (amd64) while the guest assets come from sid (arm64), so we keep
an apt root of our own inside the cache (own sources list, own empty dpkg status, own
config) and drive the host's `apt-get`/`apt-cache` against it.  Packages are fetched by
name; versions are whatever the archive has now and are reported back to the caller.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from debian.deb822 import Deb822

from qemu import cache

MIRROR_ENV = "MALI_VDEV_DEBIAN_MIRROR"
APT_DIR = Path("/etc/apt")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# How old the package lists may get before `ensure_updated` refreshes them.
LISTS_MAX_AGE_S = 12 * 3600


# --- mirror discovery -----------------------------------------------------------------

def _uris_from_deb822(text: str) -> list[str]:
    """The URIs of the enabled `deb` stanzas of a deb822 `.sources` file (python-debian)."""
    uris: list[str] = []
    for stanza in Deb822.iter_paragraphs(text.splitlines()):
        fields = {k.lower(): v for k, v in stanza.items()}
        if fields.get("enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in fields.get("types", "").split():
            continue
        uris.extend(fields.get("uris", "").split())
    return uris


def _uris_from_one_line(text: str) -> list[str]:
    uris = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        if rest.startswith("["):  # options like [arch=amd64 signed-by=...]
            rest = rest.split("]", 1)[1].strip()
        if rest:
            uris.append(rest.split()[0])
    return uris


def mirror_candidates(apt_dir: Path = APT_DIR) -> list[str]:
    """All `deb` URIs of the host's apt configuration, in the order apt reads them."""
    uris: list[str] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        uris += _uris_from_one_line(main.read_text(errors="replace"))
    parts = apt_dir / "sources.list.d"
    if parts.is_dir():
        for p in sorted(parts.iterdir()):
            if p.suffix == ".sources":
                uris += _uris_from_deb822(p.read_text(errors="replace"))
            elif p.suffix == ".list":
                uris += _uris_from_one_line(p.read_text(errors="replace"))
    return uris


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The Debian archive to use: env override, else the host's first `.../debian` URI."""
    env = os.environ.get(MIRROR_ENV)
    if env:
        return env.rstrip("/")
    for uri in mirror_candidates(apt_dir):
        if urlparse(uri).path.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    raise RuntimeError(
        f"no Debian archive URI (path ending in /debian) in {apt_dir}/sources.list[.d]; "
        f"set {MIRROR_ENV}=<uri>")


# --- private apt root -------------------------------------------------------------------

@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str
    filename: str  # path of the .deb inside the archive ("pool/...")


def host_proxy_config() -> str:
    """The host apt's proxy settings, the one part of its configuration we keep."""
    try:
        r = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    keep = [line for line in r.stdout.splitlines()
            if re.match(r"Acquire::(https?|ftp)::Proxy\b", line)]
    return "".join(line + "\n" for line in keep)


class AptRoot:
    """An apt root for one suite/architecture, kept in the cache and refreshed when old."""

    def __init__(self, root: Path, mirror: str, suite: str = "sid", arch: str = "arm64",
                 components: tuple[str, ...] = ("main", "non-free-firmware")):
        self.root = root
        self.mirror = mirror
        self.suite = suite
        self.arch = arch
        self.components = components
        self.debs = root / "debs"

    @classmethod
    def default(cls) -> "AptRoot":
        return cls(cache.cache_root() / "apt-sid-arm64", debian_mirror())

    # apt reads APT_CONFIG before anything else, so the host's apt.conf.d (docker-clean,
    # gzip indexes, ...) never leaks in; all state lives below self.root.
    def _write_config(self) -> Path:
        etc = self.root / "etc/apt"
        for d in (etc / "apt.conf.d", etc / "preferences.d", etc / "trusted.gpg.d",
                  self.root / "var/lib/apt/lists/partial",
                  self.root / "var/cache/apt/archives/partial", self.root / "var/lib/dpkg",
                  self.debs):
            d.mkdir(parents=True, exist_ok=True)
        status = self.root / "var/lib/dpkg/status"
        if not status.exists():
            status.write_text("")
        (etc / "sources.list").write_text("")
        signed = f"Signed-By: {KEYRING}\n" if KEYRING.exists() else ""
        (etc / "sources.list.d").mkdir(exist_ok=True)
        (etc / "sources.list.d/guest.sources").write_text(
            f"Types: deb\nURIs: {self.mirror}\nSuites: {self.suite}\n"
            f"Components: {' '.join(self.components)}\nArchitectures: {self.arch}\n{signed}")
        conf = etc / "apt.conf"
        conf.write_text(
            f'Dir "{self.root}/";\n'
            f'Dir::State::status "{status}";\n'
            f'APT::Architecture "{self.arch}";\n'
            f'APT::Architectures {{ "{self.arch}"; }};\n'
            # sid's Release file is often past its Valid-Until date, and build machines'
            # clocks are not always right; signatures are still checked.
            'Acquire::Check-Valid-Until "false";\n'
            'Acquire::Check-Date "false";\n'
            + host_proxy_config() +
            'Acquire::Languages "none";\n'
            'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";\n'
            'Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";\n'
            'APT::Install-Recommends "false";\n'
            'Debug::NoLocking "true";\n')
        return conf

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["APT_CONFIG"] = str(self.root / "etc/apt/apt.conf")
        env["LC_ALL"] = "C"
        return env

    def _run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self._env(), text=True, capture_output=True, **kw)

    def update(self) -> None:
        self._write_config()
        cache.step(f"apt-get update: {self.mirror} {self.suite} {self.arch} "
                   f"{'+'.join(self.components)}")
        r = self._run(["apt-get", "-q", "update"])
        if r.returncode != 0:
            raise RuntimeError(f"apt-get update failed for {self.mirror}:\n{r.stdout}{r.stderr}")
        (self.root / "updated.stamp").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))

    def ensure_updated(self, max_age_s: float = LISTS_MAX_AGE_S) -> None:
        stamp = self.root / "updated.stamp"
        conf = self.root / "etc/apt/apt.conf"
        fresh = stamp.exists() and time.time() - stamp.stat().st_mtime < max_age_s
        same_mirror = conf.exists() and self.mirror in (
            self.root / "etc/apt/sources.list.d/guest.sources").read_text()
        if fresh and same_mirror:
            return
        try:
            self.update()
        except RuntimeError as e:
            # Old lists still name packages we may have cached: better than no boot offline.
            if not (stamp.exists() and same_mirror):
                raise
            cache.step(f"warning: {str(e).splitlines()[0]}; using the package lists of "
                       f"{stamp.read_text().strip()}")
            stamp.touch()  # don't retry on every boot for the next LISTS_MAX_AGE_S

    def show(self, name: str) -> dict[str, str]:
        """Fields of the candidate version of `name` (raises KeyError if unknown)."""
        r = self._run(["apt-cache", "show", "--no-all-versions", name])
        if r.returncode != 0 or not r.stdout.strip():
            raise KeyError(f"package {name!r} not found in {self.suite}/{self.arch}")
        stanza = next(Deb822.iter_paragraphs(r.stdout.splitlines()), None)
        if stanza is None:
            raise KeyError(f"package {name!r} not found in {self.suite}/{self.arch}")
        return dict(stanza)

    def package(self, name: str) -> Package:
        f = self.show(name)
        return Package(f["Package"], f["Version"], f["Architecture"], f["Filename"])

    def depends(self, name: str) -> list[list[str]]:
        """Pre-Depends + Depends of `name` as a list of alternatives groups (names only)."""
        f = self.show(name)
        groups = []
        for field in ("Pre-Depends", "Depends"):
            for group in filter(None, (g.strip() for g in f.get(field, "").split(","))):
                alts = [re.split(r"[\s(:]", a.strip(), maxsplit=1)[0] for a in group.split("|")]
                groups.append(alts)
        return groups

    def snapshot(self) -> str:
        """Identity of the archive state the package lists describe: a digest of their
        Release files (a new `apt-get update` that brings new lists changes it)."""
        lists = self.root / "var/lib/apt/lists"
        h = hashlib.sha256()
        for f in sorted(lists.glob("*Release")):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        return h.hexdigest()[:16]

    def resolve_cached(self, names: list[str]) -> tuple[list[Package], bool]:
        """`resolve()`, remembered by names and archive snapshot: (packages, from cache)."""
        key = cache.key_of(sorted(set(names)), self.suite, self.arch, self.snapshot(), "v1")
        path = cache.cache_root() / "resolved" / f"{key}.json"
        try:
            return [Package(**p) for p in json.loads(path.read_text())], True
        except (OSError, ValueError, TypeError):
            pass
        pkgs = self.resolve(names)
        with cache.atomic_file(path) as tmp:
            tmp.write_text(json.dumps([p.__dict__ for p in pkgs]))
        return pkgs, False

    def resolve(self, names: list[str]) -> list[Package]:
        """The packages apt's own solver would install for `names` on an empty system.

        Kept general for guest packages with dependencies: it asks apt for a simulated
        install against our empty dpkg status, so virtual packages and alternatives are
        decided the way apt decides them.
        """
        r = self._run(["apt-get", "-s", "-q", "install", "--no-install-recommends", *names])
        if r.returncode != 0:
            raise RuntimeError(f"cannot resolve {names}:\n{r.stdout}{r.stderr}")
        picked = re.findall(r"^Inst (\S+) \((\S+) ", r.stdout, re.M)
        return [self.package(f"{n}={v}") for n, v in picked]

    def download(self, pkgs: list[Package]) -> dict[str, Path]:
        """Fetch the exact versions into the cache (reused when already there)."""
        out: dict[str, Path] = {}
        missing = []
        for p in pkgs:
            path = self.debs / Path(p.filename).name
            out[p.name] = path
            if not path.exists():
                missing.append(p)
        if missing:
            cache.step("downloading " + ", ".join(f"{p.name} {p.version}" for p in missing))
            tmp = self.debs / ".download.tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            for f in tmp.iterdir():
                f.unlink()
            r = self._run(["apt-get", "-q", "download",
                           *[f"{p.name}:{p.arch}={p.version}" for p in missing]], cwd=tmp)
            if r.returncode != 0:
                raise RuntimeError(f"apt-get download failed:\n{r.stdout}{r.stderr}")
            for p in missing:
                got = list(tmp.glob(f"{p.name}_*.deb"))
                if len(got) != 1:
                    raise RuntimeError(f"apt-get download did not produce {p.name}: {got}")
                os.rename(got[0], out[p.name])  # complete file, moved in atomically
        return out


def extract_deb(deb: Path, dest: Path) -> None:
    """Unpack a package's data (no maintainer scripts) with dpkg-deb."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
