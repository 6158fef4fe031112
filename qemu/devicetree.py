"""The device tree the guest boots with: QEMU's own virt DTB plus the "DT hole" glue.

panthor is a platform (device-tree) driver while vfio-user only offers a PCI function.
So we take the DTB QEMU generates for the exact machine options of the boot, make the
PCIe host's 32-bit MMIO window start 2 MiB later, and describe a Mali GPU node at the
freed 2 MiB (where the guest's /init then places BAR0), using the SPI that QEMU wires to
slot 1's INTA.  The values are read by parsing the DTB; the edits are written as a DTS
fragment appended to dtc's decompiled source (later definitions amend earlier ones), so
no text of QEMU's tree is rewritten by pattern matching.

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

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from construct import Int32ub, Struct

GPU_BASE = 0x10000000
GPU_SIZE = 0x200000          # 2 MiB, the size of the server's BAR0
GPU_CLOCK_HZ = 800_000_000
GPU_SLOT = 1                 # PCI device number the launcher gives the vfio-user function
PCI_INTA = 1
IRQ_TYPE_EDGE_RISING = 1     # GIC interrupt specifier flags (dt-bindings/interrupt-controller/irq.h)
MMIO32_SPACE = 0b10          # phys.hi bits 24-25 of a PCI address: 32-bit memory space

FdtHeader = Struct(
    "magic" / Int32ub, "totalsize" / Int32ub, "off_dt_struct" / Int32ub,
    "off_dt_strings" / Int32ub, "off_mem_rsvmap" / Int32ub, "version" / Int32ub,
    "last_comp_version" / Int32ub, "boot_cpuid_phys" / Int32ub, "size_dt_strings" / Int32ub,
    "size_dt_struct" / Int32ub)
FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


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
    """A flattened device tree blob -> node tree (properties kept as raw bytes)."""
    h = FdtHeader.parse(blob)
    if h.magic != FDT_MAGIC:
        raise ValueError("not a flattened device tree")
    strings = blob[h.off_dt_strings:h.off_dt_strings + h.size_dt_strings]
    off, end = h.off_dt_struct, h.off_dt_struct + h.size_dt_struct
    root: Node | None = None
    cur: Node | None = None
    while off < end:
        token = int.from_bytes(blob[off:off + 4], "big")
        off += 4
        if token == FDT_BEGIN_NODE:
            nul = blob.index(b"\0", off)
            name = blob[off:nul].decode()
            off = (nul + 4) & ~3
            path = "/" if cur is None else (cur.path.rstrip("/") + "/" + name)
            node = Node(name, path, parent=cur)
            if cur is None:
                root = node
            else:
                cur.children.append(node)
            cur = node
        elif token == FDT_END_NODE:
            cur = cur.parent
        elif token == FDT_PROP:
            length = int.from_bytes(blob[off:off + 4], "big")
            nameoff = int.from_bytes(blob[off + 4:off + 8], "big")
            off += 8
            pname = strings[nameoff:strings.index(b"\0", nameoff)].decode()
            cur.props[pname] = blob[off:off + length]
            off = (off + length + 3) & ~3
        elif token == FDT_NOP:
            continue
        elif token == FDT_END:
            break
        else:
            raise ValueError(f"bad FDT token {token:#x} at {off - 4:#x}")
    if root is None:
        raise ValueError("empty device tree")
    return root


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


def _cells_dts(cells: list[int]) -> str:
    return "<" + " ".join(f"{c:#x}" for c in cells) + ">"


def glue_fragment(info: GlueInfo) -> str:
    """DTS appended after QEMU's tree: amends the PCIe window and adds the GPU."""
    irq = _cells_dts(info.irq_spec)
    hi, lo = GPU_BASE >> 32, GPU_BASE & 0xFFFFFFFF
    return f"""
/* mali-vdev: the first 2 MiB of the PCIe 32-bit window now belong to the GPU (DT hole) */
&{{{info.pcie_path}}} {{
	ranges = {_cells_dts(info.new_ranges)};
	interrupt-map = {_cells_dts(info.new_imap)};
}};

/ {{
	mali_vdev_gpu_clk: mali-vdev-gpu-clock {{
		compatible = "fixed-clock";
		#clock-cells = <0>;
		clock-frequency = <{GPU_CLOCK_HZ}>;
		clock-output-names = "gpu_core";
	}};

	gpu@{GPU_BASE:x} {{
		compatible = "rockchip,rk3588-mali", "arm,mali-valhall-csf";
		reg = <{hi:#x} {lo:#x} 0x0 {GPU_SIZE:#x}>;
		interrupt-parent = <{info.irq_parent:#x}>;
		interrupts = {irq}, {irq}, {irq};
		interrupt-names = "job", "mmu", "gpu";
		clocks = <&mali_vdev_gpu_clk>;
		clock-names = "core";
		operating-points-v2 = <&mali_vdev_gpu_opp>;
		dma-coherent;
		status = "okay";

		mali_vdev_gpu_opp: opp-table {{
			compatible = "operating-points-v2";
			opp-{GPU_CLOCK_HZ} {{
				opp-hz = /bits/ 64 <{GPU_CLOCK_HZ}>;
			}};
		}};
	}};
}};
"""


def _dtc(*args: str, stdin: bytes | None = None) -> bytes:
    r = subprocess.run(["dtc", "-q", *args], input=stdin, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"dtc {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


def patch_dtb(blob: bytes, slot: int = GPU_SLOT) -> tuple[bytes, str]:
    """QEMU's DTB -> (patched DTB, the DTS it was compiled from)."""
    info = plan_glue(parse_dtb(blob), slot)
    dts = _dtc("-I", "dtb", "-O", "dts", stdin=blob).decode() + glue_fragment(info)
    return _dtc("-I", "dts", "-O", "dtb", stdin=dts.encode()), dts


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
