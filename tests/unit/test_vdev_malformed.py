"""Hostile and malformed input: error replies or a clean close, never a dead server."""

import errno
import os
import random
import socket
import struct

import pytest

from vdev import protocol as P
from vdev.client import VfioUserError

from .conftest import ID, ID_VALUE


def raw(served) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(served.path)
    return s


def recv_reply(s):
    hdr = b""
    while len(hdr) < 16:
        chunk = s.recv(16 - len(hdr))
        if not chunk:
            return None
        hdr += chunk
    msg_id, cmd, size, flags, err = struct.unpack("<HHIII", hdr)
    body = b""
    while len(body) < size - 16:
        body += s.recv(size - 16 - len(body))
    return msg_id, cmd, flags, err, body


def still_serves(served):
    c = served.client()
    assert c.read32(0, ID) == ID_VALUE
    c.close()


@pytest.mark.parametrize("header", [
    struct.pack("<HHIII", 1, 1, 8, 0, 0),            # msg_size smaller than the header
    struct.pack("<HHIII", 1, 9, 0xFFFFFFFF, 0, 0),   # 4 GiB message
    struct.pack("<HHIII", 1, 9, 64 << 20, 0, 0),     # larger than any transfer we accept
])
def test_unframeable_header_closes_only_that_connection(served, header):
    s = raw(served)
    s.sendall(header)
    assert s.recv(16) == b""  # closed, no reply
    s.close()
    still_serves(served)


def test_eof_in_the_middle_of_a_message(served):
    s = raw(served)
    s.sendall(struct.pack("<HHIII", 1, 1, 200, 0, 0) + b"\0" * 20)
    s.close()
    still_serves(served)


def test_unknown_command_gets_enosys(served):
    c = served.client()
    with pytest.raises(VfioUserError) as e:
        c.request(99)
    assert e.value.errno == errno.ENOSYS
    with pytest.raises(VfioUserError) as e:
        c.request(P.Command.DEVICE_FEATURE, b"\0" * 8)
    assert e.value.errno == errno.ENOTSUP
    with pytest.raises(VfioUserError) as e:
        c.request(P.Command.DMA_READ, b"\0" * 16)  # a server->client command sent the wrong way
    assert e.value.errno == errno.ENOTSUP
    assert c.read32(0, ID) == ID_VALUE


@pytest.mark.parametrize("command, payload", [
    (P.Command.DMA_MAP, b"\0" * 31),
    (P.Command.DMA_UNMAP, b"\0" * 10),
    (P.Command.DEVICE_GET_INFO, b""),
    (P.Command.DEVICE_GET_INFO, struct.pack("<IIII", 4, 0, 0, 0)),  # argsz too small
    (P.Command.DEVICE_GET_REGION_INFO, b"\0" * 16),
    (P.Command.DEVICE_GET_IRQ_INFO, b"\0" * 3),
    (P.Command.DEVICE_SET_IRQS, b"\0" * 19),
    (P.Command.REGION_READ, b"\0" * 15),
    (P.Command.REGION_READ, struct.pack("<QII", 0, 0, 4) + b"extra"),
    (P.Command.REGION_WRITE, struct.pack("<QII", 0, 0, 4) + b"\0\0"),  # count says 4, 2 bytes follow
    (P.Command.REGION_WRITE, struct.pack("<QII", 0, 0, 2) + b"\0" * 4),
    (P.Command.REGION_WRITE_MULTI, struct.pack("<Q", 3) + b"\0" * 24),
    (P.Command.REGION_WRITE_MULTI, struct.pack("<Q", 1 << 40)),
    (P.Command.DEVICE_RESET, b"junk"),
    (P.Command.DMA_UNMAP, struct.pack("<IIQQ", 24, 2, 0x1000, 0x1000)),  # ALL with a range
    (P.Command.DMA_UNMAP, struct.pack("<IIQQ", 24, 1, 0, 0)),            # dirty bitmap
    (P.Command.DMA_MAP, struct.pack("<IIQQQ", 32, 0x80, 0, 0x1000, 0x1000)),  # unknown flags
    (P.Command.DMA_MAP, struct.pack("<IIQQQ", 32, 3, 0, 1 << 63, (1 << 63) + 0x1000)),  # wraps 2^64
])
def test_malformed_payloads_get_error_replies(served, command, payload):
    c = served.client()
    with pytest.raises(VfioUserError) as e:
        c.request(command, payload)
    assert e.value.errno in (errno.EINVAL, errno.ENOTSUP, errno.ENOENT)
    assert c.read32(0, ID) == ID_VALUE


