"""One real boot: arm64 Debian kernel under QEMU (TCG) with our server as vfio-user-pci.

The guest reads GPU_ID and writes/reads GPU_INT_MASK through the whole path: guest MMIO
-> QEMU's vfio-user client -> socket -> `python -m mali_vdev serve`.  Needs the assets
(`mali-vdev setup` / `python -m qemu.boot setup`), fetched on first use otherwise.
"""

import re

import pytest

from qemu import boot

GPU_ID = 0xA8670005
GPU_INT_MASK = 0x10000028
GUEST_CMD = f"""
echo "GPU_ID=$(devmem 0x10000000 32)"
devmem {GPU_INT_MASK:#x} 32 0x00000701
echo "MASK1=$(devmem {GPU_INT_MASK:#x} 32)"
devmem {GPU_INT_MASK:#x} 32 0x00000000
echo "MASK2=$(devmem {GPU_INT_MASK:#x} 32)"
d=/sys/bus/pci/devices/0000:00:01.0
echo "PCI=$(cat $d/vendor):$(cat $d/device) class=$(cat $d/class)"
echo "BAR0=$(head -n1 $d/resource)"
echo "DTGPU=$(ls /sys/bus/platform/devices | grep -c '^10000000.gpu$')"
echo "INITOUT=$(readlink /proc/1/fd/1)"
"""


@pytest.mark.guest
def test_guest_reads_gpu_registers_through_vfio_user():
    r = boot.boot(GUEST_CMD, timeout=boot.DEFAULT_TIMEOUT_S, driver="none")
    print(r.output)
    print(f"kernel {r.kernel_version}, timings {r.timings}")
    assert r.status == 0, r.console_log[-3000:]
    values = dict(re.findall(r"^(\w+)=(.*)$", r.output, re.M))
    assert int(values["GPU_ID"], 16) == GPU_ID
    assert int(values["MASK1"], 16) == 0x701
    assert int(values["MASK2"], 16) == 0
    assert values["PCI"].startswith("0x13b5:0x0001 class=0x038000")
    assert int(values["BAR0"].split()[0], 16) != 0  # Linux gave the BAR a window address
    assert values["DTGPU"] == "1"                      # the DT-hole node exists
    # /init's markers and our output on their own UART, away from kernel messages
    assert values["INITOUT"] == "/dev/ttyAMA1"
    assert "ttyAMA1 at MMIO 0x9040000" in r.console_log
    assert r.kernel_version and r.timings["total"] < boot.DEFAULT_TIMEOUT_S
