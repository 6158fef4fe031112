"""A vfio-user client: the same protocol from QEMU's side, for tests, tools and benchmarks."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from . import protocol as P
from .transport import Connection, Message


class VfioUserError(Exception):
    def __init__(self, command: int, errno_: int):
        super().__init__(f"{P.command_name(command)} failed: {os.strerror(errno_)} ({errno_})")
        self.command = command
        self.errno = errno_


@dataclass
class RegionInfo:
    index: int
    flags: int
    size: int
    offset: int
    argsz: int


class Client:
    DEFAULT_CAPS = {"max_msg_fds": 16, "max_data_xfer_size": 1 << 20, "pgsizes": 4096,
                    "max_dma_maps": 65535, "write_multiple": True}

    def __init__(self, socket_path: str, timeout: float = 10.0):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(socket_path)
        self.conn = Connection(sock, io_timeout=timeout)
        self._next_id = 0
        self.server_caps: dict = {}

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- message plumbing ----------------------------------------------------------------

    def _id(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFF
        return self._next_id

    def send(self, command: int, payload: bytes = b"", fds=(), no_reply: bool = False) -> int:
        msg_id = self._id()
        self.conn.send(msg_id, command, P.TYPE_COMMAND | (P.FLAG_NO_REPLY if no_reply else 0), 0, payload, fds)
        return msg_id

    def recv_reply(self, msg_id: int | None = None) -> Message:
        msg = self.conn.recv()
        if msg_id is not None and msg.msg_id != msg_id:
            raise AssertionError(f"reply id {msg.msg_id} for request {msg_id}")
        return msg

    def request(self, command: int, payload: bytes = b"", fds=()) -> Message:
        """Send a command and wait for its reply; raise VfioUserError on an error reply."""
        reply = self.recv_reply(self.send(command, payload, fds))
        if reply.flags & P.FLAG_ERROR:
            reply.close_fds()
            raise VfioUserError(command, reply.error)
        return reply

    # -- commands ------------------------------------------------------------------------

    def negotiate(self, caps: dict | None = None, major: int = 0, minor: int = 0) -> dict:
        body = json.dumps({"capabilities": self.DEFAULT_CAPS if caps is None else caps}).encode() + b"\0"
        reply = self.request(P.Command.VERSION, major.to_bytes(2, "little") + minor.to_bytes(2, "little") + body)
        text = bytes(reply.payload[4:])
        if not text.endswith(b"\0"):
            raise ValueError("server's VERSION JSON is not NUL-terminated")
        self.server_caps = json.loads(text[:-1]).get("capabilities", {})
        return self.server_caps

    def dma_map(self, iova: int, size: int, fd: int | None = None, offset: int = 0,
                flags: int = P.DMA_FLAG_READ | P.DMA_FLAG_WRITE) -> None:
        self.request(P.Command.DMA_MAP, P.DMA_MAP.pack(P.DMA_MAP_SIZE, flags, offset, iova, size),
                     [fd] if fd is not None else ())

    def dma_unmap(self, iova: int, size: int, flags: int = 0) -> None:
        self.request(P.Command.DMA_UNMAP, P.DMA_UNMAP.pack(P.DMA_UNMAP_SIZE, flags, iova, size))

    def get_info(self):
        reply = self.request(P.Command.DEVICE_GET_INFO, P.DEVICE_INFO.pack(P.DEVICE_INFO_SIZE, 0, 0, 0))
        return P.DEVICE_INFO.unpack(reply.payload)

    def region_info(self, index: int, argsz: int = P.REGION_INFO_SIZE) -> RegionInfo:
        reply = self.request(P.Command.DEVICE_GET_REGION_INFO, P.REGION_INFO.pack(argsz, 0, index, 0, 0, 0))
        reply.close_fds()
        r = P.REGION_INFO.unpack(reply.payload)
        return RegionInfo(r.index, r.flags, r.size, r.offset, r.argsz)

    def irq_info(self, index: int):
        reply = self.request(P.Command.DEVICE_GET_IRQ_INFO, P.IRQ_INFO.pack(P.IRQ_INFO_SIZE, 0, index, 0))
        return P.IRQ_INFO.unpack(reply.payload)

    def set_irqs(self, index: int, flags: int, start: int = 0, count: int = 0, fds=(), data: bytes = b"") -> None:
        self.request(P.Command.DEVICE_SET_IRQS, P.IRQ_SET.pack(P.IRQ_SET_SIZE, flags, index, start, count) + data, fds)

    def region_read(self, region: int, offset: int, count: int) -> bytes:
        reply = self.request(P.Command.REGION_READ, P.REGION_ACCESS.pack(offset, region, count))
        data = bytes(reply.payload[P.REGION_ACCESS_SIZE:])
        if len(data) != count:
            raise ValueError(f"REGION_READ returned {len(data)} bytes, asked {count}")
        return data

    def region_write(self, region: int, offset: int, data: bytes, posted: bool = False) -> None:
        payload = P.REGION_ACCESS.pack(offset, region, len(data)) + bytes(data)
        if posted:
            self.send(P.Command.REGION_WRITE, payload, no_reply=True)
        else:
            self.request(P.Command.REGION_WRITE, payload)

    def read32(self, region: int, offset: int) -> int:
        return int.from_bytes(self.region_read(region, offset, 4), "little")

    def write32(self, region: int, offset: int, value: int, posted: bool = False) -> None:
        self.region_write(region, offset, value.to_bytes(4, "little"), posted)

    def reset(self) -> None:
        self.request(P.Command.DEVICE_RESET)