def test_malformed_no_reply_message_gets_no_reply(served):
    c = served.client()
    c.send(P.Command.REGION_WRITE, b"\0" * 3, no_reply=True)
    assert c.read32(0, ID) == ID_VALUE  # the next reply is the read's, not an error


def test_reply_type_from_client_is_ignored_and_bad_type_refused(served):
    s = raw(served)
    s.sendall(struct.pack("<HHIII", 5, 1, 16, P.TYPE_REPLY, 0))
    s.sendall(struct.pack("<HHIII", 6, 1, 16, 7, 0))
    msg_id, _, flags, err, _ = recv_reply(s)
    assert (msg_id, flags & P.FLAG_ERROR, err) == (6, P.FLAG_ERROR, errno.EINVAL)
    s.close()
    still_serves(served)


def test_fds_on_a_command_that_takes_none(served):
    c = served.client()
    fd = os.eventfd(0)
    with pytest.raises(VfioUserError) as e:
        c.request(P.Command.REGION_READ, struct.pack("<QII", 0, 0, 4), fds=[fd])
    assert e.value.errno == errno.EINVAL
    os.close(fd)


def test_too_many_fds_are_refused(served):
    c = served.client()
    fds = [os.eventfd(0) for _ in range(20)]
    with pytest.raises(Exception):
        c.request(P.Command.DMA_MAP, struct.pack("<IIQQQ", 32, 3, 0, 0x1000, 0x1000), fds=fds)
    for fd in fds:
        os.close(fd)
    assert c.read32(0, ID) == ID_VALUE


def test_dma_map_with_a_non_mappable_fd(served):
    c = served.client()
    r, w = os.pipe()
    with pytest.raises(VfioUserError) as e:
        c.dma_map(0x1000, 0x1000, fd=r)
    assert e.value.errno == errno.EINVAL
    os.close(r)
    os.close(w)
    assert len(served.server.dma) == 0


def test_random_garbage_never_kills_the_server(served):
    rng = random.Random(1234)
    for _ in range(300):
        s = raw(served)
        cmd = rng.choice(list(P.Command) + [0, 14, 99, 0xFFFF])
        body = rng.randbytes(rng.choice([0, 1, 4, 15, 16, 20, 24, 32, 40, 100]))
        flags = rng.choice([0, 0, 0, P.FLAG_NO_REPLY, 1, 0x20, 0xFF])
        size = 16 + len(body) if rng.random() < 0.9 else rng.randrange(0, 64)
        try:
            s.sendall(struct.pack("<HHIII", rng.randrange(1 << 16), int(cmd), size, flags, 0) + body)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
        except OSError:
            pass
        s.close()
    still_serves(served)


def test_random_payloads_on_a_negotiated_connection(served):
    rng = random.Random(99)
    c = served.client()
    for _ in range(500):
        cmd = rng.choice([P.Command.DMA_UNMAP, P.Command.DEVICE_GET_REGION_INFO, P.Command.DEVICE_GET_IRQ_INFO,
                          P.Command.DEVICE_SET_IRQS, P.Command.REGION_READ, P.Command.REGION_WRITE,
                          P.Command.REGION_WRITE_MULTI, P.Command.DEVICE_GET_INFO])
        payload = rng.randbytes(rng.choice([8, 16, 20, 24, 32, 36]))
        try:
            c.request(cmd, payload)
        except VfioUserError as e:
            assert e.errno > 0
    assert c.read32(0, ID) == ID_VALUE
