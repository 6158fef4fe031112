"""DMA maps over shared memory (fd passing), and interrupts through eventfds."""

import errno
import mmap
import os
import select

import pytest

from vdev import pci
from vdev import protocol as P
from vdev.client import VfioUserError
from vdev.dma import sealed_memfd

from .conftest import DMA_ADDR, DMA_CMD, DMA_DATA, DMA_STATUS, IRQ_LEVEL

GUEST_BASE = 0x40000000
GUEST_SIZE = 4 << 20


@pytest.fixture
def guest_ram():
    fd = sealed_memfd("guest-ram", GUEST_SIZE)
    mm = mmap.mmap(fd, GUEST_SIZE)
    yield fd, mm
    mm.close()
    os.close(fd)


def dma_load(c, iova):
    c.write32(0, DMA_ADDR, iova)
    c.write32(0, DMA_ADDR + 4, iova >> 32)
    c.write32(0, DMA_CMD, 1)
    return c.read32(0, DMA_STATUS), c.read32(0, DMA_DATA)


def dma_store(c, iova, value):
    c.write32(0, DMA_ADDR, iova)
    c.write32(0, DMA_ADDR + 4, iova >> 32)
    c.write32(0, DMA_DATA, value)
    c.write32(0, DMA_CMD, 2)
    return c.read32(0, DMA_STATUS)


def test_device_dma_goes_through_shared_memory(served, guest_ram):
    fd, mm = guest_ram
    c = served.client()
    c.dma_map(GUEST_BASE, GUEST_SIZE, fd=fd)
    mm[0x1000:0x1004] = (0xFEEDC0DE).to_bytes(4, "little")
    assert dma_load(c, GUEST_BASE + 0x1000) == (0, 0xFEEDC0DE)
    assert dma_store(c, GUEST_BASE + 0x2000, 0x11223344) == 0
    assert mm[0x2000:0x2004] == (0x11223344).to_bytes(4, "little")


def test_dma_map_with_file_offset(served, guest_ram):
    fd, mm = guest_ram
    c = served.client()
    c.dma_map(0x100000, 0x1000, fd=fd, offset=0x3000)
    mm[0x3010:0x3014] = b"\x01\x02\x03\x04"
    assert dma_load(c, 0x100010) == (0, 0x04030201)


def test_dma_outside_every_map_faults_without_touching_memory(served, guest_ram):
    fd, mm = guest_ram
    c = served.client()
    c.dma_map(GUEST_BASE, GUEST_SIZE, fd=fd)
    assert dma_load(c, GUEST_BASE - 4)[0] == 1
    assert dma_store(c, GUEST_BASE + GUEST_SIZE - 2, 0xFFFFFFFF) == 1  # straddles the end
    assert dma_store(c, 0, 1) == 1
    assert mm[GUEST_SIZE - 2:] == b"\0\0"


def test_dma_unmap_and_remap(served, guest_ram):
    fd, mm = guest_ram
    c = served.client()
    c.dma_map(GUEST_BASE, GUEST_SIZE, fd=fd)
    c.dma_unmap(GUEST_BASE, GUEST_SIZE)
    assert len(served.server.dma) == 0
    assert dma_load(c, GUEST_BASE)[0] == 1
    mm[0:4] = (7).to_bytes(4, "little")
    c.dma_map(GUEST_BASE + 0x1000_0000, GUEST_SIZE, fd=fd)  # same memory, new IOVA
    assert dma_load(c, GUEST_BASE + 0x1000_0000) == (0, 7)


def test_dma_map_errors(served, guest_ram):
    fd, _ = guest_ram
    c = served.client()
    c.dma_map(GUEST_BASE, GUEST_SIZE, fd=fd)
    with pytest.raises(VfioUserError) as e:
        c.dma_map(GUEST_BASE + 0x1000, 0x1000, fd=fd)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(VfioUserError) as e:
        c.dma_unmap(GUEST_BASE, 0x1000)  # must match a map exactly
    assert e.value.errno == errno.ENOENT
    with pytest.raises(VfioUserError) as e:
        c.dma_map(0x10_0000_0000, 2 * GUEST_SIZE, fd=fd)  # past the end of the file
    assert e.value.errno == errno.EINVAL
    with pytest.raises(VfioUserError) as e:
        c.dma_map(0x2000, 0, fd=fd)
    assert e.value.errno == errno.EINVAL
    assert len(served.server.dma) == 1


def test_fdless_and_read_only_maps_are_recorded_but_not_writable(served, guest_ram):
    fd, mm = guest_ram
    c = served.client()
    c.dma_map(0x0, 0x10000)  # no fd: QEMU does this for ROMs; must not be refused
    assert dma_load(c, 0x100)[0] == 1
    c.dma_map(GUEST_BASE, GUEST_SIZE, fd=fd, flags=P.DMA_FLAG_READ)
    mm[0:4] = b"\xAA\xBB\xCC\xDD"
    assert dma_load(c, GUEST_BASE) == (0, 0xDDCCBBAA)
    assert dma_store(c, GUEST_BASE, 0) == 1
    assert mm[0:4] == b"\xAA\xBB\xCC\xDD"


def test_unmap_all(served, guest_ram):
    fd, _ = guest_ram
    c = served.client()
    c.dma_map(GUEST_BASE, 0x1000, fd=fd)
    c.dma_map(GUEST_BASE + 0x1000, 0x1000, fd=fd, offset=0x1000)
    c.dma_unmap(0, 0, flags=P.DMA_UNMAP_FLAG_ALL)
    assert len(served.server.dma) == 0


