"""The vfio-user message handler: a byte stream of framed messages (every command, with
fuzzed fields, memfds/eventfds/pipes attached) and raw bytes, sent over a real socketpair to
a `Server` around a `MaliDevice`, whose loop (`_on_readable`) reads and dispatches them.

Invariants: the server answers only with well-framed replies (errors for what it cannot do,
never an internal error); at EOF the connection is dropped and every fd it received closed;
the device still answers GPU_ID, and a new connection negotiates and reads it."""

from __future__ import annotations

import os
import socket
import struct
import threading

import atheris

from mali_gpu.device import MaliDevice
from mali_regs.mmio import MALI_MMIO
from vdev import protocol as P
from vdev.dma import sealed_memfd
from vdev.server import Server

from .harness import Finding, mutations, watched

HDR = struct.Struct("<HHIII")
COMMANDS = [int(c) for c in P.Command] + [0, 14, 19, 0xFFFF]
OFFSETS = [r.offset for r in MALI_MMIO.registers]
GPU_ID = MALI_MMIO["GPU_ID"].offset
VERSIONS = [b'{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576,"write_multiple":true}}',
            b'{"capabilities":{}}', b"{}", b"[]", b'{"capabilities":{"max_msg_fds":-1}}',
            b'{"capabilities":{"write_multiple":1}}', b'{"capabilities":7}', b"{", b"\xff\xfe"]
MAX_OPS = 64
GUEST_RAM = 0x40000000


def _u(fdp, bits, common=()):
    """An unsigned field: one of `common` most of the time, else anything."""
    if common and fdp.ConsumeIntInRange(0, 3):
        return common[fdp.ConsumeIntInRange(0, len(common) - 1)]
    return fdp.ConsumeInt(bits // 8 + 1) & ((1 << bits) - 1)


def _region_access(fdp) -> tuple[int, int, int]:
    region = _u(fdp, 32, (0, 0, 0, P.PCI_CONFIG_REGION_INDEX, 2, 9))
    offset = OFFSETS[fdp.ConsumeIntInRange(0, len(OFFSETS) - 1)] if region == 0 and fdp.ConsumeBool() else \
        _u(fdp, 64, (0, 4, 0x3C, 0xFFC, 0x1FFFC, 0x20000))
    count = _u(fdp, 32, (1, 2, 4, 8, 8, 16, 256))
    return offset, region, count


def _payload(fdp, cmd: int) -> bytes:
    if not fdp.ConsumeIntInRange(0, 7):
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 48))
    if cmd == P.Command.VERSION:
        text = VERSIONS[fdp.ConsumeIntInRange(0, len(VERSIONS) - 1)]
        return struct.pack("<HH", _u(fdp, 16, (0,)), _u(fdp, 16, (0,))) + text + (b"\0" if fdp.ConsumeIntInRange(0, 7) else b"")
    if cmd == P.Command.DMA_MAP:
        return struct.pack("<IIQQQ", _u(fdp, 32, (32,)), _u(fdp, 32, (3, 1)), _u(fdp, 64, (0, 0x1000)),
                           _u(fdp, 64, (GUEST_RAM, GUEST_RAM + 0x10000, 0)), _u(fdp, 64, (0x10000, 0x1000, 1 << 63)))
    if cmd == P.Command.DMA_UNMAP:
        return struct.pack("<IIQQ", _u(fdp, 32, (24,)), _u(fdp, 32, (0, P.DMA_UNMAP_FLAG_ALL, 1)),
                           _u(fdp, 64, (GUEST_RAM, 0)), _u(fdp, 64, (0x10000, 0x1000, 0)))
    if cmd in (P.Command.DEVICE_GET_INFO, P.Command.DEVICE_GET_IRQ_INFO):
        return struct.pack("<IIII", _u(fdp, 32, (16,)), 0, _u(fdp, 32, (0, 1, 4, 5)), 0)
    if cmd == P.Command.DEVICE_GET_REGION_INFO:
        return struct.pack("<IIIIQQ", _u(fdp, 32, (32,)), 0, _u(fdp, 32, (0, 2, 7, 8, 9)), 0, 0, 0)
    if cmd == P.Command.DEVICE_SET_IRQS:
        flags = _u(fdp, 32, (P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_TRIGGER, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_TRIGGER,
                             P.IRQ_SET_DATA_BOOL | P.IRQ_SET_ACTION_TRIGGER, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_UNMASK,
                             P.IRQ_SET_DATA_EVENTFD | P.IRQ_SET_ACTION_UNMASK, P.IRQ_SET_DATA_NONE | P.IRQ_SET_ACTION_MASK))
        return struct.pack("<IIIII", _u(fdp, 32, (20,)), flags, _u(fdp, 32, (0, 3, 4, 5)), _u(fdp, 32, (0, 1)),
                           _u(fdp, 32, (0, 1, 2))) + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 4))
    if cmd == P.Command.REGION_READ:
        return struct.pack("<QII", *_region_access(fdp))
    if cmd == P.Command.REGION_WRITE:
        offset, region, count = _region_access(fdp)
        n = count if count <= 256 and fdp.ConsumeIntInRange(0, 7) else fdp.ConsumeIntInRange(0, 16)
        data = (fdp.ConsumeBytes(n) if fdp.ConsumeBool() else bytes([0xFF]) * n).ljust(n, b"\0")
        return struct.pack("<QII", offset, region, count) + data
    if cmd == P.Command.REGION_WRITE_MULTI:
        n = fdp.ConsumeIntInRange(0, 4)
        out = struct.pack("<Q", _u(fdp, 64, (n,)))
        for _ in range(n):
            offset, region, count = _region_access(fdp)
            out += struct.pack("<QII", offset, region, count) + fdp.ConsumeBytes(8).ljust(8, b"\0")
        return out
    return b""  # DEVICE_RESET and the rest


