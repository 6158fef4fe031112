"""The vfio-user server against our client: negotiation, info, config space, BAR access, reset."""

import errno
import json

import pytest

from vdev import pci
from vdev import protocol as P
from vdev.client import VfioUserError

from .conftest import ID, ID_VALUE, SCRATCH


def test_version_negotiation_reply(served):
    c = served.client(negotiate=False)
    caps = c.negotiate()
    assert caps["max_msg_fds"] == 16
    assert caps["max_data_xfer_size"] == 1 << 20
    assert caps["write_multiple"] is True  # offered by the client, so it may be accepted


def test_version_reply_is_a_subset_of_what_was_offered(served):
    c = served.client(negotiate=False)
    caps = c.negotiate(caps={"max_msg_fds": 8})
    assert "write_multiple" not in caps


def test_qemu_version_message_verbatim(served):
    """The exact capabilities JSON QEMU 10.1+ sends, including migration."""
    c = served.client(negotiate=False)
    text = ('{"capabilities":{"migration":{"pgsize":4096,"max_bitmap_size":268435456},"max_msg_fds":16,'
            '"max_data_xfer_size":1048576,"pgsizes":4096,"max_dma_maps":65535,"write_multiple":true}}')
    reply = c.request(P.Command.VERSION, b"\0\0\0\0" + text.encode() + b"\0")
    assert reply.payload[:4] == b"\0\0\0\0"
    assert reply.payload[-1] == 0
    assert len(reply.payload) + 16 <= 16 + 4 + len(text) + 1  # QEMU's recv buffer is its request size
    assert json.loads(bytes(reply.payload[4:-1]))["capabilities"]["write_multiple"] is True


@pytest.mark.parametrize("payload, err", [
    (b"\1\0\0\0{}\0", errno.ENOTSUP),                      # major 1
    (b"\0\0\0\0{\"capabilities\":", errno.EINVAL),           # not NUL-terminated
    (b"\0\0\0\0{bad json}\0", errno.EINVAL),
    (b"\0\0\0\0[1,2]\0", errno.EINVAL),
    (b"\0\0\0\0{\"capabilities\":{\"max_msg_fds\":\"x\"}}\0", errno.EINVAL),
    (b"\0\0", errno.EINVAL),
])
def test_bad_version_gets_error_and_connection_survives(served, payload, err):
    c = served.client(negotiate=False)
    with pytest.raises(VfioUserError) as e:
        c.request(P.Command.VERSION, payload)
    assert e.value.errno == err
    c.negotiate()
    assert c.read32(0, ID) == ID_VALUE


def test_commands_before_version_are_refused(served):
    c = served.client(negotiate=False)
    with pytest.raises(VfioUserError) as e:
        c.read32(0, ID)
    assert e.value.errno == errno.EINVAL


def test_device_info_and_regions(served):
    c = served.client()
    info = c.get_info()
    assert info.flags == P.DEVICE_FLAGS_PCI | P.DEVICE_FLAGS_RESET
    assert info.num_regions == 9 and info.num_irqs == 5
    sizes = {i: c.region_info(i).size for i in range(9)}
    assert sizes == {0: 0x1000, 1: 0, 2: 0x100000, 3: 0, 4: 0, 5: 0, 6: 0, 7: 256, 8: 0}
    r = c.region_info(0)
    assert r.flags == P.REGION_FLAG_READ | P.REGION_FLAG_WRITE and r.argsz == 32
    with pytest.raises(VfioUserError) as e:
        c.region_info(9)
    assert e.value.errno == errno.EINVAL


def test_irq_info(served):
    c = served.client()
    intx = c.irq_info(P.IrqIndex.INTX)
    assert intx.count == 1 and intx.flags & P.IRQ_INFO_EVENTFD and intx.flags & P.IRQ_INFO_AUTOMASKED
    assert c.irq_info(P.IrqIndex.ERR).count == 1
    assert c.irq_info(P.IrqIndex.MSIX).count == 0
    with pytest.raises(VfioUserError):
        c.irq_info(5)


def test_config_space_identity_in_one_bulk_read(served):
    c = served.client()
    cfg = c.region_read(7, 0, 256)  # QEMU reads the whole space in one message
    assert cfg[0:2] == (0x1B36).to_bytes(2, "little")
    assert cfg[2:4] == (0x00FF).to_bytes(2, "little")
    assert cfg[8] == 3 and cfg[9:12] == (0xFF0000).to_bytes(3, "little")
    assert cfg[pci.INTERRUPT_PIN] == 1
    assert int.from_bytes(cfg[0x10:0x14], "little") == 0          # 32-bit memory BAR0
    assert int.from_bytes(cfg[0x18:0x1C], "little") == 0b1100      # 64-bit prefetchable BAR2