def test_access_across_adjacent_maps(served, guest_ram):
    fd, mm = guest_ram
    c = served.client()
    c.dma_map(GUEST_BASE, 0x1000, fd=fd)
    c.dma_map(GUEST_BASE + 0x1000, 0x1000, fd=fd, offset=0x1000)
    assert dma_store(c, GUEST_BASE + 0xFFE, 0xA1B2C3D4) == 0
    assert mm[0xFFE:0x1002] == (0xA1B2C3D4).to_bytes(4, "little")


def test_disconnect_drops_maps_and_closes_fds(served, guest_ram):
    fd, _ = guest_ram
    before = open_eventfds()
    c = served.client()
    c.dma_map(GUEST_BASE, GUEST_SIZE, fd=fd)
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, 0, 1, [efd])
    c.close()
    c2 = served.client()  # the server has handled the EOF once it serves the next client
    c2.get_info()
    assert len(served.server.dma) == 0
    assert served.server.interrupts.indexes[P.IrqIndex.INTX].fds == [None]
    c2.close()
    os.close(efd)
    served.client().get_info()
    assert open_eventfds() == before


# -- interrupts ---------------------------------------------------------------------------

def open_eventfds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
        except OSError:
            pass
    return n


def pending(efd) -> int:
    if not select.select([efd], [], [], 0.2)[0]:
        return 0
    return os.eventfd_read(efd)


@pytest.fixture
def intx(served):
    c = served.client()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, 0, 1, [efd])
    yield c, efd
    os.close(efd)


def unmask(c):
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_UNMASK, 0, 1)


def test_intx_fires_once_per_assertion_until_unmasked(served, intx):
    c, efd = intx
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 1
    c.write32(0, IRQ_LEVEL, 0)
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 0  # auto-masked: waiting for the EOI
    unmask(c)
    assert pending(efd) == 1  # level still high: re-triggered on unmask


def test_intx_no_retrigger_after_level_drops(served, intx):
    c, efd = intx
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 1
    c.write32(0, IRQ_LEVEL, 0)
    unmask(c)
    assert pending(efd) == 0
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 1


def test_intx_status_bit_and_intx_disable(served, intx):
    c, efd = intx
    c.region_write(7, pci.COMMAND, (pci.COMMAND_INTX_DISABLE).to_bytes(2, "little"))
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 0
    assert c.region_read(7, pci.STATUS, 1)[0] & pci.STATUS_INTERRUPT
    c.region_write(7, pci.COMMAND, (0).to_bytes(2, "little"))
    assert pending(efd) == 1
    c.write32(0, IRQ_LEVEL, 0)
    assert not c.region_read(7, pci.STATUS, 1)[0] & pci.STATUS_INTERRUPT


def test_intx_mask_holds_interrupt_back(served, intx):
    c, efd = intx
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_MASK, 0, 1)
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 0
    unmask(c)
    assert pending(efd) == 1


def test_intx_resample_fd_acts_as_eoi(served, intx):
    """KVM's irqfd+resamplefd sequence: MASK, EVENTFD|UNMASK(resample), NONE|UNMASK."""
    c, efd = intx
    rfd = os.eventfd(0, os.EFD_NONBLOCK)
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_MASK, 0, 1)
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_UNMASK, 0, 1, [rfd])
    unmask(c)
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 1
    os.eventfd_write(rfd, 1)  # the guest EOI'd while the device still asserts
    assert pending(efd) == 1
    os.close(rfd)


def test_intx_installed_while_level_high_fires(served):
    c = served.client()
    c.write32(0, IRQ_LEVEL, 1)
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, 0, 1, [efd])
    assert pending(efd) == 1
    os.close(efd)


def test_intx_disable_all_then_nothing_fires(served, intx):
    c, efd = intx
    c.set_irqs(P.IrqIndex.INTX, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_TRIGGER, 0, 0)
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 0


@pytest.mark.parametrize("flags, index, start, count, nfds", [
    (P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_TRIGGER, 0, 0, 1, 1),  # two types
    (P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER | P.IRQ_SET_ACTION_MASK, 0, 0, 1, 1),  # two actions
    (P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, 0, 0, 2, 2),   # INTx has one vector
    (P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, 7, 0, 1, 1),   # no such index
    (P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, 2, 0, 1, 1),   # MSI-X has no vectors
    (P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_UNMASK, 0, 0, 1, 1),      # fds without DATA_EVENTFD
    (P.IRQ_SET_DATA_BOOL | P.IRQ_SET_ACTION_UNMASK, 0, 0, 1, 0),      # BOOL without data
    (1 << 12, 0, 0, 1, 0),
])
def test_bad_set_irqs_is_refused_and_fds_closed(served, flags, index, start, count, nfds):
    c = served.client()
    fds = [os.eventfd(0) for _ in range(nfds)]
    before = open_eventfds()
    with pytest.raises(VfioUserError) as e:
        c.set_irqs(index, flags, start, count, fds)
    assert e.value.errno == errno.EINVAL
    c.get_info()
    assert open_eventfds() == before  # the server closed its copies
    for fd in fds:
        os.close(fd)


def test_unmask_waits_for_the_handler_to_mask_before_retriggering(served, intx):
    """TCG's EOI comes right after the handler's first access; the mask write that follows
    must win, or a late re-trigger leaves QEMU's line stuck high (an interrupt storm)."""
    c, efd = intx
    c.write32(0, IRQ_LEVEL, 1)
    assert pending(efd) == 1
    # the UNMASK and the handler's next (posted) write arrive back to back
    msg_id = c.send(P.Command.DEVICE_SET_IRQS,
                    P.IRQ_SET.pack(P.IRQ_SET_SIZE, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_UNMASK, 0, 0, 1))
    c.write32(0, IRQ_LEVEL, 0, posted=True)
    c.recv_reply(msg_id)
    assert pending(efd) == 0
    assert served.server.interrupts.recheck_deadline is None  # evaluated once the client went quiet
