"""Message framing on a real unix socket pair: one read takes whatever has arrived, messages are
cut from the buffer, and each message gets exactly the fds its sender attached to it."""

import os
import socket
import struct
import threading
import time

import pytest

from vdev import protocol as P
from vdev.transport import RECV_BUFFER, Connection, PeerClosed, ProtocolError


@pytest.fixture
def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    rx, tx = Connection(a, io_timeout=2), Connection(b, io_timeout=2)
    yield rx, tx
    rx.close()
    tx.close()


def _fd_names(fds):
    return [os.readlink(f"/proc/self/fd/{fd}") for fd in fds]


def _pipe():
    r, w = os.pipe()
    return r, w


def _close(*fds):
    for fd in fds:
        os.close(fd)


def test_back_to_back_messages_are_cut_apart_and_the_rest_is_pending(pair):
    rx, tx = pair
    for i in range(3):
        tx.send(i, P.Command.REGION_WRITE, P.FLAG_NO_REPLY, 0, bytes([i]) * (8 + i))
    first = rx.recv()
    assert (first.msg_id, bytes(first.payload)) == (0, bytes(8))
    assert rx.pending()
    assert [bytes(rx.recv().payload) for _ in range(2)] == [b"\1" * 9, b"\2" * 10]
    assert not rx.pending()


@pytest.mark.parametrize("with_fds", [0, 1, 2])
def test_fds_go_to_the_message_they_were_sent_with(pair, with_fds):
    rx, tx = pair
    r, w = _pipe()
    try:
        for i in range(3):  # all three are in the socket before the first read
            tx.send(i, P.Command.DMA_MAP, 0, 0, bytes(32), [r] if i == with_fds else ())
        got = [rx.recv() for _ in range(3)]
        assert [len(m.fds) for m in got] == [1 if i == with_fds else 0 for i in range(3)]
        assert _fd_names(got[with_fds].fds) == _fd_names([r])
        got[with_fds].close_fds()
    finally:
        _close(r, w)


def test_a_message_larger_than_the_buffer_keeps_its_fds(pair):
    rx, tx = pair
    r, w = _pipe()
    big = bytes(range(256)) * (2 * RECV_BUFFER // 256)
    try:
        tx.sock.setblocking(True)
        t = threading.Thread(target=lambda: (tx.send(1, P.Command.DMA_MAP, 0, 0, big, [r]),
                                             tx.send(2, P.Command.REGION_READ, 0, 0, bytes(16))))
        t.start()
        m = rx.recv()
        assert bytes(m.payload) == big and len(m.fds) == 1
        m.close_fds()
        assert (rx.recv().msg_id, rx.pending()) == (2, False)
        t.join(5)
    finally:
        _close(r, w)


def test_a_header_in_pieces_is_waited_for(pair):
    rx, tx = pair
    raw = P.HEADER.pack(7, P.Command.REGION_READ, P.HEADER_SIZE + 16, 0, 0) + bytes(16)
    tx.sock.send(raw[:5])
    assert not rx.pending()
    tx.sock.send(raw[5:])
    assert rx.recv().msg_id == 7


def test_eof_between_messages_and_inside_one(pair):
    rx, tx = pair
    tx.sock.send(P.HEADER.pack(1, P.Command.REGION_READ, P.HEADER_SIZE + 16, 0, 0) + bytes(4))
    tx.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="EOF in the middle"):
        rx.recv()
    a, b = socket.socketpair()
    c = Connection(a, io_timeout=1)
    b.close()
    with pytest.raises(PeerClosed):
        c.recv()
    c.close()


def test_read_available_takes_what_came_and_never_waits(pair):
    rx, tx = pair
    msg = struct.pack("<HHIII", 5, 9, 16 + 100, 0, 0) + bytes(100)
    rx.read_available()                 # nothing there: returns at once
    assert not rx.pending() and not rx.partial()
    tx.sock.sendall(msg[:30])
    time.sleep(0.05)
    rx.read_available()
    assert rx.partial() and not rx.pending()
    tx.sock.sendall(msg[30:])
    time.sleep(0.05)
    rx.read_available()
    assert rx.pending() and rx.recv().msg_id == 5
    tx.sock.sendall(struct.pack("<HHIII", 6, 9, 1 << 30, 0, 0))
    time.sleep(0.05)
    with pytest.raises(ProtocolError):  # an oversized header fails as soon as it is read
        rx.read_available()