def test_bar_sizing(served):
    c = served.client()
    c.write32(7, 0x10, 0xFFFFFFFF)
    assert c.read32(7, 0x10) == 0xFFFFF000
    c.write32(7, 0x18, 0xFFFFFFFF)
    c.write32(7, 0x1C, 0xFFFFFFFF)
    assert c.read32(7, 0x18) == 0xFFF0000C
    assert c.read32(7, 0x1C) == 0xFFFFFFFF
    c.write32(7, 0x10, 0x10000000)
    assert c.read32(7, 0x10) == 0x10000000
    # unimplemented BAR and the ROM read as zero after the sizing write
    c.write32(7, 0x14, 0xFFFFFFFF)
    assert c.read32(7, 0x14) == 0
    c.write32(7, 0x30, 0xFFFFF800)
    assert c.read32(7, 0x30) == 0


def test_command_register_and_read_only_header(served):
    c = served.client()
    c.region_write(7, pci.COMMAND, (0x0406).to_bytes(2, "little"))
    assert int.from_bytes(c.region_read(7, pci.COMMAND, 2), "little") == 0x0406
    c.write32(7, 0, 0xDEADBEEF)  # vendor/device are read-only
    assert c.read32(7, 0) == 0x00FF1B36


def test_bar_read_write(served):
    c = served.client()
    assert c.read32(0, ID) == ID_VALUE
    c.write32(0, SCRATCH, 0xCAFEF00D)
    assert c.read32(0, SCRATCH) == 0xCAFEF00D
    assert c.region_read(0, ID, 2) == (ID_VALUE & 0xFFFF).to_bytes(2, "little")
    c.region_write(2, 0x100, (0x1122334455667788).to_bytes(8, "little"))
    assert c.region_read(2, 0x100, 8) == (0x1122334455667788).to_bytes(8, "little")


def test_posted_writes_are_ordered_before_the_next_read(served):
    c = served.client()
    for v in range(100):
        c.write32(0, SCRATCH, v, posted=True)
    assert c.read32(0, SCRATCH) == 99  # no reply was sent to any posted write


@pytest.mark.parametrize("region, offset, count", [
    (0, 0x1000, 4), (0, 0xFFE, 4), (1, 0, 4), (9, 0, 4), (7, 256, 1), (0, 0, 0), (0, 1 << 63, 4),
])
def test_out_of_range_access_is_an_error(served, region, offset, count):
    c = served.client()
    with pytest.raises(VfioUserError) as e:
        c.region_read(region, offset, count)
    assert e.value.errno == errno.EINVAL
    assert c.read32(0, ID) == ID_VALUE


def test_region_write_multi(served):
    c = served.client()
    entries = b"".join(P.REGION_WRITE_MULTI_ENTRY.pack(0x40 + 4 * i, 0, 4, (i * 7).to_bytes(8, "little"))
                       for i in range(5))
    reply = c.request(P.Command.REGION_WRITE_MULTI, (5).to_bytes(8, "little") + entries)
    assert int.from_bytes(reply.payload, "little") == 5
    assert [c.read32(0, 0x40 + 4 * i) for i in range(5)] == [0, 7, 14, 21, 28]


def test_region_write_multi_needs_negotiation(served):
    c = served.client(negotiate=False)
    c.negotiate(caps={})
    entry = P.REGION_WRITE_MULTI_ENTRY.pack(0x40, 0, 4, bytes(8))
    with pytest.raises(VfioUserError):
        c.request(P.Command.REGION_WRITE_MULTI, (1).to_bytes(8, "little") + entry)


def test_device_reset(served):
    c = served.client()
    c.write32(0, SCRATCH, 5)
    c.region_write(7, pci.COMMAND, (0x6).to_bytes(2, "little"))
    c.reset()
    assert served.device.resets == 1
    assert c.read32(0, SCRATCH) == 0
    assert int.from_bytes(c.region_read(7, pci.COMMAND, 2), "little") == 0


def test_reconnect_keeps_device_state(served):
    c = served.client()
    c.write32(0, SCRATCH, 0x5A5A)
    c.close()
    c2 = served.client()
    assert c2.read32(0, SCRATCH) == 0x5A5A
    assert served.server.connections == 2


def test_second_client_is_refused_while_one_is_connected(served):
    c = served.client()
    other = served.client(negotiate=False)
    with pytest.raises(Exception):
        other.negotiate()
    assert c.read32(0, ID) == ID_VALUE
