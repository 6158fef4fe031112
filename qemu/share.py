"""`mali-vdev boot|shell --share HOST_DIR[:GUEST_PATH]`: host folders in the guest, read-write.

QEMU exports each folder with virtio-9p (`-fsdev local` + `virtio-9p-pci`) on the PCI slots
after the GPU's (slot 1 stays the vfio-user function the device tree expects); /init loads
the 9p modules when the kernel has them as modules and mounts each tag where asked
(`mali.share=TAG:PATH,...` on the kernel command line). A file written on either side is
seen by the other at once: a module rebuilt on the host is insmod-able in the running guest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FIRST_SLOT = 2          # slot 1 is the GPU (qemu/launcher.py GUEST_SLOT)
MAX_SHARES = 8
DEFAULT_GUEST_DIR = "/mnt/host"
# 9p over virtio, as modules on Debian's kernel (built in on ours); deps from .modinfo.
MODULES = ("9pnet_virtio", "9p")
GUEST_PATH = re.compile(r"^/[\w.+/-]*$")


@dataclass(frozen=True)
class Share:
    host: Path
    guest: str
    tag: str


def parse(specs: list[str] | tuple[str, ...]) -> list[Share]:
    """`HOST_DIR[:GUEST_PATH]` specs -> shares (tags share0, share1, ...); checked."""
    if len(specs) > MAX_SHARES:
        raise ValueError(f"--share: at most {MAX_SHARES} folders")
    out: list[Share] = []
    for i, spec in enumerate(specs):
        host, sep, guest = spec.partition(":")
        if not sep:
            guest = DEFAULT_GUEST_DIR if i == 0 else f"/mnt/{Path(host).name}"
        path = Path(host).expanduser()
        if not path.is_dir():
            raise ValueError(f"--share {spec!r}: no directory {path}")
        if not GUEST_PATH.match(guest) or guest == "/" or ".." in guest.split("/"):
            raise ValueError(f"--share {spec!r}: the guest path must be an absolute path of "
                             "letters, digits and . _ + - / (not /)")
        if any(s.guest == guest for s in out):
            raise ValueError(f"--share: two folders at {guest}")
        out.append(Share(path.resolve(), guest.rstrip("/"), f"share{i}"))
    return out


def qemu_args(shares: list[Share], host_path=str) -> list[str]:
    """QEMU options exporting the shares; `host_path` maps a host path to QEMU's view."""
    args: list[str] = []
    for i, s in enumerate(shares):
        path = host_path(s.host)
        if "," in path:
            raise ValueError(f"--share {s.host}: QEMU's option syntax cannot hold a ',' in a path")
        args += ["-fsdev", f"local,id=fs{i},path={path},security_model=none",
                 "-device", f"virtio-9p-pci,fsdev=fs{i},mount_tag={s.tag},"
                            f"addr={FIRST_SLOT + i:02x}.0"]
    return args


def cmdline(shares: list[Share]) -> str:
    """The kernel command line word /init reads to mount them ("" without shares)."""
    return "mali.share=" + ",".join(f"{s.tag}:{s.guest}" for s in shares) if shares else ""
