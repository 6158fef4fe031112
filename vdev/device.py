"""The interface between the vfio-user server and a device model.

A device model describes its PCI function (identity and BARs) and answers BAR accesses by
offset and width. It reaches the outside world only through the `DeviceHost` it is attached
to: its INTx level, and guest memory through the client's DMA mappings.

Locking rule: the server calls the device with `device.lock` held, one message at a time.
Device-side workers (timers, an emulated MCU, ...) take the same lock before touching device
state, with `lock.acquire_after_waiters()` when they re-take it in a loop. Raising or
lowering an interrupt is allowed from anywhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .dma import DmaSpace
from .irq import Interrupts
from .lock import DeviceLock
from .pci import Bar, PciIdentity


class DeviceHost:
    """What a device may use: its interrupt line and guest memory."""

    def __init__(self, interrupts: Interrupts, dma: DmaSpace):
        self.interrupts = interrupts
        self.dma = dma

    def set_intx(self, level: bool) -> None:
        self.interrupts.set_intx_level(level)


class Device(ABC):
    identity: PciIdentity
    bars: list[Bar]

    def __init__(self) -> None:
        # Not re-entrant: nothing takes it twice on one thread, and a re-entry would deadlock at
        # once (a test hangs) instead of hiding a call path that runs under the lock already.
        # Fair: a worker re-taking it lets a waiting register access go first (lock.py).
        self.lock = DeviceLock()
        self.host: DeviceHost | None = None

    def attach(self, host: DeviceHost) -> None:
        """Called once by the server before any access."""
        self.host = host

    @abstractmethod
    def bar_read(self, bar: int, offset: int, width: int) -> int:
        """Read `width` (1, 2, 4 or 8) bytes at a naturally aligned `offset` of BAR `bar`."""

    @abstractmethod
    def bar_write(self, bar: int, offset: int, width: int, value: int) -> None:
        """Write `width` bytes at a naturally aligned `offset` of BAR `bar`."""

    def reset(self) -> None:
        """DEVICE_RESET: back to power-on state (DMA maps are kept by the server)."""

    def client_connected(self) -> None:
        """A client attached (its DMA maps and IRQ fds will follow)."""

    def client_disconnected(self) -> None:
        """The client went away: its maps and fds are already gone; device state stays."""
