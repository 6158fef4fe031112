"""The download/build cache shared by every guest-side step.

Everything fetched or built lives under one directory so repeated runs reuse it.  A
cache entry is only ever created by building into a temporary sibling and renaming it
into place, so an interrupted download or build never leaves a half-made entry that a
later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

MANIFEST = "manifest.json"


def cache_root() -> Path:
    """`$MALI_VDEV_CACHE`, else `~/.cache/mali-vdev` (created on demand)."""
    env = os.environ.get("MALI_VDEV_CACHE")
    root = Path(env) if env else Path.home() / ".cache" / "mali-vdev"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def step(msg: str) -> None:
    """One progress line per long step, on stderr so guest output on stdout stays clean."""
    print(f"[mali-vdev {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def key_of(*parts: object) -> str:
    """A short stable hash of the inputs of a build, used to name its cache entry."""
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temp dir next to `final`; rename it to `final` only on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        if final.exists():  # a concurrent run won the race; keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """Yield a temp path next to `final`; rename it to `final` only on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_manifest(root: Path | None = None) -> dict:
    path = (root or cache_root()) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def update_manifest(section: str, data: dict, root: Path | None = None) -> None:
    """Record which versions a build used, so runs can report e.g. the kernel version."""
    root = root or cache_root()
    manifest = read_manifest(root)
    manifest[section] = data
    with atomic_file(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def clean_stale_temps(directory: Path, max_age_s: float = 3600.0) -> None:
    """Remove leftovers of builds that were killed (their temp names start with '.')."""
    if not directory.is_dir():
        return
    now = time.time()
    for p in directory.glob(".*.tmp"):
        try:
            if now - p.lstat().st_mtime > max_age_s:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        except FileNotFoundError:
            pass


def prune(directory: Path, pattern: str, keep: Path, max_kept: int) -> None:
    """Keep `keep` and the newest others matching `pattern`, `max_kept` files in all:
    entries built for older inputs (previous kernels, package sets) are dead weight."""
    old = sorted((p for p in directory.glob(pattern) if p != keep),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for p in old[max_kept - 1:]:
        p.unlink(missing_ok=True)