def _fds(fdp, kind: int) -> list[int]:
    if kind == 1:
        return [sealed_memfd("fuzz-ram", 0x10000)]
    if kind == 2:
        return [os.eventfd(0)]
    if kind == 3:
        r, w = os.pipe()
        os.close(w)
        return [r]
    if kind == 4:
        fd = os.memfd_create("fuzz-unsealed")
        os.ftruncate(fd, 0x10000)
        return [fd]
    if kind == 5:
        return [os.eventfd(0) for _ in range(fdp.ConsumeIntInRange(2, 20))]
    return []


def _stream(fdp) -> list[tuple[bytes, list[int]]]:
    chunks = []
    if fdp.ConsumeIntInRange(0, 7):  # negotiate first, usually
        text = VERSIONS[0] if fdp.ConsumeBool() else VERSIONS[1]
        body = struct.pack("<HH", 0, 0) + text + b"\0"
        chunks.append((HDR.pack(0, P.Command.VERSION, 16 + len(body), 0, 0) + body, []))
    for i in range(MAX_OPS):
        if not fdp.remaining_bytes():
            break
        if not fdp.ConsumeIntInRange(0, 15):
            chunks.append((fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64)), []))
            continue
        cmd = COMMANDS[fdp.ConsumeIntInRange(0, len(COMMANDS) - 1)]
        payload = _payload(fdp, cmd)
        flags = _u(fdp, 32, (0, 0, 0, P.FLAG_NO_REPLY, P.TYPE_REPLY, 2))
        size = 16 + len(payload) if fdp.ConsumeIntInRange(0, 31) else _u(fdp, 32, (0, 15, 17, 1 << 22))
        fds = _fds(fdp, fdp.ConsumeIntInRange(0, 15) if cmd in (P.Command.DMA_MAP, P.Command.DEVICE_SET_IRQS)
                   else fdp.ConsumeIntInRange(0, 63))
        chunks.append((HDR.pack(i + 1, cmd & 0xFFFF, size, flags, _u(fdp, 32, (0,))) + payload, fds))
    return chunks


def _drain(sock: socket.socket, out: bytearray) -> None:
    while True:
        try:
            data, anc, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(64 * 4))
        except OSError:
            return
        for level, typ, fddata in anc:  # the server sends none; close any it would
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                for fd in struct.unpack(f"{len(fddata) // 4}i", fddata[:len(fddata) // 4 * 4]):
                    os.close(fd)
                out.extend(b"\xffFDS")  # the server sends no fds: mark the stream bad
        if not data:
            return
        out.extend(data)


def _check_replies(data: bytes) -> int:
    off = n = 0
    while off < len(data):
        if len(data) - off < 16:
            raise Finding(f"reply stream ends with {len(data) - off} bytes of a header")
        msg_id, cmd, size, flags, err = HDR.unpack_from(data, off)
        if size < 16 or off + size > len(data):
            raise Finding(f"reply {n} framed as {size} bytes at {off} of {len(data)}")
        if flags & P.FLAG_TYPE_MASK != P.TYPE_REPLY:
            raise Finding(f"reply {n} (command {cmd}) has type {flags & P.FLAG_TYPE_MASK}")
        if bool(flags & P.FLAG_ERROR) != bool(err):
            raise Finding(f"reply {n} (command {cmd}): ERROR flag {bool(flags & P.FLAG_ERROR)} with errno {err}")
        off += size
        n += 1
    return n


def _session(server: Server, chunks) -> bytes:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    server.attach_client(a)
    replies = bytearray()
    reader = threading.Thread(target=_drain, args=(b, replies), daemon=True)
    reader.start()
    try:
        for data, fds in chunks:
            try:
                if fds:
                    b.sendmsg([data or b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
                elif data:
                    b.sendall(data)
            finally:
                for fd in fds:
                    os.close(fd)
        b.shutdown(socket.SHUT_WR)
        for _ in range(10_000):
            if server.conn is None:
                break
            server._on_readable()
            server.device.engine.run_once()  # doorbells only queue work: run it (takes device.lock)
        else:
            raise Finding("the server still holds the connection after 10,000 reads of a closed stream")
    finally:
        if server.conn is not None:
            server._drop_client("harness")
        reader.join(10)
        b.close()
    if reader.is_alive():
        raise Finding("the reply stream did not end after the server dropped the connection")
    return bytes(replies)


@watched
def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    server = Server(MaliDevice("g610", engine_thread=False), "/nonexistent/fuzz.sock")
    try:
        _check_replies(_session(server, _stream(fdp)))
        dev = server.device
        with dev.lock:
            if dev.bar_read(0, GPU_ID, 4) != dev.profile.gpu_id:
                raise Finding("the device no longer answers GPU_ID")
        # The next client is served: VERSION, then a REGION_READ of GPU_ID.
        body = struct.pack("<HH", 0, 0) + b"{}\0"
        read = struct.pack("<QII", GPU_ID, 0, 4)
        replies = _session(server, [(HDR.pack(1, P.Command.VERSION, 16 + len(body), 0, 0) + body, []),
                                    (HDR.pack(2, P.Command.REGION_READ, 32, 0, 0) + read, [])])
        if _check_replies(replies) != 2 or replies[-4:] != dev.profile.gpu_id.to_bytes(4, "little"):
            raise Finding(f"the next connection is not served: {replies.hex()}")
    finally:
        server.close()


def seeds() -> list[bytes]:
    import random

    rng = random.Random(5)
    base = [bytes([1, i]) + rng.randbytes(rng.choice((32, 128, 512, 2048))) for i in range(8)]
    return base + mutations(base, 24, seed=5)
