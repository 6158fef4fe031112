"""The virtual Mali GPU as a PCI function: one 2 MiB BAR holding the whole MMIO window.

The guest's device tree places the panthor node over BAR0, so BAR0 offsets are the GPU's
own register offsets. This object assembles the GPU blocks for one profile and is what the
vfio-user server talks to.
"""

from __future__ import annotations

import logging

from mali_regs.mmio import MMIO_SIZE, regmap_for_arch
from mali_regs.profiles import get_profile
from vdev.device import Device
from vdev.pci import Bar, PciIdentity

from .regfile import RegisterFile

log = logging.getLogger("mali.device")

ARM_VENDOR_ID = 0x13B5
# Mali has no PCI identity of its own: an Arm vendor ID, a device ID of ours and the
# "other display controller" class, so no guest PCI driver claims the function.
MALI_VDEV_DEVICE_ID = 0x0001
CLASS_DISPLAY_OTHER = 0x038000


class MaliDevice(Device):
    bars = [Bar(0, MMIO_SIZE)]

    def __init__(self, gpu: str = "g610"):
        super().__init__()
        self.profile = get_profile(gpu)
        self.identity = PciIdentity(ARM_VENDOR_ID, MALI_VDEV_DEVICE_ID, CLASS_DISPLAY_OTHER,
                                    revision=self.profile.gpu_id & 0xF)
        self.regmap = regmap_for_arch(self.profile.arch[0])
        self.regs = RegisterFile(self.regmap, dict(self.profile.regs))
        self._trace = log.isEnabledFor(logging.DEBUG)

    def bar_read(self, bar: int, offset: int, width: int) -> int:
        value = self.regs.read(offset, width)
        if self._trace:
            log.debug("read  %s", self.regmap.decode(offset, value, width * 8))
        return value

    def bar_write(self, bar: int, offset: int, width: int, value: int) -> None:
        if self._trace:
            log.debug("write %s", self.regmap.decode(offset, value, width * 8))
        self.regs.write(offset, width, value)

    def reset(self) -> None:
        log.info("device reset: registers back to their power-on values")
        self.regs.reset()
        if self.host is not None:
            self.host.set_intx(False)
