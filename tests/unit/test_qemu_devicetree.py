"""The DT-hole patch, on a small virt-like tree compiled with dtc."""

import shutil
import subprocess

import pytest

from qemu import devicetree as dt

pytestmark = pytest.mark.skipif(not shutil.which("dtc"), reason="dtc not installed")

# Slot 1 INTA deliberately maps to SPI 0x24 (not virt's 4): the GPU must use what the map says.
VIRT_LIKE = """/dts-v1/;
/ {
	#address-cells = <2>;
	#size-cells = <2>;
	interrupt-parent = <0x8002>;
	intc@8000000 {
		phandle = <0x8002>;
		interrupt-controller;
		#interrupt-cells = <3>;
		#address-cells = <2>;
		compatible = "arm,gic-v3";
		reg = <0 0x8000000 0 0x10000>;
	};
	pcie@10000000 {
		device_type = "pci";
		compatible = "pci-host-ecam-generic";
		#address-cells = <3>;
		#size-cells = <2>;
		#interrupt-cells = <1>;
		reg = <0x40 0x10000000 0 0x10000000>;
		ranges = <0x1000000 0 0 0 0x3eff0000 0 0x10000>,
		         <0x2000000 0 0x10000000 0 0x10000000 0 0x2eff0000>,
		         <0x3000000 0x80 0 0x80 0 0x80 0>;
		interrupt-map-mask = <0x1800 0 0 7>;
		interrupt-map = <0x000 0 0 1 0x8002 0 0 0 0x23 4>,
		                <0x000 0 0 2 0x8002 0 0 0 0x24 4>,
		                <0x800 0 0 1 0x8002 0 0 0 0x24 4>,
		                <0x800 0 0 2 0x8002 0 0 0 0x25 4>;
	};
};
"""


def compile_dts(text: str) -> bytes:
    return subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb"], input=text.encode(),
                          capture_output=True, check=True).stdout


def node(root, path):
    return next(n for n in root.walk() if n.path == path)


def test_plan_reads_window_and_slot_1_inta():
    info = dt.plan_glue(dt.parse_dtb(compile_dts(VIRT_LIKE)))
    assert info.pcie_path == "/pcie@10000000"
    assert info.irq_parent == 0x8002
    assert info.irq_spec == [0, 0x24, 1]  # edge-triggered: see the module docstring
    # every pin routed to that SPI changes with it; the others keep their level trigger
    assert info.new_imap == [0x000, 0, 0, 1, 0x8002, 0, 0, 0, 0x23, 4,
                             0x000, 0, 0, 2, 0x8002, 0, 0, 0, 0x24, 1,
                             0x800, 0, 0, 1, 0x8002, 0, 0, 0, 0x24, 1,
                             0x800, 0, 0, 2, 0x8002, 0, 0, 0, 0x25, 4]
    assert info.new_ranges[7:14] == [0x2000000, 0, 0x10200000, 0, 0x10200000, 0, 0x2edf0000]
    # IO and 64-bit windows untouched
    assert info.new_ranges[:7] == [0x1000000, 0, 0, 0, 0x3eff0000, 0, 0x10000]
    assert info.new_ranges[14:] == [0x3000000, 0x80, 0, 0x80, 0, 0x80, 0]


def test_patched_tree_has_gpu_node_clock_and_opp():
    blob, dts = dt.patch_dtb(compile_dts(VIRT_LIKE))
    root = dt.parse_dtb(blob)
    gpu = node(root, "/gpu@10000000")
    assert gpu.strings("compatible") == ["rockchip,rk3588-mali", "arm,mali-valhall-csf"]
    assert gpu.cells("reg") == [0, 0x10000000, 0, 0x200000]
    assert gpu.cells("interrupts") == [0, 0x24, 1] * 3
    assert node(root, "/pcie@10000000").cells("interrupt-map")[18:20] == [0x24, 1]
    assert gpu.strings("interrupt-names") == ["job", "mmu", "gpu"]
    assert gpu.cell("interrupt-parent") == 0x8002
    assert "dma-coherent" in gpu.props
    clk = dt.phandle_node(root, gpu.cell("clocks"))
    assert clk.strings("compatible") == ["fixed-clock"] and clk.cell("clock-frequency") == 800_000_000
    opp = dt.phandle_node(root, gpu.cell("operating-points-v2"))
    assert opp.strings("compatible") == ["operating-points-v2"]
    # RK3588's GPU table: 300 MHz to 1 GHz in 100 MHz steps, the clock's 800 MHz among them
    hz = [int.from_bytes(c.props["opp-hz"], "big") for c in opp.children]
    assert hz == [f * 100_000_000 for f in range(3, 11)]
    assert [c.name for c in opp.children] == [f"opp-{f}" for f in hz]
    pcie = node(root, "/pcie@10000000")
    assert pcie.cells("ranges")[7:14] == [0x2000000, 0, 0x10200000, 0, 0x10200000, 0, 0x2edf0000]
    # the rest of QEMU's tree is kept
    assert node(root, "/intc@8000000").cell("#interrupt-cells") == 3
    assert "gpu@10000000" in dts


def test_window_not_at_gpu_base_is_refused():
    moved = VIRT_LIKE.replace("<0x2000000 0 0x10000000 0 0x10000000 0 0x2eff0000>",
                              "<0x2000000 0 0x20000000 0 0x20000000 0 0x1eff0000>")
    with pytest.raises(RuntimeError, match="does not start"):
        dt.plan_glue(dt.parse_dtb(compile_dts(moved)))


def test_missing_slot_in_interrupt_map_is_reported():
    with pytest.raises(RuntimeError, match="slot 2"):
        dt.plan_glue(dt.parse_dtb(compile_dts(VIRT_LIKE)), slot=2)
