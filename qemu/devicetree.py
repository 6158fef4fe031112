"""The device tree the guest boots with: QEMU's own virt DTB plus the "DT hole" glue.

panthor is a platform (device-tree) driver while vfio-user only offers a PCI function.
So we take the DTB QEMU generates for the exact machine options of the boot, make the
PCIe host's 32-bit MMIO window start 2 MiB later, and describe a Mali GPU node at the
freed 2 MiB (where the guest's /init then places BAR0), using the SPI that QEMU wires to
slot 1's INTA.  The tree is read and edited with libfdt (pylibfdt): two properties of the
PCIe host are replaced and the GPU's nodes added, so no text of QEMU's tree is rewritten.

That SPI is made edge-triggered (GPU node and the host's interrupt-map alike).  QEMU's
INTx for a vfio-user device is an edge plus EOI: the eventfd asserts the line, the next
BAR access deasserts it and the server re-triggers while the device still holds its level
high.  A trigger that reaches QEMU after the handler's mask writes therefore leaves the
line asserted with nothing pending in the GPU; panthor's raw handlers return IRQ_NONE
without touching a register while their threads run, so with a level-triggered SPI the
vCPU re-takes the interrupt before every instruction until the kernel disables the line
("irq N: nobody cared").  With an edge-triggered SPI that late trigger costs one spurious
interrupt, and the server's re-trigger after each EOI keeps the level semantics.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import libfdt

GPU_BASE = 0x10000000
GPU_SIZE = 0x200000          # 2 MiB, the size of the server's BAR0
GPU_CLOCK_HZ = 800_000_000
# The GPU's operating points: RK3588's Mali-G610 table (300 MHz to 1 GHz), so devfreq has
# frequencies to move between under load. The clock is a fixed-clock (nothing in the guest
# can program a clock the server would see), so clk_set_rate() keeps 800 MHz: devfreq's
# target and trans_stat follow the load, cur_freq stays at the clock's rate.
GPU_OPPS_HZ = tuple(range(300_000_000, 1_000_000_001, 100_000_000))
GPU_SLOT = 1                 # PCI device number the launcher gives the vfio-user function
PCI_INTA = 1
IRQ_TYPE_EDGE_RISING = 1     # GIC interrupt specifier flags (dt-bindings/interrupt-controller/irq.h)
MMIO32_SPACE = 0b10          # phys.hi bits 24-25 of a PCI address: 32-bit memory space
QUIET = (libfdt.NOTFOUND,)   # libfdt's end of a list of properties or subnodes

@dataclass
class Node:
    name: str
    path: str
    props: dict[str, bytes] = field(default_factory=dict)
    children: list["Node"] = field(default_factory=list)
    parent: "Node | None" = None

    def cells(self, prop: str) -> list[int]:
        raw = self.props[prop]
        return [int.from_bytes(raw[i:i + 4], "big") for i in range(0, len(raw), 4)]

    def cell(self, prop: str, default: int | None = None) -> int:
        if prop not in self.props and default is not None:
            return default
        return self.cells(prop)[0]

    def strings(self, prop: str) -> list[str]:
        return [s.decode() for s in self.props.get(prop, b"").split(b"\0")[:-1]]

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()


def parse_dtb(blob: bytes) -> Node:
    """A flattened device tree blob -> node tree (properties kept as raw bytes), read with
    libfdt (pylibfdt)."""
    try:
        fdt = libfdt.Fdt(bytes(blob))
    except libfdt.FdtException as e:
        raise ValueError(f"not a flattened device tree: {e}") from None

    def node(off: int, parent: Node | None) -> Node:
        name = fdt.get_name(off)
        path = "/" if parent is None else parent.path.rstrip("/") + "/" + name
        n = Node(name, path, parent=parent)
        poff = fdt.first_property_offset(off, QUIET)
        while poff >= 0:
            prop = fdt.get_property_by_offset(poff)
            n.props[prop.name] = bytes(prop)
            poff = fdt.next_property_offset(poff, QUIET)
        child = fdt.first_subnode(off, QUIET)
        while child >= 0:
            n.children.append(node(child, n))
            child = fdt.next_subnode(child, QUIET)
        return n

    return node(0, None)


def _join(cells: list[int]) -> int:
    v = 0
    for c in cells:
        v = (v << 32) | c
    return v


def _split(value: int, n: int) -> list[int]:
    return [(value >> (32 * (n - 1 - i))) & 0xFFFFFFFF for i in range(n)]


def find_pcie_host(root: Node) -> Node:
    for n in root.walk():
        if n.props.get("device_type") == b"pci\0" and "ranges" in n.props:
            return n
    raise RuntimeError("no PCI host bridge node in the device tree")


def phandle_node(root: Node, phandle: int) -> Node:
    for n in root.walk():
        if "phandle" in n.props and n.cell("phandle") == phandle:
            return n
    raise RuntimeError(f"no node with phandle {phandle:#x}")


@dataclass
class GlueInfo:
    pcie_path: str
    new_ranges: list[int]          # the host's `ranges` cells with the shrunk 32-bit window
    irq_parent: int                # phandle of the interrupt controller
    irq_spec: list[int]            # e.g. [0 (SPI), 4, 1 (edge rising)]
    new_imap: list[int]            # the host's interrupt-map with that SPI edge-triggered


def plan_glue(root: Node, slot: int = GPU_SLOT) -> GlueInfo:
    pci = find_pcie_host(root)
    parent = pci.parent
    pac = pci.cell("#address-cells")
    ppac = parent.cell("#address-cells", 2)
    psc = pci.cell("#size-cells")
    cells = pci.cells("ranges")
    width = pac + ppac + psc
    new = list(cells)
    found = False
    for i in range(0, len(cells), width):
        child = cells[i:i + pac]
        cpu = _join(cells[i + pac:i + pac + ppac])
        size = _join(cells[i + pac + ppac:i + width])
        if (child[0] >> 24) & 3 != MMIO32_SPACE:
            continue
        if cpu != GPU_BASE or size <= GPU_SIZE:
            raise RuntimeError(f"32-bit PCI window at {cpu:#x}+{size:#x} does not start at "
                               f"{GPU_BASE:#x}; cannot carve the GPU hole")
        child_addr = _join(child[1:]) + GPU_SIZE
        new[i + 1:i + pac] = _split(child_addr, pac - 1)
        new[i + pac:i + pac + ppac] = _split(cpu + GPU_SIZE, ppac)
        new[i + pac + ppac:i + width] = _split(size - GPU_SIZE, psc)
        found = True
    if not found:
        raise RuntimeError(f"no 32-bit memory window in {pci.path} ranges")

    # interrupt-map: child unit address (pac cells), child irq (#interrupt-cells), parent
    # phandle, parent unit address (its #address-cells), parent irq (its #interrupt-cells).
    mask = pci.cells("interrupt-map-mask")
    imap = pci.cells("interrupt-map")
    cic = pci.cell("#interrupt-cells")
    want = [(slot << 11) & mask[0], *[0 & m for m in mask[1:pac]], PCI_INTA & mask[pac]]
    entries = []  # (child unit address + pin, parent phandle, index of the parent specifier, its length)
    i = 0
    while i < len(imap):
        ph = imap[i + pac + cic]
        ctrl = phandle_node(root, ph)
        start = i + pac + cic + 1 + ctrl.cell("#address-cells", 0)
        gic = ctrl.cell("#interrupt-cells")
        entries.append((imap[i:i + pac + cic], ph, start, gic))
        i = start + gic
    ours = next(((ph, imap[s:s + n]) for child, ph, s, n in entries
                 if [c & m for c, m in zip(child, mask)] == want), None)
    if ours is None:
        raise RuntimeError(f"interrupt-map of {pci.path} has no entry for slot {slot} INTA")
    ph, spec = ours
    if len(spec) != 3:
        raise RuntimeError(f"slot {slot} INTA goes to {spec}: not a GIC SPI specifier")
    edge = [*spec[:2], IRQ_TYPE_EDGE_RISING]
    new_imap = list(imap)
    for _, p, s, n in entries:  # other slots' pins share the SPI (swizzling): same trigger
        if p == ph and imap[s:s + 2] == spec[:2]:
            new_imap[s + 2] = IRQ_TYPE_EDGE_RISING
    return GlueInfo(pci.path, new, ph, edge, new_imap)


def _cells(cells: list[int]) -> bytes:
    return b"".join(c.to_bytes(4, "big") for c in cells)


def _strings(*items: str) -> bytes:
    return b"".join(i.encode() + b"\0" for i in items)


def _max_phandle(root: Node) -> int:
    return max((n.cell("phandle") for n in root.walk() if "phandle" in n.props), default=0)


def glue_nodes(info: GlueInfo, first_phandle: int) -> dict[str, dict[str, bytes]]:
    """The nodes the glue adds under / (path -> properties), in order: the GPU's clock,
    the GPU at the freed 2 MiB, and its OPP table (lowest frequency first)."""
    clk, opp = first_phandle, first_phandle + 1
    irq = _cells(info.irq_spec)
    return {
        "/mali-vdev-gpu-clock": {
            "compatible": _strings("fixed-clock"), "#clock-cells": _cells([0]),
            "clock-frequency": _cells([GPU_CLOCK_HZ]),
            "clock-output-names": _strings("gpu_core"), "phandle": _cells([clk])},
        f"/gpu@{GPU_BASE:x}": {
            "compatible": _strings("rockchip,rk3588-mali", "arm,mali-valhall-csf"),
            "reg": _cells([GPU_BASE >> 32, GPU_BASE & 0xFFFFFFFF, 0, GPU_SIZE]),
            "interrupt-parent": _cells([info.irq_parent]),
            "interrupts": irq * 3,
            "interrupt-names": _strings("job", "mmu", "gpu"),
            "clocks": _cells([clk]), "clock-names": _strings("core"),
            "operating-points-v2": _cells([opp]), "dma-coherent": b"",
            "status": _strings("okay")},
        f"/gpu@{GPU_BASE:x}/opp-table": {
            "compatible": _strings("operating-points-v2"), "phandle": _cells([opp])},
        **{f"/gpu@{GPU_BASE:x}/opp-table/opp-{hz}": {"opp-hz": hz.to_bytes(8, "big")}
           for hz in GPU_OPPS_HZ},
    }


def patch_dtb(blob: bytes, slot: int = GPU_SLOT) -> tuple[bytes, str]:
    """QEMU's DTB -> (patched DTB, its source as dtc decompiles it, or "" without dtc).

    The PCIe host's `ranges` and `interrupt-map` are replaced and the glue's nodes added
    with libfdt; the rest of QEMU's tree is untouched."""
    root = parse_dtb(blob)
    info = plan_glue(root, slot)
    nodes = glue_nodes(info, _max_phandle(root) + 1)
    fdt = libfdt.Fdt(bytes(blob))
    fdt.resize(len(blob) + 4096 + sum(len(k) + sum(len(v) + len(n) + 16 for n, v in p.items())
                                      for k, p in nodes.items()))
    pci = fdt.path_offset(info.pcie_path)
    fdt.setprop(pci, "ranges", _cells(info.new_ranges))
    fdt.setprop(pci, "interrupt-map", _cells(info.new_imap))
    # libfdt adds a node before its siblings: parents first, each one's children in reverse
    order = sorted(reversed(list(nodes)), key=lambda path: path.count("/"))
    for path in order:
        parent, _, name = path.rpartition("/")
        off = fdt.add_subnode(fdt.path_offset(parent or "/"), name)
        for prop, value in nodes[path].items():
            fdt.setprop(off, prop, value)
    fdt.pack()
    out = bytes(fdt.as_bytearray())
    return out, _decompile(out)


def _decompile(blob: bytes) -> str:
    """The tree as DTS, for people debugging the glue (needs dtc; optional)."""
    if not shutil.which("dtc"):
        return ""
    r = subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts"], input=blob, capture_output=True)
    return r.stdout.decode(errors="replace") if r.returncode == 0 else ""


def build_dtb(qemu, machine_args: list[str], out_dir: Path, slot: int = GPU_SLOT) -> Path:
    """Dump QEMU's DTB for exactly these machine options, patch it, cache the result."""
    from qemu import cache

    key = cache.key_of(qemu.version, machine_args, slot, cache.file_digest(Path(__file__)))
    out = out_dir / f"virt-mali-{key}.dtb"
    if out.exists():
        return out
    cache.step("dumping QEMU's device tree and adding the GPU node")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mali-vdev-dtb.", dir=qemu.scratch_parent()) as tmp:
        raw = Path(tmp) / "qemu.dtb"
        r = qemu.run(*machine_args, "-machine", f"dumpdtb={qemu.path(raw)}")
        if r.returncode != 0 or not raw.exists():
            raise RuntimeError(f"QEMU dumpdtb failed: {r.stderr.strip()}")
        patched, dts = patch_dtb(raw.read_bytes(), slot)
    (out_dir / f"virt-mali-{key}.dts").write_text(dts)  # for people debugging the glue
    with cache.atomic_file(out) as f:
        f.write_bytes(patched)
    return out
